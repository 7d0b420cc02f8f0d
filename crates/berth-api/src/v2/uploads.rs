//! Pushing blobs: upload sessions under `/v2/<name>/blobs/uploads/`.
//!
//! A session is a row in the metadata store (offset, running hash state) plus an upload in the
//! blob store; no node keeps anything about it in memory, so any node can continue any session.
//! A request that writes first takes the blob store's exclusive writer for the upload (released
//! even if its node dies), then reads the recorded offset, appends there while hashing, and
//! records the new offset and hash state before letting go. Finishing compares the saved hash
//! with the digest asked for, so the common push (POST, one streamed PATCH, PUT `?digest=`)
//! never reads its bytes twice.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use berth_core::{Digest, DigestAlgorithm, ErrorCode, RepositoryName, UploadHasher};
use berth_storage::{ByteStream, StorageError, UploadWriter};
use futures_util::TryStreamExt;
use serde_json::json;

use super::{empty, header_value, parse_digest, query_param};
use crate::auth::Caller;
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

/// Appends a request body at `offset`. `Err`: nothing changed. `Ok` with an error: some bytes
/// were written and must be recorded before the error is answered.
async fn append(
    writer: &mut dyn UploadWriter,
    name: &RepositoryName,
    id: &str,
    offset: u64,
    hasher: Option<UploadHasher>,
    req: Request,
) -> Result<(Progress, Option<RegistryError>), RegistryError> {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
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
        if let Some(n) = content_length.filter(|&n| n != length) {
            return Err(RegistryError::new(
                ErrorCode::SizeInvalid,
                format!("Content-Range {text:?} is {length} bytes but Content-Length is {n}"),
            ));
        }
        declared = Some(length);
    }
    let known_hash = hasher.is_some();
    let appended = writer
        .append(offset, hasher.unwrap_or_default(), body_stream(body))
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

/// A session opened for writing by one request.
struct Session {
    id: String,
    size: u64,
    hasher: Option<UploadHasher>,
    writer: Box<dyn UploadWriter>,
}

impl Session {
    async fn open(app: &App, name: &RepositoryName, id: &str) -> Result<Self, RegistryError> {
        // The writer first, the recorded state second: whoever wrote before us recorded its
        // progress before letting go of the writer, so what we read matches the bytes.
        let writer = match app.blobs.upload_writer(id).await {
            Ok(w) => w,
            Err(StorageError::NotFound { .. }) => return Err(unknown_upload(id)),
            Err(StorageError::Busy { .. }) => {
                return Err(RegistryError::new(
                    ErrorCode::BlobUploadInvalid,
                    format!("upload {id} is being written by another request; retry when it has finished"),
                )
                .status(StatusCode::CONFLICT)
                .header(header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            Err(e) => return Err(e.into()),
        };
        let s = app
            .meta
            .upload(name.as_str(), id)
            .await?
            .ok_or_else(|| unknown_upload(id))?;
        let hasher = match s.hash_state {
            Some(state) => UploadHasher::restore(&state),
            None if s.size == 0 => Some(UploadHasher::default()),
            None => None,
        };
        Ok(Self {
            id: s.id,
            size: s.size,
            hasher,
            writer,
        })
    }

    /// Appends the request body at the recorded offset.
    async fn append(
        &mut self,
        name: &RepositoryName,
        req: Request,
    ) -> Result<(Progress, Option<RegistryError>), RegistryError> {
        append(
            &mut *self.writer,
            name,
            &self.id,
            self.size,
            self.hasher.clone(),
            req,
        )
        .await
    }

    /// Records progress (while the writer is still held).
    async fn record(&self, app: &App, progress: &Progress) -> Result<(), RegistryError> {
        let state = progress.hasher.as_ref().map(UploadHasher::save);
        if app
            .meta
            .record_upload(&self.id, self.size, progress.size, state.as_deref())
            .await?
        {
            Ok(())
        } else {
            Err(RegistryError::new(
                ErrorCode::BlobUploadUnknown,
                format!(
                    "upload {} was cancelled or finished while this request wrote to it",
                    self.id
                ),
            ))
        }
    }
}

/// `POST /v2/<name>/blobs/uploads/`: mount, single-request upload, or a new session.
pub(super) async fn start(
    app: &App,
    caller: &Caller,
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
        // A mount reads the source: the caller must be able to pull it.
        let permitted = match &from {
            Some(from) => caller.may(app, from.as_str(), "pull").await?,
            None => caller.may_mount_from_anywhere(),
        };
        if permitted
            && app
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
    let outcome = async {
        let mut writer = app.blobs.upload_writer(&id).await?;
        let (progress, error) = append(
            &mut *writer,
            name,
            &id,
            0,
            Some(UploadHasher::default()),
            req,
        )
        .await?;
        if let Some(e) = error {
            return Err(e);
        }
        commit(app, name, &id, writer, &progress, digest, false).await
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
    mut writer: Box<dyn UploadWriter>,
    progress: &Progress,
    digest: &Digest,
    has_session: bool,
) -> Result<Response, RegistryError> {
    let actual = match (&progress.hasher, digest.algorithm()) {
        (Some(hasher), DigestAlgorithm::Sha256) => hasher.digest(),
        (_, algorithm) => writer.digest(algorithm, progress.size).await?,
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
    writer.commit(digest, progress.size).await?;
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
    let mut session = Session::open(app, name, id).await?;
    let (progress, error) = session.append(name, req).await?;
    session.record(app, &progress).await?;
    // Free before answering: the client's next request may come at once, to any node.
    session.writer.release().await;
    match error {
        Some(e) => Err(e),
        None => Ok(empty(
            StatusCode::ACCEPTED,
            session_headers(name, id, progress.size),
        )),
    }
}

/// `PUT …/uploads/<id>?digest=`: optionally a last chunk, then verify and commit, holding the
/// upload's writer throughout.
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
    let mut session = Session::open(app, name, id).await?;
    let progress = if has_body(req.headers()) {
        match session.append(name, req).await? {
            (progress, None) => progress,
            (progress, Some(error)) => {
                session.record(app, &progress).await?;
                session.writer.release().await;
                return Err(error);
            }
        }
    } else {
        Progress {
            size: session.size,
            hasher: session.hasher.clone(),
        }
    };
    if progress.size != session.size {
        // Keep the last chunk even if committing fails below.
        session.record(app, &progress).await?;
    }
    let Session { writer, .. } = session;
    commit(app, name, id, writer, &progress, &digest, true).await
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
