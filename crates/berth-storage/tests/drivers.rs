//! The storage suite: every case runs on every driver, as `<case>::filesystem` (a temporary
//! directory, fsync on) and `<case>::s3` (a bucket of its own on a real Ceph RGW). One RGW
//! serves every S3 case of this binary: the first starts it (~15 s), the others wait for it,
//! and it is stopped when the binary exits. What only one driver has (S3 part layouts, the
//! filesystem's windows and writer threads) is tested beside that driver.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use berth_core::{Digest, DigestAlgorithm, DigestHasher, UploadHasher};
use berth_storage::{
    BlobInfo, BlobPage, BlobStore, ByteStream, FilesystemStore, LocalLocks, S3Settings, S3Store,
    StorageError, UploadWriter,
};
use berth_testkit::CephRgw;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

/// A store under test, and a way around it to the raw storage (to plant stray files).
struct Driver {
    store: Box<dyn BlobStore>,
    raw: Raw,
}

enum Raw {
    Dir(tempfile::TempDir),
    Bucket {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
        _rgw: Arc<CephRgw>,
    },
}

impl Driver {
    /// Writes `data` at `path` (relative to the store's root or prefix), beside the driver.
    async fn put_raw(&self, path: &str, data: &[u8]) {
        match &self.raw {
            Raw::Dir(dir) => {
                let file: PathBuf = dir.path().join(path);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(file, data).unwrap();
            }
            Raw::Bucket {
                client,
                bucket,
                prefix,
                ..
            } => {
                client
                    .put_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{path}"))
                    .body(Bytes::copy_from_slice(data).into())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

fn filesystem() -> Driver {
    let dir = tempfile::tempdir().unwrap();
    let store = FilesystemStore::open(dir.path(), true).unwrap();
    Driver {
        store: Box::new(store),
        raw: Raw::Dir(dir),
    }
}

/// The binary's one RGW, started on first use.
static CEPH: Mutex<Option<Arc<CephRgw>>> = Mutex::new(None);

/// Stops the RGW when the test binary exits (statics are never dropped).
extern "C" fn stop_ceph() {
    let rgw = CEPH.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(rgw);
}

fn ceph() -> Arc<CephRgw> {
    let mut slot = CEPH.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rgw) = &*slot {
        return rgw.clone();
    }
    let rgw = Arc::new(CephRgw::start());
    *slot = Some(rgw.clone());
    #[allow(unsafe_code)]
    // SAFETY: registers a plain function without arguments; it runs once, at exit, when the
    // test threads are done.
    let registered = unsafe { libc::atexit(stop_ceph) };
    assert_eq!(registered, 0, "atexit");
    rgw
}

async fn s3() -> Driver {
    let rgw = tokio::task::spawn_blocking(ceph).await.unwrap();
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("default"))
            .endpoint_url(&rgw.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                &rgw.access_key,
                &rgw.secret_key,
                None,
                None,
                "test",
            ))
            .build(),
    );
    let bucket = format!("drivers-{}", uuid::Uuid::new_v4().simple());
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let prefix = "berth/".to_owned();
    let store = S3Store::new(
        &S3Settings {
            endpoint: Some(rgw.endpoint.clone()),
            region: "default".into(),
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            path_style: true,
            credentials: Some((rgw.access_key.clone(), rgw.secret_key.clone(), None)),
            part_size: 5 << 20,
            writer_lease: Duration::from_secs(2),
            redirect: None,
        },
        Arc::new(LocalLocks::default()),
    )
    .unwrap();
    store.check().await.unwrap();
    Driver {
        store: Box::new(store),
        raw: Raw::Bucket {
            client,
            bucket,
            prefix,
            _rgw: rgw,
        },
    }
}

/// Runs a case on every driver, as `<case>::filesystem` and `<case>::s3`.
macro_rules! on_every_driver {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread")]
            async fn filesystem() {
                let d = super::filesystem();
                super::$case(&d).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn s3() {
                let d = super::s3().await;
                super::$case(&d).await;
            }
        }
    )*};
}

