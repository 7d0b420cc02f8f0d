//! The S3 blob store (AWS S3, Ceph RGW, MinIO).
//!
//! Layout under the bucket and `prefix`:
//! - `blobs/<algorithm>/<first two hex>/<hex>`: committed blobs;
//! - `uploads/<id>/started`: an upload's marker (its existence and start time);
//! - `uploads/<id>/<start offset, 20 digits>`: an upload's data, one object per part of at most
//!   `part_size` bytes. An append first deletes parts at or past its offset (left by a writer
//!   whose progress was never recorded), then writes whole parts.
//!
//! Commit assembles the blob without the data passing through Berth where it can: one part is
//! copied (CopyObject); several become a multipart upload whose parts of at least 5 MiB are
//! copied server-side (UploadPartCopy) and whose runs of smaller parts are joined and uploaded
//! (S3 requires 5 MiB per part but the last). S3 has no file locks: one writer per upload is a
//! lease from [`UploadLocks`], renewed while the writer lives.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use berth_core::{Digest, DigestAlgorithm, DigestHasher, UploadHasher};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::locks::UploadLocks;
use crate::{
    Appended, BlobInfo, BlobPage, BlobStore, ByteStream, StorageError, UploadWriter, stored_digest,
};

/// The smallest part S3 accepts in a multipart upload (all but the last).
pub const MIN_PART: u64 = 5 << 20;

/// The most keys S3 deletes in one `DeleteObjects` request, and lists in one response.
const BATCH: usize = 1000;

/// Where and how to reach the bucket.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Endpoint URL (Ceph RGW, MinIO); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region (any name for RGW and MinIO).
    pub region: String,
    /// Bucket, which must exist.
    pub bucket: String,
    /// Key prefix inside the bucket (`""` or ending in `/`).
    pub prefix: String,
    /// Path-style addressing (`endpoint/bucket/key`), as RGW and MinIO usually need.
    pub path_style: bool,
    /// Access key and secret (and session token). The binary fills them from the
    /// configuration or the `AWS_*` environment; the driver reads no environment itself.
    pub credentials: Option<(String, String, Option<String>)>,
    /// Upload part size in bytes (at least 5 MiB).
    pub part_size: u64,
    /// How long a writer's lease on an upload lasts without renewal: after a node dies, its
    /// uploads can be continued elsewhere once this has passed.
    pub writer_lease: Duration,
    /// Answer blob downloads with redirects to presigned URLs valid this long (`None`: stream
    /// blobs through the registry). Clients must be able to reach the S3 endpoint.
    pub redirect: Option<Duration>,
}

/// The S3 blob store. Cheap to clone.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    part_size: usize,
    lease: Duration,
    redirect: Option<Duration>,
    locks: Arc<dyn UploadLocks>,
}

fn backend(
    context: &'static str,
    bucket: &str,
    key: &str,
    error: impl std::fmt::Display,
) -> StorageError {
    StorageError::Backend {
        context,
        location: format!("s3://{bucket}/{key}"),
        message: error.to_string(),
    }
}

/// The full message of an SDK error (its `Display` is only "service error").
fn sdk<E: std::error::Error + 'static>(e: aws_sdk_s3::error::SdkError<E>) -> String {
    let mut message = e.to_string();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

impl S3Store {
    /// A store on `settings`, with `locks` for one writer per upload.
    pub fn new(settings: &S3Settings, locks: Arc<dyn UploadLocks>) -> Result<Self, StorageError> {
        if settings.part_size < MIN_PART {
            return Err(StorageError::Backend {
                context: "configuring S3",
                location: format!("s3://{}", settings.bucket),
                message: format!(
                    "part size {} is below S3's minimum of 5 MiB",
                    settings.part_size
                ),
            });
        }
        let credentials = settings.credentials.clone();
        let Some((key, secret, token)) = credentials else {
            return Err(StorageError::Backend {
                context: "configuring S3",
                location: format!("s3://{}", settings.bucket),
                message: "no credentials: set storage.s3.access_key and secret_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            });
        };
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(Credentials::new(key, secret, token, None, "berth"))
            .force_path_style(settings.path_style)
            // Ceph RGW and MinIO releases in use do not all take the newer checksum headers.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(Self {
            client: Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
            part_size: usize::try_from(settings.part_size).unwrap_or(usize::MAX),
            lease: settings.writer_lease.max(Duration::from_secs(1)),
            redirect: settings.redirect,
            locks,
        })
    }

