//! Pulling and deleting blobs: `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`.

use std::ops::Range;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::{Digest, ErrorCode, RepositoryName};
use berth_meta::BlobUnlink;

use super::{empty, header_value};
use crate::{App, RegistryError};

/// Why a `Range` header cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unsatisfiable;

/// Parses a `Range` request header against a blob of `size` bytes. `Ok(None)`: serve it all
/// (no header, another unit, or several ranges, which RFC 9110 lets a server ignore).
pub(super) fn parse_range(
    value: Option<&str>,
    size: u64,
) -> Result<Option<Range<u64>>, Unsatisfiable> {
    let Some(spec) = value.map(str::trim).and_then(|v| v.strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec.trim().split_once('-').ok_or(Unsatisfiable)?;
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| Unsatisfiable);
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => {
            let n = number(last)?;
            if n == 0 || size == 0 {
                return Err(Unsatisfiable);
            }
            size.saturating_sub(n)..size
        }
        // bytes=A-: from A to the end.
        (false, true) => number(first)?..size,
        // bytes=A-B, B inclusive.
        (false, false) => {
            let (a, b) = (number(first)?, number(last)?);
            if b < a {
                return Err(Unsatisfiable);
            }
            a..b.saturating_add(1).min(size)
        }
        (true, true) => return Err(Unsatisfiable),
    };
    if range.start >= size {
        return Err(Unsatisfiable);
    }
    Ok(Some(range))
}

pub(super) async fn get(
    app: &App,
    name: &RepositoryName,
    digest: &Digest,
    req: &Parts,
) -> Result<Response, RegistryError> {
    let Some(size) = app
        .registry
        .meta()
        .repository_blob(name.as_str(), digest)
        .await?
    else {
        return Err(RegistryError::new(
            ErrorCode::BlobUnknown,
            format!("blob {digest} is not in repository {name}"),
        )
        .detail(serde_json::json!({ "digest": digest })));
    };
    let mut headers = HeaderMap::new();
    headers.insert("docker-content-digest", header_value(digest.as_str()));
    headers.insert(header::ETAG, header_value(&format!("\"{digest}\"")));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=31536000"),
    );
    if req.method == Method::HEAD {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        return Ok((StatusCode::OK, headers).into_response());
    }
    // The store may serve the bytes itself (presigned S3 URLs); the client follows the redirect
    // with its Range header, if any.
    if let Some(url) = app.registry.blobs().download_url(digest).await? {
        let mut redirect = HeaderMap::new();
        redirect.insert("docker-content-digest", header_value(digest.as_str()));
        redirect.insert(header::LOCATION, header_value(&url));
        return Ok((StatusCode::TEMPORARY_REDIRECT, redirect).into_response());
    }
    let range_header = req.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, range) = match parse_range(range_header, size) {
        Ok(None) => (StatusCode::OK, 0..size),
        Ok(Some(range)) => {
            headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {}-{}/{size}", range.start, range.end - 1)),
            );
            (StatusCode::PARTIAL_CONTENT, range)
        }
        Err(Unsatisfiable) => {
            return Err(RegistryError::new(
                ErrorCode::RangeInvalid,
                format!(
                    "Range {:?} cannot be satisfied for a blob of {size} bytes",
                    range_header.unwrap_or("")
                ),
            )
            .header(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}")),
            ));
        }
    };
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    let stream = app.registry.blobs().read(digest, range).await?;
    Ok((status, headers, Body::from_stream(stream)).into_response())
}

pub(super) async fn delete(
    app: &App,
    name: &RepositoryName,
    digest: &Digest,
) -> Result<Response, RegistryError> {
    match app.registry.unlink_blob(name, digest).await? {
        BlobUnlink::Unlinked => Ok(empty(StatusCode::ACCEPTED, HeaderMap::new())),
        BlobUnlink::Unknown => Err(RegistryError::new(
            ErrorCode::BlobUnknown,
            format!("blob {digest} is not in repository {name}"),
        )),
        BlobUnlink::ReferencedBy(manifest) => Err(RegistryError::new(
            ErrorCode::Unsupported,
            format!(
                "blob {digest} is used by manifest {manifest} in {name}; delete the manifest first"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-0"), 10), Ok(Some(0..1)));
        assert_eq!(parse_range(Some("bytes=2-5"), 10), Ok(Some(2..6)));
        assert_eq!(parse_range(Some("bytes=2-100"), 10), Ok(Some(2..10)));
        assert_eq!(parse_range(Some("bytes=7-"), 10), Ok(Some(7..10)));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some(7..10)));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Ok(Some(0..10)));
        for bad in [
            "bytes=10-",
            "bytes=5-2",
            "bytes=-0",
            "bytes=x-1",
            "bytes=-",
            "bytes=12-20",
            "bytes=1",
        ] {
            assert_eq!(parse_range(Some(bad), 10), Err(Unsatisfiable), "{bad}");
        }
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Err(Unsatisfiable));
    }
}