on_every_driver!(
    upload_commit_and_read_ranges,
    appends_resume_and_discard_what_was_not_recorded,
    one_writer_at_a_time,
    interrupted_streams_keep_what_arrived,
    commit_refuses_uploads_shorter_than_the_size,
    cancel_and_list_uploads,
    list_blobs_pages_in_digest_order,
    list_blobs_skips_names_that_are_not_blobs,
    list_blobs_and_delete_blobs_past_one_batch,
    stat_blob_reports_size_and_time,
    delete_blobs_removes_present_and_ignores_missing,
    delete_blobs_in_one_call_of_30,
);

fn sha256(data: &[u8]) -> Digest {
    DigestHasher::digest_of(DigestAlgorithm::Sha256, data)
}

fn sha512(data: &[u8]) -> Digest {
    DigestHasher::digest_of(DigestAlgorithm::Sha512, data)
}

fn body(chunks: &[&[u8]]) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = chunks
        .iter()
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(chunks).boxed()
}

async fn read(store: &dyn BlobStore, d: &Digest, range: Range<u64>) -> Vec<u8> {
    let parts: Vec<Bytes> = store
        .read(d, range)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    parts.concat()
}

/// A writer for `id`, waiting while one just dropped is still being let go (S3 gives its
/// lease up in the background).
async fn writer(store: &dyn BlobStore, id: &str) -> Box<dyn UploadWriter> {
    for _ in 0..200 {
        match store.upload_writer(id).await {
            Err(StorageError::Busy { .. }) => tokio::time::sleep(Duration::from_millis(10)).await,
            other => return other.unwrap(),
        }
    }
    panic!("upload {id} stayed busy");
}

/// Uploads `data` in one append and commits it as `digest` (the caller's verified digest).
async fn commit_as(store: &dyn BlobStore, id: &str, data: &[u8], digest: &Digest) {
    store.start_upload(id).await.unwrap();
    let mut w = writer(store, id).await;
    let appended = w
        .append(0, UploadHasher::default(), body(&[data]))
        .await
        .unwrap();
    assert_eq!(appended.written, data.len() as u64);
    w.commit(digest, data.len() as u64).await.unwrap();
}

/// Uploads and commits `data` as a sha256 blob.
async fn commit(store: &dyn BlobStore, data: &[u8]) -> Digest {
    let d = sha256(data);
    commit_as(store, &format!("up-{}", &d.hex()[..16]), data, &d).await;
    d
}

/// Every blob, page by page with `limit`: checks each page's size and cursor.
async fn list_all(store: &dyn BlobStore, limit: usize) -> Vec<BlobInfo> {
    let mut all = Vec::new();
    let mut after: Option<Digest> = None;
    for _ in 0..10_000 {
        let BlobPage { blobs, next } = store.list_blobs(after.as_ref(), limit).await.unwrap();
        assert!(blobs.len() <= limit.max(1), "{} > {limit}", blobs.len());
        all.extend(blobs.iter().cloned());
        match next {
            Some(cursor) => {
                assert_eq!(blobs.len(), limit.max(1), "only a full page has a next");
                assert_eq!(Some(&cursor), blobs.last().map(|b| &b.digest));
                after = Some(cursor);
            }
            None => return all,
        }
    }
    panic!("the listing never ended");
}

/// The digest one below `d` (as a number).
fn predecessor(d: &Digest) -> Digest {
    let mut hex = d.hex().as_bytes().to_vec();
    for c in hex.iter_mut().rev() {
        match *c {
            b'0' => *c = b'f',
            b'a' => {
                *c = b'9';
                break;
            }
            _ => {
                *c -= 1;
                break;
            }
        }
    }
    let hex = String::from_utf8(hex).unwrap();
    format!("{}:{hex}", d.algorithm().as_str()).parse().unwrap()
}

/// Whether two times fall within the same whole second of each other.
fn same_second(a: SystemTime, b: SystemTime) -> bool {
    let gap = a
        .duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap();
    gap < Duration::from_secs(1)
}