    fn blob_key(&self, digest: &Digest) -> String {
        let hex = digest.hex();
        format!(
            "{}blobs/{}/{}/{hex}",
            self.prefix,
            digest.algorithm().as_str(),
            &hex[..2]
        )
    }

    /// The digest of the blob stored under `key`, if `key` is a blob's.
    fn key_digest(&self, key: &str) -> Option<Digest> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix("blobs/")?;
        let mut parts = rest.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(alg), Some(prefix), Some(name), None) => stored_digest(alg, prefix, name),
            _ => None,
        }
    }

    /// Deletes up to [`BATCH`] blobs in one `DeleteObjects` request.
    async fn delete_batch(&self, digests: &[Digest]) -> Result<(), StorageError> {
        let Some(first) = digests.first() else {
            return Ok(());
        };
        let location = self.blob_key(first);
        let invalid = |e: aws_sdk_s3::error::BuildError| {
            backend("deleting blobs", &self.bucket, &location, e)
        };
        let objects = digests
            .iter()
            .map(|d| ObjectIdentifier::builder().key(self.blob_key(d)).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(invalid)?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| backend("deleting blobs", &self.bucket, &location, sdk(e)))?;
        // Quiet mode reports only failures; a key that was not there is not one.
        let failures: Vec<_> = out
            .errors()
            .iter()
            .filter(|e| e.code() != Some("NoSuchKey"))
            .collect();
        let Some(first) = failures.first() else {
            return Ok(());
        };
        let each: Vec<String> = failures
            .iter()
            .map(|e| {
                format!(
                    "{}: {} {}",
                    e.key().unwrap_or("?"),
                    e.code().unwrap_or("error"),
                    e.message().unwrap_or_default()
                )
            })
            .collect();
        Err(backend(
            "deleting blobs",
            &self.bucket,
            first.key().unwrap_or(&location),
            format!(
                "{} of {} blobs not deleted: {}",
                failures.len(),
                digests.len(),
                each.join("; ")
            ),
        ))
    }

    fn upload_dir(&self, id: &str) -> Result<String, StorageError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(StorageError::NotFound {
                what: format!("upload {id}"),
            });
        }
        Ok(format!("{}uploads/{id}/", self.prefix))
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(backend("checking an object", &self.bucket, key, sdk(e))),
        }
    }

    /// Every object under `prefix`: key, size and last change.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, u64, SystemTime)>, StorageError> {
        let mut objects = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| backend("listing objects", &self.bucket, prefix, sdk(e)))?;
            for o in page.contents() {
                let modified = o
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                objects.push((
                    o.key().unwrap_or_default().to_owned(),
                    u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                    modified,
                ));
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_owned()),
                _ => return Ok(objects),
            }
        }
    }

    /// An upload's parts as (start offset, size, key), in order.
    async fn parts(&self, dir: &str) -> Result<Vec<(u64, u64, String)>, StorageError> {
        let mut parts: Vec<(u64, u64, String)> = self
            .list(dir)
            .await?
            .into_iter()
            .filter_map(|(key, size, _)| {
                let start = key.strip_prefix(dir)?.parse::<u64>().ok()?;
                Some((start, size, key))
            })
            .collect();
        parts.sort();
        Ok(parts)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(drop)
            .map_err(|e| backend("deleting an object", &self.bucket, key, sdk(e)))
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<S3Body, StorageError> {
        let mut request = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(r) = range {
            request = request.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        match request.send().await {
            Ok(out) => Ok(out.body),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(StorageError::NotFound {
                    what: key.to_owned(),
                })
            }
            Err(e) => Err(backend("reading an object", &self.bucket, key, sdk(e))),
        }
    }

    async fn get_all(&self, key: &str) -> Result<Bytes, StorageError> {
        let body = self.get(key, None).await?;
        body.collect()
            .await
            .map(|b| b.into_bytes())
            .map_err(|e| backend("reading an object", &self.bucket, key, e))
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(S3Body::from(data))
            .send()
            .await
            .map(drop)
            .map_err(|e| backend("writing an object", &self.bucket, key, sdk(e)))
    }

    fn copy_source(&self, key: &str) -> String {
        // The key is ASCII digits, letters, '-', '/' and the prefix: safe in a URL path as is.
        format!("{}/{key}", self.bucket)
    }
}

