//! Pushing blobs: upload sessions under `/v2/<name>/blobs/uploads/`, in HTTP. The protocol
//! itself (sessions any node can continue, verification, commit) is the registry service's
//! (`berth_registry::Registry::start_upload` and the rest); this module maps requests onto it
//! and its answers and errors onto the OCI Distribution API.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use berth_core::{Action, Digest, ErrorCode, RepositoryName};
use berth_registry::{Chunk, UploadError};
use berth_storage::ByteStream;
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

/// A request body as a chunk of session `id` (`None`: a single-request upload), with what its
/// `Content-Range` announces (an invalid range, or one that disagrees with `Content-Length`,
/// is refused before any byte is read).
async fn chunk(
    app: &App,
    name: &RepositoryName,
    id: Option<&str>,
    req: Request,
) -> Result<Chunk, RegistryError> {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let mut chunk = Chunk::stream(body_stream(body));
    if let Some(value) = headers.get(header::CONTENT_RANGE) {
        let text = value.to_str().unwrap_or("");
        let Some((start, end)) = parse_content_range(text) else {
            let message = format!("invalid Content-Range {text:?}: expected <start>-<end>");
            let Some(id) = id else {
                return Err(RegistryError::new(ErrorCode::RangeInvalid, message));
            };
            let size = app
                .registry
                .upload_size(name, id)
                .await
                .map_err(|e| upload_error(name, id, e))?;
            return Err(RegistryError::new(ErrorCode::RangeInvalid, message)
                .headers(session_headers(name, id, size)));
        };
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
        chunk.start = Some(start);
        chunk.length = Some(length);
    }
    Ok(chunk)
}

/// An upload failure in the OCI envelope.
fn upload_error(name: &RepositoryName, id: &str, e: UploadError) -> RegistryError {
    let message = e.to_string();
    match e {
        UploadError::Unknown(_) | UploadError::Vanished(_) => {
            RegistryError::new(ErrorCode::BlobUploadUnknown, message)
        }
        UploadError::Busy(_) => RegistryError::new(ErrorCode::BlobUploadInvalid, message)
            .status(StatusCode::CONFLICT)
            .header(header::RETRY_AFTER, HeaderValue::from_static("1")),
        UploadError::OutOfOrder { size, .. } => {
            RegistryError::new(ErrorCode::RangeInvalid, message)
                .headers(session_headers(name, id, size))
        }
        UploadError::Interrupted { .. } => {
            RegistryError::new(ErrorCode::BlobUploadInvalid, message)
        }
        UploadError::LengthMismatch { .. } => RegistryError::new(ErrorCode::SizeInvalid, message),
        UploadError::DigestMismatch {
            expected,
            actual,
            size,
        } => RegistryError::new(ErrorCode::DigestInvalid, message)
            .detail(json!({"expected": expected, "actual": actual, "size": size})),
        UploadError::Meta(e) => e.into(),
        UploadError::Storage(e) => e.into(),
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
            Some(from) => caller.may(app, from.as_str(), Action::Pull).await?,
            None => caller.may_mount_from_anywhere(),
        };
        if permitted
            && app
                .registry
                .mount_blob(name, &digest, from.as_ref())
                .await
                .map_err(|e| upload_error(name, "", e))?
        {
            return Ok(blob_created(name, &digest));
        }
        // Not mountable: the client uploads it instead, into the session opened below.
    } else if let Some(digest) = query_param(req.uri(), "digest") {
        let digest = parse_digest(&digest)?;
        let chunk = chunk(app, name, None, req).await?;
        app.registry
            .upload_blob(name, &digest, chunk)
            .await
            .map_err(|e| upload_error(name, "", e))?;
        return Ok(blob_created(name, &digest));
    }
    let id = app
        .registry
        .start_upload(name)
        .await
        .map_err(|e| upload_error(name, "", e))?;
    Ok(empty(StatusCode::ACCEPTED, session_headers(name, &id, 0)))
}

/// `GET …/uploads/<id>`: where the session stands.
pub(super) async fn status(
    app: &App,
    name: &RepositoryName,
    id: &str,
) -> Result<Response, RegistryError> {
    let size = app
        .registry
        .upload_size(name, id)
        .await
        .map_err(|e| upload_error(name, id, e))?;
    Ok(empty(
        StatusCode::NO_CONTENT,
        session_headers(name, id, size),
    ))
}

/// `PATCH …/uploads/<id>`: append a chunk (with `Content-Range`) or stream the rest (without).
pub(super) async fn patch(
    app: &App,
    name: &RepositoryName,
    id: &str,
    req: Request,
) -> Result<Response, RegistryError> {
    let chunk = chunk(app, name, Some(id), req).await?;
    let size = app
        .registry
        .append_upload(name, id, chunk)
        .await
        .map_err(|e| upload_error(name, id, e))?;
    Ok(empty(StatusCode::ACCEPTED, session_headers(name, id, size)))
}

/// `PUT …/uploads/<id>?digest=`: optionally a last chunk, then verify and commit.
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
    let last = if has_body(req.headers()) {
        Some(chunk(app, name, Some(id), req).await?)
    } else {
        None
    };
    app.registry
        .finish_upload(name, id, &digest, last)
        .await
        .map_err(|e| upload_error(name, id, e))?;
    Ok(blob_created(name, &digest))
}

/// `DELETE …/uploads/<id>`: cancel.
pub(super) async fn cancel(
    app: &App,
    name: &RepositoryName,
    id: &str,
) -> Result<Response, RegistryError> {
    app.registry
        .cancel_upload(name, id)
        .await
        .map_err(|e| upload_error(name, id, e))?;
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