fn digests(blobs: &[BlobInfo]) -> Vec<Digest> {
    blobs.iter().map(|b| b.digest.clone()).collect()
}

/// Two appends through two writers (the hash state saved and restored between them), commit,
/// then reads of the whole blob and of ranges; the upload is gone afterwards, and committing
/// the same content again keeps one blob.
async fn upload_commit_and_read_ranges(d: &Driver) {
    let store = &*d.store;
    store.start_upload("u1").await.unwrap();
    let mut w = writer(store, "u1").await;
    let a = w
        .append(0, UploadHasher::default(), body(&[b"hello ", b"wor"]))
        .await
        .unwrap();
    assert_eq!(a.written, 9);
    assert!(a.interrupted.is_none());
    w.release().await;
    // Another request resumes from the saved hash state.
    let restored = UploadHasher::restore(&a.hasher.save()).unwrap();
    let mut w = writer(store, "u1").await;
    let b = w.append(9, restored, body(&[b"ld"])).await.unwrap();
    assert_eq!(b.written, 2);
    let digest = b.hasher.digest();
    assert_eq!(digest, sha256(b"hello world"));
    // Hashing from storage agrees, in either algorithm.
    assert_eq!(w.digest(DigestAlgorithm::Sha256, 11).await.unwrap(), digest);
    assert_eq!(
        w.digest(DigestAlgorithm::Sha512, 11).await.unwrap(),
        sha512(b"hello world")
    );
    assert_eq!(
        w.digest(DigestAlgorithm::Sha256, 5).await.unwrap(),
        sha256(b"hello")
    );
    w.commit(&digest, 11).await.unwrap();
    assert_eq!(read(store, &digest, 0..11).await, b"hello world");
    assert_eq!(read(store, &digest, 6..9).await, b"wor");
    assert_eq!(read(store, &digest, 10..11).await, b"d");
    assert!(read(store, &digest, 5..5).await.is_empty());
    // The upload is gone once committed.
    assert!(matches!(
        store.upload_writer("u1").await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(store.list_uploads().await.unwrap().is_empty());
    // The same content committed again: still one blob, and the second upload is gone too.
    commit_as(store, "u2", b"hello world", &digest).await;
    assert_eq!(read(store, &digest, 0..11).await, b"hello world");
    assert_eq!(
        digests(&list_all(store, 10).await),
        std::slice::from_ref(&digest)
    );
    assert!(store.list_uploads().await.unwrap().is_empty());
    // An empty blob.
    let empty = commit(store, b"").await;
    assert!(read(store, &empty, 0..0).await.is_empty());
    assert_eq!(store.stat_blob(&empty).await.unwrap().unwrap().size, 0);
}

/// An append at a recorded offset discards what a failed writer left past it; a writer that
/// resumes later continues from the saved state, and only the recorded bytes are committed.
async fn appends_resume_and_discard_what_was_not_recorded(d: &Driver) {
    let store = &*d.store;
    store.start_upload("r").await.unwrap();
    let mut w = writer(store, "r").await;
    let first = w
        .append(0, UploadHasher::default(), body(&[b"abcXXXX"]))
        .await
        .unwrap();
    assert_eq!(first.written, 7);
    drop(w);
    // Only "abc" was recorded: the next writer continues at 3.
    let mut h = UploadHasher::default();
    h.update(b"abc");
    let mut w = writer(store, "r").await;
    let a = w.append(3, h, body(&[b"def"])).await.unwrap();
    assert_eq!(a.written, 3);
    assert_eq!(a.hasher.digest(), sha256(b"abcdef"));
    assert_eq!(
        w.digest(DigestAlgorithm::Sha256, 6).await.unwrap(),
        a.hasher.digest()
    );
    assert!(matches!(
        w.digest(DigestAlgorithm::Sha256, 7).await,
        Err(StorageError::SizeMismatch { .. })
    ));
    drop(w);
    // A retry of the whole upload from 0 replaces everything.
    let mut w = writer(store, "r").await;
    let again = w
        .append(0, UploadHasher::default(), body(&[b"ab", b"cdef"]))
        .await
        .unwrap();
    assert_eq!(again.written, 6);
    drop(w);
    // Resumed once more after the retry: "abcdef" + "gh".
    let mut w = writer(store, "r").await;
    let more = w.append(6, again.hasher, body(&[b"gh"])).await.unwrap();
    let digest = more.hasher.digest();
    assert_eq!(digest, sha256(b"abcdefgh"));
    w.commit(&digest, 8).await.unwrap();
    assert_eq!(read(store, &digest, 0..8).await, b"abcdefgh");
    assert_eq!(store.stat_blob(&digest).await.unwrap().unwrap().size, 8);
}

/// One writer per upload: a second is refused while the first lives; a dropped writer frees
/// the upload (at once on a filesystem, a moment later on S3), a released one before
/// `release` returns. Other uploads are not held up.
async fn one_writer_at_a_time(d: &Driver) {
    let store = &*d.store;
    store.start_upload("busy").await.unwrap();
    store.start_upload("free").await.unwrap();
    let w = store.upload_writer("busy").await.unwrap();
    assert!(matches!(
        store.upload_writer("busy").await,
        Err(StorageError::Busy { .. })
    ));
    store.upload_writer("free").await.unwrap().release().await;
    drop(w);
    let w = writer(store, "busy").await;
    assert!(matches!(
        store.upload_writer("busy").await,
        Err(StorageError::Busy { .. })
    ));
    w.release().await;
    // Released: the client's next request (on any node) finds the upload free at once.
    let w = store.upload_writer("busy").await.unwrap();
    w.release().await;
    // A committed upload frees nothing that another writer could take: it is gone.
    let mut w = store.upload_writer("busy").await.unwrap();
    let a = w
        .append(0, UploadHasher::default(), body(&[b"x"]))
        .await
        .unwrap();
    w.commit(&a.hasher.digest(), 1).await.unwrap();
    assert!(matches!(
        store.upload_writer("busy").await,
        Err(StorageError::NotFound { .. })
    ));
}

/// A body that fails part way: what arrived is written and hashed, the failure is reported,
/// and the upload resumes from there.
async fn interrupted_streams_keep_what_arrived(d: &Driver) {
    let store = &*d.store;
    store.start_upload("cut").await.unwrap();
    let failing: ByteStream = futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Ok(Bytes::from_static(b"de")),
        Err(std::io::Error::other("client went away")),
        Ok(Bytes::from_static(b"never")),
    ])
    .boxed();
    let mut w = writer(store, "cut").await;
    let a = w.append(0, UploadHasher::default(), failing).await.unwrap();
    assert_eq!(a.written, 5);
    assert!(a.interrupted.unwrap().contains("client went away"));
    assert_eq!(
        w.digest(DigestAlgorithm::Sha256, 5).await.unwrap(),
        sha256(b"abcde")
    );
    w.release().await;
    let mut w = writer(store, "cut").await;
    let b = w.append(5, a.hasher, body(&[b"f"])).await.unwrap();
    let digest = b.hasher.digest();
    assert_eq!(digest, sha256(b"abcdef"));
    w.commit(&digest, 6).await.unwrap();
    assert_eq!(read(store, &digest, 0..6).await, b"abcdef");
}