#[async_trait]
impl BlobStore for S3Store {
    fn driver_name(&self) -> &'static str {
        "s3"
    }

    async fn check(&self) -> Result<(), StorageError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Err(backend(
                "checking the bucket",
                &self.bucket,
                "",
                "the bucket does not exist",
            )),
            Err(e) => Err(backend("checking the bucket", &self.bucket, "", sdk(e))),
        }
    }

    async fn read(&self, digest: &Digest, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let key = self.blob_key(digest);
        let body = if range.is_empty() {
            S3Body::from_static(b"")
        } else {
            self.get(&key, Some(range)).await?
        };
        let bucket = self.bucket.clone();
        Ok(futures_util::stream::unfold(body, move |mut body| {
            let (bucket, key) = (bucket.clone(), key.clone());
            async move {
                match body.next().await? {
                    Ok(bytes) => Some((Ok(bytes), body)),
                    Err(e) => Some((
                        Err(std::io::Error::other(format!("s3://{bucket}/{key}: {e}"))),
                        body,
                    )),
                }
            }
        })
        .boxed())
    }

    async fn download_url(&self, digest: &Digest) -> Result<Option<String>, StorageError> {
        let Some(lifetime) = self.redirect else {
            return Ok(None);
        };
        let key = self.blob_key(digest);
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(lifetime)
            .map_err(|e| backend("presigning a download", &self.bucket, &key, e))?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(config)
            .await
            .map_err(|e| backend("presigning a download", &self.bucket, &key, sdk(e)))?;
        Ok(Some(presigned.uri().to_owned()))
    }

    async fn start_upload(&self, id: &str) -> Result<(), StorageError> {
        let dir = self.upload_dir(id)?;
        self.put(&format!("{dir}started"), Bytes::new()).await
    }

    async fn upload_writer(&self, id: &str) -> Result<Box<dyn UploadWriter>, StorageError> {
        let dir = self.upload_dir(id)?;
        if !self.exists(&format!("{dir}started")).await? {
            return Err(StorageError::NotFound {
                what: format!("upload {id}"),
            });
        }
        let holder = uuid::Uuid::new_v4().simple().to_string();
        let lease = self.lease;
        if !self.locks.lock(id, &holder, lease).await? {
            return Err(StorageError::Busy { id: id.to_owned() });
        }
        let renewal = {
            let (locks, id, holder) = (self.locks.clone(), id.to_owned(), holder.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match locks.lock(&id, &holder, lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(upload = %id, "lost the upload's lease to another writer");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(upload = %id, error = %e, "cannot renew the upload's lease")
                        }
                    }
                }
            })
        };
        Ok(Box::new(S3UploadWriter {
            store: self.clone(),
            id: id.to_owned(),
            dir,
            holder,
            renewal,
            released: false,
        }))
    }

    async fn cancel_upload(&self, id: &str) -> Result<(), StorageError> {
        let dir = self.upload_dir(id)?;
        for (key, _, _) in self.list(&dir).await? {
            self.delete(&key).await?;
        }
        Ok(())
    }

    async fn list_uploads(&self) -> Result<Vec<(String, SystemTime)>, StorageError> {
        let root = format!("{}uploads/", self.prefix);
        let mut uploads: Vec<(String, SystemTime)> = Vec::new();
        for (key, _, modified) in self.list(&root).await? {
            let Some(id) = key.strip_prefix(&root).and_then(|r| r.split('/').next()) else {
                continue;
            };
            match uploads.iter_mut().find(|(i, _)| i == id) {
                Some((_, latest)) => *latest = (*latest).max(modified),
                None => uploads.push((id.to_owned(), modified)),
            }
        }
        Ok(uploads)
    }

    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: usize,
    ) -> Result<BlobPage, StorageError> {
        let limit = limit.max(1);
        let root = format!("{}blobs/", self.prefix);
        // Keys sort as digests do: `<alg>/<2 hex>/<hex>` orders by algorithm, then hex.
        let mut start_after = after.map(|d| self.blob_key(d));
        let mut blobs = Vec::new();
        loop {
            let want = (limit - blobs.len()).min(BATCH);
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&root)
                .set_start_after(start_after.clone())
                .max_keys(i32::try_from(want).unwrap_or(1))
                .send()
                .await
                .map_err(|e| backend("listing blobs", &self.bucket, &root, sdk(e)))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                start_after = Some(key.to_owned());
                // Keys that are not blobs' (strays) are skipped, and the next request starts
                // past them.
                let Some(digest) = self.key_digest(key) else {
                    continue;
                };
                blobs.push(BlobInfo {
                    digest,
                    size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                    modified: o
                        .last_modified()
                        .and_then(|t| SystemTime::try_from(*t).ok())
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
            let more = page.is_truncated().unwrap_or(false);
            if blobs.len() > limit {
                // The store returned more than asked for: still `limit` per page.
                blobs.truncate(limit);
            } else if !more {
                return Ok(BlobPage { blobs, next: None });
            } else if page.contents().is_empty() {
                return Err(backend(
                    "listing blobs",
                    &self.bucket,
                    &root,
                    "the listing was truncated but returned nothing",
                ));
            }
            if blobs.len() == limit {
                let next = blobs.last().map(|b| b.digest.clone());
                return Ok(BlobPage { blobs, next });
            }
        }
    }

    async fn stat_blob(&self, digest: &Digest) -> Result<Option<BlobInfo>, StorageError> {
        let key = self.blob_key(digest);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(BlobInfo {
                digest: digest.clone(),
                size: u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0),
                modified: out
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(backend("checking a blob", &self.bucket, &key, sdk(e))),
        }
    }

    async fn delete_blobs(&self, digests: &[Digest]) -> Result<(), StorageError> {
        for batch in digests.chunks(BATCH) {
            self.delete_batch(batch).await?;
        }
        Ok(())
    }
}

