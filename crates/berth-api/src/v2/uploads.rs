//! Pushing blobs: upload sessions under `/v2/<name>/blobs/uploads/`.
//!
//! A session is a row in the metadata store (offset, running hash state, write lock) plus an
//! upload in the blob store; no node keeps anything about it in memory, so any node can
//! continue any session. Each request that writes takes the session's lock, appends at the
//! recorded offset while hashing, then records the new offset and hash state and releases the
//! lock. Finishing compares the saved hash with the digest asked for, so the common push
//! (POST, one streamed PATCH, PUT `?digest=`) never reads its bytes twice.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use berth_core::{Digest, DigestAlgorithm, ErrorCode, RepositoryName, UploadHasher};
use berth_meta::Acquire;
use berth_storage::ByteStream;
use futures_util::TryStreamExt;
use serde_json::json;

use super::{empty, header_value, parse_digest, query_param};
use crate::{App, RegistryError};

fn location(name: &RepositoryName, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// Headers describing a session's state: where to continue, and what was received.
fn session_headers(name: &RepositoryName, id: &str, size: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::LOCATION, header_value(&location(name, id)));
    // An empty session reports 0-0, as Docker's distribution does and clients expect.
    h.insert(
        header::RANGE,
        header_value(&format!("0-{}", size.saturating_sub(1))),
    );
    h.insert("docker-upload-uuid", header_value(id));
    h
}

/// 201 for a blob now in the repository.
fn blob_created(name: &RepositoryName, digest: &Digest) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/blobs/{digest}")),
    );
    h.insert("docker-content-digest", header_value(digest.as_str()));
    empty(StatusCode::CREATED, h)
}

fn unknown_upload(id: &str) -> RegistryError {
    RegistryError::new(
        ErrorCode::BlobUploadUnknown,
        format!("upload {id} is not known (finished, cancelled or never started)"),
    )
}

fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// Whether a request carries a body at all.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// Parses `Content-Range: <start>-<end>` (also with a `bytes` unit and a `/<total>` suffix).
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let v = value.trim();
    let v = v
        .strip_prefix("bytes")
        .map_or(v, |r| r.trim_start_matches(['=', ' ']));
    let v = v.split('/').next()?;
    let (start, end) = v.split_once('-')?;
    let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (end >= start).then_some((start, end))
}

/// The state of a session after an append.
struct Progress {
    size: u64,
    /// `None` when the hash state was lost: finishing re-hashes from storage.
    hasher: Option<UploadHasher>,
}

/// Keeps a session's write lock alive while a long body streams in.
struct LockRenewal(tokio::task::JoinHandle<()>);

impl LockRenewal {
    fn start(app: &App, id: &str, holder: &str) -> Self {
        let (meta, id, holder) = (app.meta.clone(), id.to_owned(), holder.to_owned());
        let ttl = app.limits.upload_lock_ttl;
        Self(tokio::spawn(async move {
            let mut every = tokio::time::interval((ttl / 3).max(Duration::from_secs(1)));
            every.tick().await;
            loop {
                every.tick().await;
                if !matches!(meta.renew_upload_lock(&id, &holder, ttl).await, Ok(true)) {
                    tracing::warn!(upload = %id, "could not renew the upload's write lock");
                }
            }
        }))
    }
}

impl Drop for LockRenewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Appends a request body to upload `id` at `offset`. `Err`: nothing changed. `Ok` with an
/// error: some bytes were written and must be recorded before the error is answered.
#[allow(clippy::too_many_arguments)]
async fn append(
    app: &App,
    name: &RepositoryName,
    id: &str,
    holder: Option<&str>,
    offset: u64,
    hasher: Option<UploadHasher>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Progress, Option<RegistryError>), RegistryError> {
    let mut declared = None;
    if let Some(value) = headers.get(header::CONTENT_RANGE) {
        let text = value.to_str().unwrap_or("");
        let Some((start, end)) = parse_content_range(text) else {
            return Err(RegistryError::new(
                ErrorCode::RangeInvalid,
                format!("invalid Content-Range {text:?}: expected <start>-<end>"),
            )
            .headers(session_headers(name, id, offset)));
        };
        if start != offset {
            return Err(RegistryError::new(
                ErrorCode::RangeInvalid,
                format!("chunk starts at byte {start}, but the upload has {offset} bytes: send the chunk that starts at {offset}"),
            )
            .headers(session_headers(name, id, offset)));
        }
        let length = end - start + 1;
        let content_length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if content_length.is_some_and(|n| n != length) {
            return Err(RegistryError::new(
                ErrorCode::SizeInvalid,
                format!(
                    "Content-Range {text:?} is {length} bytes but Content-Length is {}",
                    content_length.unwrap_or(0)
                ),
            ));
        }
        declared = Some(length);
    }
    let _renewal = holder.map(|h| LockRenewal::start(app, id, h));
    let known_hash = hasher.is_some();
    let appended = app
        .blobs
        .append_upload(id, offset, hasher.unwrap_or_default(), body_stream(body))
        .await?;
    let progress = Progress {
        size: offset + appended.written,
        hasher: known_hash.then_some(appended.hasher),
    };
    if let Some(reason) = appended.interrupted {
        let error = RegistryError::new(
            ErrorCode::BlobUploadInvalid,
            format!("the request body ended early: {reason}"),
        );
        return Ok((progress, Some(error)));
    }
    if let Some(expected) = declared.filter(|&n| n != appended.written) {
        let error = RegistryError::new(
            ErrorCode::SizeInvalid,
            format!(
                "Content-Range announced {expected} bytes but the body had {}",
                appended.written
            ),
        );
        return Ok((progress, Some(error)));
    }
    Ok((progress, None))
}