/// Commit checks that the upload holds the size asked for; a refused commit makes nothing
/// visible.
async fn commit_refuses_uploads_shorter_than_the_size(d: &Driver) {
    let store = &*d.store;
    store.start_upload("short").await.unwrap();
    let mut w = writer(store, "short").await;
    w.append(0, UploadHasher::default(), body(&[b"ab"]))
        .await
        .unwrap();
    let claimed = sha256(b"abc");
    assert!(matches!(
        w.commit(&claimed, 3).await,
        Err(StorageError::SizeMismatch { .. })
    ));
    assert_eq!(store.stat_blob(&claimed).await.unwrap(), None);
    assert!(matches!(
        store.read(&claimed, 0..1).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(list_all(store, 10).await.is_empty());
    // An empty upload cannot be committed as one byte either.
    store.start_upload("empty").await.unwrap();
    let w = writer(store, "empty").await;
    assert!(matches!(
        w.commit(&sha256(b"x"), 1).await,
        Err(StorageError::SizeMismatch { .. })
    ));
    assert_eq!(store.stat_blob(&sha256(b"x")).await.unwrap(), None);
}

/// Uploads are listed with the time their data last changed, cancelled (twice, harmlessly),
/// and names that are not upload ids are not found.
async fn cancel_and_list_uploads(d: &Driver) {
    let store = &*d.store;
    let before = SystemTime::now() - Duration::from_secs(5);
    assert!(store.list_uploads().await.unwrap().is_empty());
    store.start_upload("a").await.unwrap();
    store.start_upload("b-2").await.unwrap();
    let mut w = writer(store, "b-2").await;
    w.append(0, UploadHasher::default(), body(&[b"data"]))
        .await
        .unwrap();
    drop(w);
    let mut listed = store.list_uploads().await.unwrap();
    listed.sort();
    let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["a", "b-2"]);
    let after = SystemTime::now() + Duration::from_secs(5);
    for (id, modified) in &listed {
        assert!(
            (before..after).contains(modified),
            "{id}: {modified:?} not between {before:?} and {after:?}"
        );
    }
    store.cancel_upload("a").await.unwrap();
    store.cancel_upload("a").await.unwrap();
    store.cancel_upload("never-started").await.unwrap();
    assert!(matches!(
        store.upload_writer("a").await,
        Err(StorageError::NotFound { .. })
    ));
    let ids: Vec<String> = store
        .list_uploads()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["b-2"]);
    store.cancel_upload("b-2").await.unwrap();
    assert!(store.list_uploads().await.unwrap().is_empty());
    for bad in ["../x", "", "a/b", "a b"] {
        assert!(
            matches!(
                store.upload_writer(bad).await,
                Err(StorageError::NotFound { .. })
            ),
            "{bad:?}"
        );
        assert!(store.start_upload(bad).await.is_err(), "{bad:?}");
    }
    // Blobs are not uploads.
    commit(store, b"blob").await;
    assert!(store.list_uploads().await.unwrap().is_empty());
}