/// One writer of one upload, holding its lease.
struct S3UploadWriter {
    store: S3Store,
    id: String,
    dir: String,
    holder: String,
    renewal: tokio::task::JoinHandle<()>,
    /// The lease was given up already (release, commit).
    released: bool,
}

impl Drop for S3UploadWriter {
    fn drop(&mut self) {
        self.renewal.abort();
        if self.released {
            return;
        }
        let (locks, id, holder) = (
            self.store.locks.clone(),
            self.id.clone(),
            self.holder.clone(),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { locks.unlock(&id, &holder).await });
        }
    }
}

impl S3UploadWriter {
    /// Gives the lease up now.
    async fn unlock(&mut self) {
        self.renewal.abort();
        self.store.locks.unlock(&self.id, &self.holder).await;
        self.released = true;
    }

    fn part_key(&self, start: u64) -> String {
        format!("{}{start:020}", self.dir)
    }

    /// The parts covering `[0, size)` exactly (error if they do not).
    async fn covering(&self, size: u64) -> Result<Vec<(u64, u64, String)>, StorageError> {
        let mut parts = Vec::new();
        let mut next = 0;
        for (start, len, key) in self.store.parts(&self.dir).await? {
            if next >= size {
                break;
            }
            if start != next {
                break;
            }
            parts.push((start, len, key));
            next = start + len;
        }
        if next < size {
            return Err(StorageError::SizeMismatch {
                id: self.id.clone(),
                expected: size,
                actual: next,
            });
        }
        Ok(parts)
    }
}

