//! Manifests: `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::manifest::ManifestError;
use berth_core::{ErrorCode, Reference, RepositoryName};
use berth_registry::{ArtifactError, Initiator, Pull};
use serde_json::json;

use super::{empty, header_value};
use crate::auth::Caller;
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
    caller: &Caller,
    name: &RepositoryName,
    raw_reference: &str,
    req: &Parts,
) -> Result<Response, RegistryError> {
    let reference = parse_reference(name, raw_reference)?;
    let Some(m) = app
        .registry
        .meta()
        .manifest(name.as_str(), &reference)
        .await?
    else {
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
    let (principal, who, user_id) = caller.who_parts();
    app.registry.pulled(&Pull {
        principal,
        name: who,
        user_id,
        address: crate::auth::client_ip(&req.extensions, &req.headers, &app.trusted_proxies),
        repository: name.as_str(),
        reference: raw_reference,
    });
    Ok((StatusCode::OK, headers, Body::from(m.content)).into_response())
}

pub(super) async fn put(
    app: &App,
    initiator: &Initiator,
    name: &RepositoryName,
    reference: &str,
    req: Request,
) -> Result<Response, RegistryError> {
    let reference = parse_write_reference(reference)?;
    let limit = app.limits.max_manifest_bytes;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = req.into_parts();
    let body = crate::body::read_limited(&parts.headers, body, limit)
        .await
        .map_err(|e| match e {
            crate::body::BodyError::TooLarge => RegistryError::new(
                ErrorCode::SizeInvalid,
                format!("manifest is larger than the {limit}-byte limit"),
            )
            .status(StatusCode::PAYLOAD_TOO_LARGE),
            crate::body::BodyError::Read(e) => RegistryError::new(
                ErrorCode::ManifestInvalid,
                format!("could not read the manifest: {e}"),
            ),
        })?;
    let pushed = app
        .registry
        .put_manifest(initiator, name, &reference, content_type.as_deref(), &body)
        .await
        .map_err(|e| artifact_error(name, e))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/manifests/{}", pushed.digest)),
    );
    headers.insert(
        "docker-content-digest",
        header_value(pushed.digest.as_str()),
    );
    if let Some(subject) = &pushed.subject {
        headers.insert("oci-subject", header_value(subject.as_str()));
    }
    Ok(empty(StatusCode::CREATED, headers))
}

/// The OCI error for a refused artifact operation.
fn artifact_error(name: &RepositoryName, e: ArtifactError) -> RegistryError {
    let message = e.to_string();
    match e {
        ArtifactError::Invalid(e) => {
            let detail = match &e {
                ManifestError::MediaTypeMismatch { header, body } => {
                    json!({"contentType": header, "mediaType": body})
                }
                _ => serde_json::Value::Null,
            };
            RegistryError::new(ErrorCode::ManifestInvalid, message).detail(detail)
        }
        ArtifactError::DigestMismatch { expected, actual } => {
            RegistryError::new(ErrorCode::DigestInvalid, message)
                .detail(json!({"expected": expected, "actual": actual}))
        }
        ArtifactError::MissingReference(digest) => RegistryError::new(
            ErrorCode::ManifestBlobUnknown,
            format!(
                "the manifest references {digest}, which is not in repository {name}: push it first"
            ),
        )
        .detail(json!({ "digest": digest })),
        ArtifactError::SizeMismatch {
            digest,
            declared,
            actual,
        } => RegistryError::new(ErrorCode::ManifestInvalid, message)
            .detail(json!({"digest": digest, "declared": declared, "actual": actual})),
        ArtifactError::Unknown(what) => manifest_unknown(name, &what),
        ArtifactError::ReferencedBy { digest, index } => RegistryError::new(
            ErrorCode::Unsupported,
            format!(
                "manifest {digest} is listed by index {index} in {name}; delete the index first"
            ),
        ),
        ArtifactError::TagExists { .. } => RegistryError::new(ErrorCode::TagInvalid, message),
        ArtifactError::Meta(e) => e.into(),
    }
}

pub(super) async fn delete(
    app: &App,
    initiator: &Initiator,
    name: &RepositoryName,
    reference: &str,
) -> Result<Response, RegistryError> {
    let reference = parse_write_reference(reference)?;
    match &reference {
        Reference::Tag(tag) => app
            .registry
            .delete_tag(initiator, name, tag.as_str())
            .await
            .map_err(|e| match e {
                ArtifactError::Unknown(_) => manifest_unknown(name, tag.as_str()),
                e => artifact_error(name, e),
            })?,
        Reference::Digest(digest) => app
            .registry
            .delete_manifest(initiator, name, digest)
            .await
            .map_err(|e| artifact_error(name, e))?,
    }
    Ok(empty(StatusCode::ACCEPTED, HeaderMap::new()))
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