/// Nine blobs of both algorithms listed whole and in pages of every small size: digest-string
/// order (sha256 before sha512), sizes, cursors, the end, cursors between and past blobs.
async fn list_blobs_pages_in_digest_order(d: &Driver) {
    let store = &*d.store;
    // An empty store.
    assert_eq!(
        store.list_blobs(None, 10).await.unwrap(),
        BlobPage::default()
    );
    assert_eq!(
        store.list_blobs(Some(&sha256(b"x")), 10).await.unwrap(),
        BlobPage::default()
    );
    let start = SystemTime::now() - Duration::from_secs(5);
    let mut expected: Vec<(Digest, u64)> = Vec::new();
    for i in 0..7u8 {
        let data = vec![i; usize::from(i) * 10];
        expected.push((commit(store, &data).await, data.len() as u64));
    }
    for data in [&b"five hundred and twelve"[..], b"sha512 too"] {
        let digest = sha512(data);
        commit_as(store, &format!("big-{}", data.len()), data, &digest).await;
        expected.push((digest, data.len() as u64));
    }
    expected.sort();
    let end = SystemTime::now() + Duration::from_secs(5);
    let ordered: Vec<Digest> = expected.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(
        ordered.iter().map(|d| d.algorithm()).collect::<Vec<_>>(),
        [
            [DigestAlgorithm::Sha256; 7].as_slice(),
            &[DigestAlgorithm::Sha512; 2]
        ]
        .concat()
    );

    // Whole, in one page.
    let page = store.list_blobs(None, 100).await.unwrap();
    assert_eq!(page.next, None);
    let listed: Vec<(Digest, u64)> = page
        .blobs
        .iter()
        .map(|b| (b.digest.clone(), b.size))
        .collect();
    assert_eq!(listed, expected);
    for b in &page.blobs {
        assert!((start..end).contains(&b.modified), "{b:?}");
        // Listing and stat agree (S3 gives the time to the second in one, to the millisecond
        // in the other).
        let stat = store.stat_blob(&b.digest).await.unwrap().unwrap();
        assert_eq!((&stat.digest, stat.size), (&b.digest, b.size));
        assert!(same_second(stat.modified, b.modified), "{stat:?} {b:?}");
    }
    // Exactly as many as asked for: no next page.
    let page = store.list_blobs(None, 9).await.unwrap();
    assert_eq!((page.blobs.len(), page.next), (9, None));
    // In pages of every small size; a limit of 0 is taken as 1.
    for limit in [0, 1, 2, 3, 4, 5, 8] {
        assert_eq!(digests(&list_all(store, limit).await), ordered, "{limit}");
    }
    let first = store.list_blobs(None, 4).await.unwrap();
    assert_eq!(digests(&first.blobs), ordered[..4]);
    assert_eq!(first.next.as_ref(), Some(&ordered[3]));
    let second = store.list_blobs(first.next.as_ref(), 4).await.unwrap();
    assert_eq!(digests(&second.blobs), ordered[4..8]);
    assert_eq!(second.next.as_ref(), Some(&ordered[7]));
    let third = store.list_blobs(second.next.as_ref(), 4).await.unwrap();
    assert_eq!(digests(&third.blobs), ordered[8..]);
    assert_eq!(third.next, None);

    // Cursors that are not blobs: the listing goes on with the next larger digest.
    let hex = |c: char, alg: DigestAlgorithm| c.to_string().repeat(alg.hex_len());
    let cursor = |text: String| text.parse::<Digest>().unwrap();
    let cases = [
        (
            cursor(format!("sha256:{}", hex('0', DigestAlgorithm::Sha256))),
            &ordered[..],
        ),
        (
            cursor(format!("sha256:{}", hex('f', DigestAlgorithm::Sha256))),
            &ordered[7..],
        ),
        (
            cursor(format!("sha512:{}", hex('0', DigestAlgorithm::Sha512))),
            &ordered[7..],
        ),
        (
            cursor(format!("sha512:{}", hex('f', DigestAlgorithm::Sha512))),
            &[][..],
        ),
        // Past the end.
        (ordered[8].clone(), &[][..]),
    ];
    for (after, rest) in cases {
        let page = store.list_blobs(Some(&after), 100).await.unwrap();
        assert_eq!(digests(&page.blobs), rest, "after {after}");
        assert_eq!(page.next, None);
    }
    // The digest just below a blob: that blob comes next.
    let target = &ordered[2];
    let below = predecessor(target);
    assert!(ordered[1] <= below && below < *target);
    let page = store.list_blobs(Some(&below), 1).await.unwrap();
    assert_eq!(digests(&page.blobs), std::slice::from_ref(target));
    assert_eq!(page.next.as_ref(), Some(target));
}