#[async_trait]
impl UploadWriter for S3UploadWriter {
    async fn append(
        &mut self,
        offset: u64,
        mut hasher: UploadHasher,
        mut body: ByteStream,
    ) -> Result<Appended, StorageError> {
        for (start, len, key) in self.store.parts(&self.dir).await? {
            if start >= offset {
                self.store.delete(&key).await?;
            } else if start + len > offset {
                // A part reaching past the offset: its writer's progress was recorded only part
                // way (the API records whole appends, so this is rare). Keep what was recorded.
                let data = self.store.get_all(&key).await?;
                let keep = usize::try_from(offset - start)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.store.put(&key, data.slice(..keep)).await?;
            }
        }
        let part_size = self.store.part_size;
        let mut buffer = BytesMut::with_capacity(part_size.min(16 << 20));
        let mut start = offset;
        let mut interrupted = None;
        loop {
            let item = body.next().await;
            let done = match item {
                Some(Ok(mut chunk)) => {
                    while !chunk.is_empty() {
                        let take = (part_size - buffer.len()).min(chunk.len());
                        buffer.extend_from_slice(&chunk.split_to(take));
                        if buffer.len() == part_size {
                            let part = buffer.split().freeze();
                            hasher.update(&part);
                            self.store.put(&self.part_key(start), part.clone()).await?;
                            start += part.len() as u64;
                        }
                    }
                    false
                }
                Some(Err(e)) => {
                    interrupted = Some(e.to_string());
                    true
                }
                None => true,
            };
            if done {
                break;
            }
        }
        if !buffer.is_empty() {
            let part = buffer.split().freeze();
            hasher.update(&part);
            self.store.put(&self.part_key(start), part.clone()).await?;
            start += part.len() as u64;
        }
        Ok(Appended {
            written: start - offset,
            hasher,
            interrupted,
        })
    }

    async fn digest(
        &mut self,
        algorithm: DigestAlgorithm,
        len: u64,
    ) -> Result<Digest, StorageError> {
        let mut hasher = DigestHasher::new(algorithm);
        let mut left = len;
        for (_, size, key) in self.covering(len).await? {
            let take = size.min(left);
            let data = self.store.get_all(&key).await?;
            hasher.update(&data[..usize::try_from(take).unwrap_or(usize::MAX)]);
            left -= take;
        }
        Ok(hasher.finish())
    }

    async fn release(mut self: Box<Self>) {
        self.unlock().await;
    }

    async fn commit(mut self: Box<Self>, digest: &Digest, size: u64) -> Result<(), StorageError> {
        let result = self.assemble_blob(digest, size).await;
        self.unlock().await;
        result
    }
}

impl S3UploadWriter {
    /// Commit's work: the blob in place, then the upload's objects gone.
    async fn assemble_blob(&self, digest: &Digest, size: u64) -> Result<(), StorageError> {
        let store = &self.store;
        let target = store.blob_key(digest);
        let parts = self.covering(size).await?;
        if !store.exists(&target).await? {
            match parts.as_slice() {
                [] => store.put(&target, Bytes::new()).await?,
                [(_, len, key)] if *len == size => {
                    store
                        .client
                        .copy_object()
                        .bucket(&store.bucket)
                        .key(&target)
                        .copy_source(store.copy_source(key))
                        .customize()
                        .mutate_request(empty_body)
                        .send()
                        .await
                        .map_err(|e| {
                            backend(
                                "copying an upload into place",
                                &store.bucket,
                                &target,
                                sdk(e),
                            )
                        })?;
                }
                _ => assemble(store, &target, &parts, size).await?,
            }
        }
        store.cancel_upload(&self.id).await
    }
}

/// Says that a copy request has no body: Ceph RGW refuses a body-less PUT without
/// `Content-Length` (MissingContentLength), which the SDK leaves out.
fn empty_body(request: &mut aws_sdk_s3::config::http::HttpRequest) {
    if !request.headers().contains_key("content-length") {
        request.headers_mut().insert("content-length", "0");
    }
}

