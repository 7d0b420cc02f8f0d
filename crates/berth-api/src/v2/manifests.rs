//! Manifests: `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::manifest::{self, ManifestError};
use berth_core::{Digest, DigestAlgorithm, DigestHasher, ErrorCode, Reference, RepositoryName};
use berth_meta::{ManifestDelete, ManifestPut, NewManifest};
use serde_json::json;

use super::{empty, header_value};
use crate::{App, RegistryError};

fn manifest_unknown(name: &RepositoryName, reference: &str) -> RegistryError {
    RegistryError::new(
        ErrorCode::ManifestUnknown,
        format!("manifest {reference} is not in repository {name}"),
    )
}

/// Parses a reference for a read or delete: an invalid tag cannot name anything (404), an
/// invalid digest is a malformed request (400).
fn parse_reference(name: &RepositoryName, reference: &str) -> Result<Reference, RegistryError> {
    reference.parse().map_err(|e| match e {
        berth_core::reference::ReferenceError::Tag(_) => manifest_unknown(name, reference),
        berth_core::reference::ReferenceError::Digest(d) => {
            RegistryError::new(ErrorCode::DigestInvalid, d.to_string())
        }
    })
}

/// Parses a reference for a push or delete: anything malformed is a 400.
fn parse_write_reference(reference: &str) -> Result<Reference, RegistryError> {
    reference.parse().map_err(|e| match e {
        berth_core::reference::ReferenceError::Tag(t) => {
            RegistryError::new(ErrorCode::TagInvalid, t.to_string())
        }
        berth_core::reference::ReferenceError::Digest(d) => {
            RegistryError::new(ErrorCode::DigestInvalid, d.to_string())
        }
    })
}

/// Whether the client's `Accept` headers admit `media_type`. No `Accept` admits everything.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut any = false;
    for value in headers.get_all(header::ACCEPT) {
        for item in value.to_str().unwrap_or("").split(',') {
            let essence = item.split(';').next().unwrap_or("").trim();
            if essence.is_empty() {
                continue;
            }
            any = true;
            if essence == media_type
                || matches!(essence, "*/*" | "application/*" | "application/json")
            {
                return true;
            }
        }
    }
    !any
}