/// Stray names in the blob area (temporary files, names of the wrong length or case, a digest
/// under the wrong prefix, unknown algorithms) are not blobs: listing skips them at every
/// page size, and stat, read and delete of the real blobs are unaffected.
async fn list_blobs_skips_names_that_are_not_blobs(d: &Driver) {
    let store = &*d.store;
    let a = commit(store, b"first real blob").await;
    let b = commit(store, b"second real blob").await;
    for real in [&a, &b] {
        let (hex, p) = (real.hex(), &real.hex()[..2]);
        d.put_raw(&format!("blobs/sha256/{p}/{hex}.tmp"), b"partial")
            .await;
        d.put_raw(&format!("blobs/sha256/{p}/{}", &hex[..63]), b"short")
            .await;
        d.put_raw(&format!("blobs/sha256/{p}/.{hex}"), b"hidden")
            .await;
        d.put_raw(
            &format!("blobs/sha256/{p}/{}", hex.to_uppercase()),
            b"upper",
        )
        .await;
    }
    let elsewhere = sha256(b"under the wrong prefix");
    let wrong = if elsewhere.hex().starts_with("00") {
        "01"
    } else {
        "00"
    };
    d.put_raw(&format!("blobs/sha256/{wrong}/{}", elsewhere.hex()), b"x")
        .await;
    d.put_raw("blobs/md5/ab/abcdef", b"md5").await;
    d.put_raw("blobs/zz-readme/notes", b"notes").await;
    d.put_raw("blobs/README", b"readme").await;

    let mut real = vec![a.clone(), b.clone()];
    real.sort();
    for limit in [1, 2, 3, 100] {
        assert_eq!(digests(&list_all(store, limit).await), real, "{limit}");
    }
    assert_eq!(store.stat_blob(&elsewhere).await.unwrap(), None);
    assert_eq!(
        store.stat_blob(&a).await.unwrap().unwrap().size,
        b"first real blob".len() as u64
    );
    assert_eq!(read(store, &b, 0..6).await, b"second");
    store.delete_blobs(&[a.clone(), elsewhere]).await.unwrap();
    assert_eq!(digests(&list_all(store, 1).await), std::slice::from_ref(&b));
    assert_eq!(read(store, &b, 0..6).await, b"second");
}