/// Builds `target` from `parts` (covering `[0, size)`) as a multipart upload: parts of at least
/// 5 MiB are copied server-side; smaller ones are joined (with their neighbours) into uploaded
/// parts of at least 5 MiB, the last one excepted. Aborted on any failure.
async fn assemble(
    store: &S3Store,
    target: &str,
    parts: &[(u64, u64, String)],
    size: u64,
) -> Result<(), StorageError> {
    let fail = |context: &'static str| move |e: String| backend(context, &store.bucket, target, e);
    let upload = store
        .client
        .create_multipart_upload()
        .bucket(&store.bucket)
        .key(target)
        .send()
        .await
        .map_err(|e| fail("starting a multipart upload")(sdk(e)))?;
    let upload_id = upload.upload_id().unwrap_or_default().to_owned();
    let result = async {
        let mut completed = Vec::new();
        let mut pending = BytesMut::new();
        let mut number = 1;
        for (i, (start, len, key)) in parts.iter().enumerate() {
            let len = (*len).min(size - start);
            let last = i == parts.len() - 1;
            if pending.is_empty() && len >= MIN_PART && len == parts[i].1 {
                let copied = store
                    .client
                    .upload_part_copy()
                    .bucket(&store.bucket)
                    .key(target)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .copy_source(store.copy_source(key))
                    .customize()
                    .mutate_request(empty_body)
                    .send()
                    .await
                    .map_err(|e| fail("copying a part")(sdk(e)))?;
                let etag = copied
                    .copy_part_result()
                    .and_then(|r| r.e_tag())
                    .unwrap_or_default()
                    .to_owned();
                completed.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .e_tag(etag)
                        .build(),
                );
                number += 1;
                continue;
            }
            let data = store.get_all(key).await?;
            pending.extend_from_slice(&data[..usize::try_from(len).unwrap_or(usize::MAX)]);
            if pending.len() as u64 >= MIN_PART || last {
                let uploaded = store
                    .client
                    .upload_part()
                    .bucket(&store.bucket)
                    .key(target)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(S3Body::from(pending.split().freeze()))
                    .send()
                    .await
                    .map_err(|e| fail("uploading a part")(sdk(e)))?;
                completed.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .e_tag(uploaded.e_tag().unwrap_or_default())
                        .build(),
                );
                number += 1;
            }
        }
        store
            .client
            .complete_multipart_upload()
            .bucket(&store.bucket)
            .key(target)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| fail("completing a multipart upload")(sdk(e)))
    }
    .await;
    if result.is_err() {
        let _ = store
            .client
            .abort_multipart_upload()
            .bucket(&store.bucket)
            .key(target)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::LocalLocks;

    fn digest(s: &str) -> Digest {
        DigestHasher::digest_of(DigestAlgorithm::Sha256, s.as_bytes())
    }

    /// The `<Key>`s of a `DeleteObjects` body.
    fn keys(body: &str) -> Vec<&str> {
        body.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key))
            .collect()
    }

    /// Answers `DeleteObjects` requests on one connection as S3 would: every key deleted but
    /// those ending in `denied` (AccessDenied) or `missing` (NoSuchKey, as some stores report
    /// keys that were not there). Records each request line and body.
    async fn serve(
        mut conn: TcpStream,
        seen: Arc<Mutex<Vec<(String, String)>>>,
        denied: String,
        missing: String,
    ) {
        let mut buf = Vec::new();
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 16 << 10];
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a DeleteObjects request has a Content-Length");
            while buf.len() < head_end + len {
                let mut chunk = [0u8; 16 << 10];
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
            buf.drain(..head_end + len);
            let mut xml = String::from(
                r#"<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
            );
            for key in keys(&body) {
                let code = if key.ends_with(&denied) {
                    "AccessDenied"
                } else if key.ends_with(&missing) {
                    "NoSuchKey"
                } else {
                    continue;
                };
                xml.push_str(&format!(
                    "<Error><Key>{key}</Key><Code>{code}</Code><Message>no</Message></Error>"
                ));
            }
            xml.push_str("</DeleteResult>");
            let request = head.lines().next().unwrap_or_default().to_owned();
            seen.lock().unwrap().push((request, body));
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                xml.len()
            );
            if conn.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// `delete_blobs` against a stand-in for S3 on the loopback interface: no request carries
    /// more than 1000 keys, every key is sent once, in quiet mode, and a key the store refused
    /// comes back as an error naming it, while one reported missing does not.
    #[tokio::test]
    async fn deletes_go_in_batches_of_1000_and_report_refused_keys() {
        let (denied, missing) = (digest("denied"), digest("missing"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn({
            let seen = seen.clone();
            let (denied, missing) = (denied.hex().to_owned(), missing.hex().to_owned());
            async move {
                while let Ok((conn, _)) = listener.accept().await {
                    tokio::spawn(serve(conn, seen.clone(), denied.clone(), missing.clone()));
                }
            }
        });
        let store = S3Store::new(
            &S3Settings {
                endpoint: Some(endpoint),
                region: "test".into(),
                bucket: "bucket".into(),
                prefix: "p/".into(),
                path_style: true,
                credentials: Some(("key".into(), "secret".into(), None)),
                part_size: MIN_PART,
                writer_lease: Duration::from_secs(5),
                redirect: None,
            },
            Arc::new(LocalLocks::default()),
        )
        .unwrap();

        let mut digests: Vec<Digest> = (0..2500).map(|i| digest(&i.to_string())).collect();
        digests.push(missing.clone());
        store.delete_blobs(&digests).await.unwrap();
        let requests = std::mem::take(&mut *seen.lock().unwrap());
        let sizes: Vec<usize> = requests.iter().map(|(_, body)| keys(body).len()).collect();
        assert_eq!(sizes, [1000, 1000, 501]);
        let sent: Vec<String> = requests
            .iter()
            .flat_map(|(_, body)| keys(body).into_iter().map(str::to_owned))
            .collect();
        let expected: Vec<String> = digests.iter().map(|d| store.blob_key(d)).collect();
        assert_eq!(sent, expected);
        assert!(
            expected[0].starts_with("p/blobs/sha256/"),
            "{}",
            expected[0]
        );
        for (request, body) in &requests {
            assert!(request.starts_with("POST /bucket"), "{request}");
            assert!(request.contains("?delete"), "{request}");
            assert!(body.contains("<Quiet>true</Quiet>"), "{body}");
        }

        // Nothing to delete: no request at all.
        store.delete_blobs(&[]).await.unwrap();
        assert!(seen.lock().unwrap().is_empty());

        // A refused key fails the call and is named; batches before it were sent.
        let mut digests: Vec<Digest> = (0..1200).map(|i| digest(&format!("x{i}"))).collect();
        digests[1100] = denied.clone();
        let err = store.delete_blobs(&digests).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StorageError::Backend { .. }), "{message}");
        assert!(message.contains(&store.blob_key(&denied)), "{message}");
        assert!(message.contains("AccessDenied"), "{message}");
        assert!(message.contains("1 of 200 blobs not deleted"), "{message}");
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn only_blob_keys_under_the_prefix_are_blobs() {
        let store = S3Store::new(
            &S3Settings {
                endpoint: Some("http://127.0.0.1:9".into()),
                region: "test".into(),
                bucket: "bucket".into(),
                prefix: "p/".into(),
                path_style: true,
                credentials: Some(("key".into(), "secret".into(), None)),
                part_size: MIN_PART,
                writer_lease: Duration::from_secs(5),
                redirect: None,
            },
            Arc::new(LocalLocks::default()),
        )
        .unwrap();
        let d = digest("a");
        let sha512 = DigestHasher::digest_of(DigestAlgorithm::Sha512, b"a");
        assert_eq!(store.key_digest(&store.blob_key(&d)), Some(d.clone()));
        assert_eq!(
            store.key_digest(&store.blob_key(&sha512)),
            Some(sha512.clone())
        );
        let hex = d.hex();
        for stray in [
            format!("blobs/sha256/{}/{hex}", &hex[..2]), // no prefix
            format!("q/blobs/sha256/{}/{hex}", &hex[..2]),
            format!("p/blobs/sha256/{}/{hex}.tmp", &hex[..2]),
            format!("p/blobs/sha256/{}/{}", &hex[..2], &hex[..63]),
            format!("p/blobs/sha256/zz/{hex}"),
            format!("p/blobs/sha256/{hex}"),
            format!("p/blobs/sha256/{}/{hex}/x", &hex[..2]),
            format!("p/blobs/md5/{}/{hex}", &hex[..2]),
            format!("p/blobs/sha512/{}/{hex}", &hex[..2]),
            format!("p/blobs/sha256/{}/{}", &hex[..2], hex.to_uppercase()),
            format!("p/uploads/{hex}/started"),
        ] {
            assert_eq!(store.key_digest(&stray), None, "{stray}");
        }
    }
}