/// The write lock on a session, held by one request.
struct Session {
    id: String,
    holder: String,
    size: u64,
    hasher: Option<UploadHasher>,
}

impl Session {
    async fn lock(app: &App, name: &RepositoryName, id: &str) -> Result<Self, RegistryError> {
        let holder = uuid::Uuid::new_v4().to_string();
        match app
            .meta
            .acquire_upload(name.as_str(), id, &holder, app.limits.upload_lock_ttl)
            .await?
        {
            Acquire::Acquired(s) => {
                let hasher = match s.hash_state {
                    Some(state) => UploadHasher::restore(&state),
                    None if s.size == 0 => Some(UploadHasher::default()),
                    None => None,
                };
                Ok(Self {
                    id: s.id,
                    holder,
                    size: s.size,
                    hasher,
                })
            }
            Acquire::Busy => Err(RegistryError::new(
                ErrorCode::BlobUploadInvalid,
                format!(
                    "upload {id} is being written by another request; retry when it has finished"
                ),
            )
            .status(StatusCode::CONFLICT)
            .header(header::RETRY_AFTER, HeaderValue::from_static("1"))),
            Acquire::Unknown => Err(unknown_upload(id)),
        }
    }

    /// Records progress and releases the lock.
    async fn record(&self, app: &App, progress: &Progress) -> Result<(), RegistryError> {
        let state = progress.hasher.as_ref().map(UploadHasher::save);
        if app
            .meta
            .record_upload(&self.id, &self.holder, progress.size, state.as_deref())
            .await?
        {
            Ok(())
        } else {
            Err(RegistryError::new(
                ErrorCode::BlobUploadInvalid,
                format!(
                    "upload {} was taken over or cancelled while this request wrote to it; restart the upload",
                    self.id
                ),
            ))
        }
    }

    async fn release(&self, app: &App) {
        if let Err(e) = app.meta.release_upload(&self.id, &self.holder).await {
            tracing::warn!(upload = %self.id, error = %e, "could not release the upload's write lock");
        }
    }

    /// Appends the request body. On `Err` the lock is released and nothing changed; otherwise
    /// the caller records the progress (which releases the lock) or commits.
    async fn append(
        &self,
        app: &App,
        name: &RepositoryName,
        req: Request,
    ) -> Result<(Progress, Option<RegistryError>), RegistryError> {
        let (parts, body) = req.into_parts();
        let result = append(
            app,
            name,
            &self.id,
            Some(&self.holder),
            self.size,
            self.hasher.clone(),
            &parts.headers,
            body,
        )
        .await;
        if result.is_err() {
            self.release(app).await;
        }
        result
    }
}

/// `POST /v2/<name>/blobs/uploads/`: mount, single-request upload, or a new session.
pub(super) async fn start(
    app: &App,
    name: &RepositoryName,
    req: Request,
) -> Result<Response, RegistryError> {
    if let Some(mount) = query_param(req.uri(), "mount") {
        let digest = parse_digest(&mount)?;
        let from = query_param(req.uri(), "from")
            .map(|f| {
                f.parse::<RepositoryName>()
                    .map_err(|e| RegistryError::new(ErrorCode::NameInvalid, e.to_string()))
            })
            .transpose()?;
        if app
            .meta
            .mount_blob(
                name.as_str(),
                &digest,
                from.as_ref().map(RepositoryName::as_str),
            )
            .await?
        {
            return Ok(blob_created(name, &digest));
        }
        // Not mountable: the client uploads it instead, into the session opened below.
    } else if let Some(digest) = query_param(req.uri(), "digest") {
        let digest = parse_digest(&digest)?;
        return monolithic(app, name, &digest, req).await;
    }
    let id = uuid::Uuid::new_v4().to_string();
    app.blobs.start_upload(&id).await?;
    app.meta.create_upload(&id, name.as_str()).await?;
    Ok(empty(StatusCode::ACCEPTED, session_headers(name, &id, 0)))
}