/// Twelve hundred blobs (written beside the driver, named by the digest of their content):
/// more than S3 lists or deletes in one request. Listed whole and in pages of 1000, then all
/// deleted in one call with missing ones among them.
async fn list_blobs_and_delete_blobs_past_one_batch(d: &Driver) {
    let store = &*d.store;
    let contents: Vec<String> = (0..1200).map(|i| format!("blob number {i}")).collect();
    let unsorted: Vec<Digest> = contents.iter().map(|c| sha256(c.as_bytes())).collect();
    futures_util::stream::iter(contents.iter().zip(&unsorted))
        .for_each_concurrent(32, |(content, digest)| async move {
            let hex = digest.hex();
            d.put_raw(
                &format!("blobs/sha256/{}/{hex}", &hex[..2]),
                content.as_bytes(),
            )
            .await;
        })
        .await;
    let mut all = unsorted.clone();
    all.sort();
    let whole = store.list_blobs(None, 5000).await.unwrap();
    assert_eq!(whole.next, None);
    assert_eq!(digests(&whole.blobs), all);
    let sizes: HashMap<&Digest, u64> = contents
        .iter()
        .zip(&unsorted)
        .map(|(c, d)| (d, c.len() as u64))
        .collect();
    for b in &whole.blobs {
        assert_eq!(Some(&b.size), sizes.get(&b.digest), "{}", b.digest);
    }
    let first = store.list_blobs(None, 1000).await.unwrap();
    assert_eq!(digests(&first.blobs), all[..1000]);
    assert_eq!(first.next.as_ref(), Some(&all[999]));
    let second = store.list_blobs(first.next.as_ref(), 1000).await.unwrap();
    assert_eq!(digests(&second.blobs), all[1000..]);
    assert_eq!(second.next, None);

    // Every blob and 300 that are not there, in one call.
    let mut doomed = all.clone();
    doomed.extend((0..300).map(|i| sha256(format!("missing {i}").as_bytes())));
    store.delete_blobs(&doomed).await.unwrap();
    assert_eq!(
        store.list_blobs(None, 5000).await.unwrap(),
        BlobPage::default()
    );
    for digest in [&all[0], &all[999], &all[1000], &all[1199]] {
        assert_eq!(store.stat_blob(digest).await.unwrap(), None);
    }
}