pub(super) async fn get(
    app: &App,
    name: &RepositoryName,
    reference: &str,
    req: &Parts,
) -> Result<Response, RegistryError> {
    let reference = parse_reference(name, reference)?;
    let Some(m) = app.meta.manifest(name.as_str(), &reference).await? else {
        return Err(manifest_unknown(name, &reference.to_string()));
    };
    // A tag resolves to whatever was pushed under it; a client that cannot read that type gets
    // a clear "not found for you" rather than bytes it cannot parse. A digest is always served.
    if matches!(reference, Reference::Tag(_)) && !accepts(&req.headers, &m.media_type) {
        return Err(RegistryError::new(
            ErrorCode::ManifestUnknown,
            format!(
                "{name}:{reference} is a {} manifest, which this request's Accept header does not admit",
                m.media_type
            ),
        ));
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, header_value(&m.media_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(m.content.len()));
    headers.insert("docker-content-digest", header_value(&m.digest));
    headers.insert(header::ETAG, header_value(&format!("\"{}\"", m.digest)));
    if req.method == Method::HEAD {
        return Ok((StatusCode::OK, headers).into_response());
    }
    Ok((StatusCode::OK, headers, Body::from(m.content)).into_response())
}

pub(super) async fn put(
    app: &App,
    name: &RepositoryName,
    reference: &str,
    req: Request,
) -> Result<Response, RegistryError> {
    let reference = parse_write_reference(reference)?;
    let limit = app.limits.max_manifest_bytes;
    let too_large = || {
        RegistryError::new(
            ErrorCode::SizeInvalid,
            format!("manifest is larger than the {limit}-byte limit"),
        )
        .status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = req.into_parts();
    let body = crate::body::read_limited(&parts.headers, body, limit)
        .await
        .map_err(|e| match e {
            crate::body::BodyError::TooLarge => too_large(),
            crate::body::BodyError::Read(e) => RegistryError::new(
                ErrorCode::ManifestInvalid,
                format!("could not read the manifest: {e}"),
            ),
        })?;
    let parsed = manifest::parse(content_type.as_deref(), &body).map_err(|e| {
        let detail = match &e {
            ManifestError::MediaTypeMismatch { header, body } => {
                json!({"contentType": header, "mediaType": body})
            }
            _ => serde_json::Value::Null,
        };
        RegistryError::new(ErrorCode::ManifestInvalid, e.to_string()).detail(detail)
    })?;
    let digest = match &reference {
        Reference::Digest(expected) => {
            let actual = DigestHasher::digest_of(expected.algorithm(), &body);
            if &actual != expected {
                return Err(RegistryError::new(
                    ErrorCode::DigestInvalid,
                    format!("the manifest's digest is {actual}, not {expected}"),
                )
                .detail(json!({"expected": expected, "actual": actual})));
            }
            actual
        }
        Reference::Tag(_) => DigestHasher::digest_of(DigestAlgorithm::Sha256, &body),
    };
    let annotations = parsed
        .annotations
        .as_ref()
        .map(|a| serde_json::Value::Object(a.clone()).to_string());
    let new = NewManifest {
        digest: &digest,
        media_type: &parsed.media_type,
        artifact_type: parsed.artifact_type.as_deref(),
        subject: parsed.subject.as_ref().map(|s| &s.digest),
        annotations,
        content: &body,
        blobs: parsed
            .blobs
            .iter()
            .filter(|d| !d.external)
            .map(|d| (&d.digest, d.size))
            .collect(),
        manifests: parsed
            .manifests
            .iter()
            .map(|d| (&d.digest, d.size))
            .collect(),
        tag: match &reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        },
    };
    match app.meta.put_manifest(name.as_str(), &new).await? {
        ManifestPut::Stored => {}
        ManifestPut::MissingReference(missing) => {
            return Err(RegistryError::new(
                ErrorCode::ManifestBlobUnknown,
                format!("the manifest references {missing}, which is not in repository {name}: push it first"),
            )
            .detail(json!({ "digest": missing })));
        }
        ManifestPut::SizeMismatch {
            digest: d,
            declared,
            actual,
        } => {
            return Err(RegistryError::new(
                ErrorCode::ManifestInvalid,
                format!("the manifest gives {d} a size of {declared} bytes, but it has {actual}"),
            )
            .detail(json!({"digest": d, "declared": declared, "actual": actual})));
        }
    }
    tracing::info!(repository = %name, %digest, reference = %reference, "manifest stored");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/manifests/{digest}")),
    );
    headers.insert("docker-content-digest", header_value(digest.as_str()));
    if let Some(subject) = &parsed.subject {
        headers.insert("oci-subject", header_value(subject.digest.as_str()));
    }
    Ok(empty(StatusCode::CREATED, headers))
}

pub(super) async fn delete(
    app: &App,
    name: &RepositoryName,
    reference: &str,
) -> Result<Response, RegistryError> {
    let reference = parse_write_reference(reference)?;
    match &reference {
        Reference::Tag(tag) => {
            if app.meta.delete_tag(name.as_str(), tag.as_str()).await? {
                Ok(empty(StatusCode::ACCEPTED, HeaderMap::new()))
            } else {
                Err(manifest_unknown(name, tag.as_str()))
            }
        }
        Reference::Digest(digest) => delete_by_digest(app, name, digest).await,
    }
}

async fn delete_by_digest(
    app: &App,
    name: &RepositoryName,
    digest: &Digest,
) -> Result<Response, RegistryError> {
    match app.meta.delete_manifest(name.as_str(), digest).await? {
        ManifestDelete::Deleted => {
            tracing::info!(repository = %name, %digest, "manifest deleted");
            Ok(empty(StatusCode::ACCEPTED, HeaderMap::new()))
        }
        ManifestDelete::Unknown => Err(manifest_unknown(name, digest.as_str())),
        ManifestDelete::ReferencedBy(index) => Err(RegistryError::new(
            ErrorCode::Unsupported,
            format!(
                "manifest {digest} is listed by index {index} in {name}; delete the index first"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        assert!(accepts(&h, "application/vnd.oci.image.index.v1+json"));
        h.append(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json"),
        );
        assert!(!accepts(&h, "application/vnd.oci.image.index.v1+json"));
        h.append(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json; q=0.5"),
        );
        assert!(accepts(&h, "application/vnd.oci.image.index.v1+json"));
        let mut star = HeaderMap::new();
        star.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(accepts(&star, "application/vnd.oci.image.index.v1+json"));
    }
}