/// `POST …/uploads/?digest=` with the blob as body: no session row is needed, since no other
/// request can know this upload.
async fn monolithic(
    app: &App,
    name: &RepositoryName,
    digest: &Digest,
    req: Request,
) -> Result<Response, RegistryError> {
    let id = uuid::Uuid::new_v4().to_string();
    app.blobs.start_upload(&id).await?;
    let (parts, body) = req.into_parts();
    let outcome = async {
        let (progress, error) = append(
            app,
            name,
            &id,
            None,
            0,
            Some(UploadHasher::default()),
            &parts.headers,
            body,
        )
        .await?;
        if let Some(e) = error {
            return Err(e);
        }
        commit(app, name, &id, &progress, digest, false).await
    }
    .await;
    if outcome.is_err() {
        let _ = app.blobs.cancel_upload(&id).await;
    }
    outcome
}

/// Verifies an upload against `digest`, moves it into the blob store and links it. A mismatch
/// ends the session: its bytes are not what the client meant to send.
async fn commit(
    app: &App,
    name: &RepositoryName,
    id: &str,
    progress: &Progress,
    digest: &Digest,
    has_session: bool,
) -> Result<Response, RegistryError> {
    let actual = match (&progress.hasher, digest.algorithm()) {
        (Some(hasher), DigestAlgorithm::Sha256) => hasher.digest(),
        (_, algorithm) => {
            app.blobs
                .digest_upload(id, algorithm, progress.size)
                .await?
        }
    };
    if &actual != digest {
        if has_session {
            app.meta.delete_upload(name.as_str(), id).await?;
            app.blobs.cancel_upload(id).await?;
        }
        return Err(RegistryError::new(
            ErrorCode::DigestInvalid,
            format!("the uploaded content ({} bytes) has digest {actual}, not {digest}; the upload was discarded", progress.size),
        )
        .detail(json!({"expected": digest, "actual": actual, "size": progress.size})));
    }
    app.blobs.commit_upload(id, digest, progress.size).await?;
    app.meta
        .link_blob(
            name.as_str(),
            digest,
            progress.size,
            has_session.then_some(id),
        )
        .await?;
    Ok(blob_created(name, digest))
}

/// `GET …/uploads/<id>`: where the session stands.
pub(super) async fn status(
    app: &App,
    name: &RepositoryName,
    id: &str,
) -> Result<Response, RegistryError> {
    let session = app
        .meta
        .upload(name.as_str(), id)
        .await?
        .ok_or_else(|| unknown_upload(id))?;
    Ok(empty(
        StatusCode::NO_CONTENT,
        session_headers(name, id, session.size),
    ))
}

/// `PATCH …/uploads/<id>`: append a chunk (with `Content-Range`) or stream the rest (without).
pub(super) async fn patch(
    app: &App,
    name: &RepositoryName,
    id: &str,
    req: Request,
) -> Result<Response, RegistryError> {
    let session = Session::lock(app, name, id).await?;
    let (progress, error) = session.append(app, name, req).await?;
    session.record(app, &progress).await?;
    match error {
        Some(e) => Err(e),
        None => Ok(empty(
            StatusCode::ACCEPTED,
            session_headers(name, id, progress.size),
        )),
    }
}

/// `PUT …/uploads/<id>?digest=`: optionally a last chunk, then verify and commit, holding the
/// session's lock throughout.
pub(super) async fn finish(
    app: &App,
    name: &RepositoryName,
    id: &str,
    req: Request,
) -> Result<Response, RegistryError> {
    let digest = query_param(req.uri(), "digest").ok_or_else(|| {
        RegistryError::new(
            ErrorCode::DigestInvalid,
            "the digest query parameter is required to finish an upload",
        )
    })?;
    let digest = parse_digest(&digest)?;
    let session = Session::lock(app, name, id).await?;
    let progress = if has_body(req.headers()) {
        match session.append(app, name, req).await? {
            (progress, None) => progress,
            (progress, Some(error)) => {
                session.record(app, &progress).await?;
                return Err(error);
            }
        }
    } else {
        Progress {
            size: session.size,
            hasher: session.hasher.clone(),
        }
    };
    let result = commit(app, name, id, &progress, &digest, true).await;
    if result.is_err() {
        // The session survives storage or database trouble: keep what arrived, and unlock.
        // (After a digest mismatch the session is gone and this records nothing.)
        let _ = session.record(app, &progress).await;
    }
    result
}

/// `DELETE …/uploads/<id>`: cancel.
pub(super) async fn cancel(
    app: &App,
    name: &RepositoryName,
    id: &str,
) -> Result<Response, RegistryError> {
    if !app.meta.delete_upload(name.as_str(), id).await? {
        return Err(unknown_upload(id));
    }
    app.blobs.cancel_upload(id).await?;
    Ok(empty(StatusCode::NO_CONTENT, HeaderMap::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-21"), Some((0, 21)));
        assert_eq!(parse_content_range("bytes=22-41"), Some((22, 41)));
        assert_eq!(parse_content_range("bytes 22-41/42"), Some((22, 41)));
        assert_eq!(parse_content_range("5-4"), None);
        assert_eq!(parse_content_range("x-4"), None);
        assert_eq!(parse_content_range(""), None);
    }
}