/// Stat of a present blob gives its size and a recent time; of a missing one, nothing.
async fn stat_blob_reports_size_and_time(d: &Driver) {
    let store = &*d.store;
    let absent = sha256(b"absent");
    assert_eq!(store.stat_blob(&absent).await.unwrap(), None);
    assert_eq!(store.stat_blob(&sha512(b"absent")).await.unwrap(), None);
    assert!(matches!(
        store.read(&absent, 0..1).await,
        Err(StorageError::NotFound { .. })
    ));
    let before = SystemTime::now() - Duration::from_secs(5);
    let data = vec![7u8; 100_000];
    let digest = commit(store, &data).await;
    let after = SystemTime::now() + Duration::from_secs(5);
    let info = store.stat_blob(&digest).await.unwrap().unwrap();
    assert_eq!(info.digest, digest);
    assert_eq!(info.size, 100_000);
    assert!((before..after).contains(&info.modified), "{info:?}");
    let d512 = sha512(b"by sha512");
    commit_as(store, "sha512", b"by sha512", &d512).await;
    assert_eq!(store.stat_blob(&d512).await.unwrap().unwrap().size, 9);
}

/// Deleting present and missing blobs together succeeds; what was deleted can no longer be
/// read, stat'd or listed, what was not is untouched; deleting again, or nothing, is fine;
/// and the same content can be committed again afterwards.
async fn delete_blobs_removes_present_and_ignores_missing(d: &Driver) {
    let store = &*d.store;
    let one = commit(store, b"one").await;
    let two = commit(store, b"two").await;
    let three = commit(store, b"three").await;
    let missing = sha256(b"never stored");
    store
        .delete_blobs(&[one.clone(), missing.clone()])
        .await
        .unwrap();
    assert_eq!(store.stat_blob(&one).await.unwrap(), None);
    assert!(matches!(
        store.read(&one, 0..3).await,
        Err(StorageError::NotFound { .. })
    ));
    let mut rest = vec![two.clone(), three.clone()];
    rest.sort();
    assert_eq!(digests(&list_all(store, 1).await), rest);
    assert_eq!(read(store, &two, 0..3).await, b"two");
    assert_eq!(store.stat_blob(&three).await.unwrap().unwrap().size, 5);
    // Again, nothing, only missing ones, the same digest twice.
    store
        .delete_blobs(std::slice::from_ref(&one))
        .await
        .unwrap();
    store.delete_blobs(&[]).await.unwrap();
    store
        .delete_blobs(&[missing.clone(), sha512(b"never")])
        .await
        .unwrap();
    store
        .delete_blobs(&[two.clone(), two.clone()])
        .await
        .unwrap();
    assert_eq!(store.stat_blob(&two).await.unwrap(), None);
    assert_eq!(
        digests(&list_all(store, 10).await),
        std::slice::from_ref(&three)
    );
    // Pushed again after a collection: the blob is back.
    assert_eq!(commit(store, b"one").await, one);
    assert_eq!(read(store, &one, 0..3).await, b"one");
    assert_eq!(store.stat_blob(&one).await.unwrap().unwrap().size, 3);
    let d512 = sha512(b"five-twelve");
    commit_as(store, "s512", b"five-twelve", &d512).await;
    store.delete_blobs(&[d512.clone(), three]).await.unwrap();
    assert_eq!(store.stat_blob(&d512).await.unwrap(), None);
    assert_eq!(digests(&list_all(store, 10).await), [one]);
}

/// Thirty blobs uploaded and committed through the driver, deleted in one call with ten
/// missing digests among them.
async fn delete_blobs_in_one_call_of_30(d: &Driver) {
    let store = &*d.store;
    let mut blobs = Vec::new();
    for i in 0..30 {
        blobs.push(commit(store, format!("blob {i}").as_bytes()).await);
    }
    blobs.sort();
    assert_eq!(digests(&list_all(store, 7).await), blobs);
    let mut doomed = Vec::new();
    for (i, b) in blobs.iter().enumerate() {
        doomed.push(b.clone());
        if i % 3 == 0 {
            doomed.push(sha256(format!("missing {i}").as_bytes()));
        }
    }
    store.delete_blobs(&doomed).await.unwrap();
    assert!(list_all(store, 7).await.is_empty());
    for b in &blobs {
        assert_eq!(store.stat_blob(b).await.unwrap(), None, "{b}");
        assert!(matches!(
            store.read(b, 0..1).await,
            Err(StorageError::NotFound { .. })
        ));
    }
}
