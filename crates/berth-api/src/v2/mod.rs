//! The OCI Distribution API (v1.1) under `/v2`.
//!
//! One catch-all route hands every `/v2` request to [`handle`], which parses the path into an
//! [`Endpoint`] (repository names have any number of `/`-separated components, so the name is
//! split off the known suffix rather than matched by the router) and dispatches on it.

mod blobs;
mod listing;
mod manifests;
mod uploads;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_core::{Digest, ErrorCode, RepositoryName};
use percent_encoding::percent_decode_str;

use crate::auth::Caller;
use crate::{AppState, RegistryError};

/// `Docker-Distribution-API-Version`, sent on every `/v2` response.
const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// What a `/v2` path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v2/`: API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags {
        /// Repository.
        name: RepositoryName,
    },
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        /// Repository.
        name: RepositoryName,
        /// Tag or digest, unparsed.
        reference: String,
    },
    /// `/v2/<name>/blobs/<digest>`.
    Blob {
        /// Repository.
        name: RepositoryName,
        /// Digest, unparsed.
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`.
    UploadStart {
        /// Repository.
        name: RepositoryName,
    },
    /// `/v2/<name>/blobs/uploads/<id>`.
    Upload {
        /// Repository.
        name: RepositoryName,
        /// Session id.
        id: String,
    },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers {
        /// Repository.
        name: RepositoryName,
        /// Subject digest, unparsed.
        digest: String,
    },
}

impl Endpoint {
    /// Parses a request path (already percent-decoded), validating the repository name before
    /// anything else sees it. `Err`: not a registry API path, or one whose name is invalid;
    /// either way `NAME_INVALID` with 404, as for a path no repository can have.
    pub fn parse(path: &str) -> Result<Self, RegistryError> {
        let not_api = || {
            RegistryError::new(
                ErrorCode::NameInvalid,
                format!("{path} is not a registry API path"),
            )
            .status(StatusCode::NOT_FOUND)
        };
        let rest = path.strip_prefix("/v2").ok_or_else(not_api)?;
        if rest.is_empty() || rest == "/" {
            return Ok(Self::Base);
        }
        let rest = rest.strip_prefix('/').ok_or_else(not_api)?;
        if rest == "_catalog" {
            return Ok(Self::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Ok(Self::Tags {
                name: path_name(name)?,
            });
        }
        let (head, last) = rest.rsplit_once('/').ok_or_else(not_api)?;
        let (name, kind) = head.rsplit_once('/').ok_or_else(not_api)?;
        let last = last.to_owned();
        Ok(match kind {
            "manifests" => Self::Manifest {
                name: path_name(name)?,
                reference: last,
            },
            "blobs" if last == "uploads" => Self::UploadStart {
                name: path_name(name)?,
            },
            "blobs" => Self::Blob {
                name: path_name(name)?,
                digest: last,
            },
            "referrers" => Self::Referrers {
                name: path_name(name)?,
                digest: last,
            },
            "uploads" => {
                let name = path_name(name.strip_suffix("/blobs").ok_or_else(not_api)?)?;
                if last.is_empty() {
                    Self::UploadStart { name }
                } else {
                    Self::Upload { name, id: last }
                }
            }
            _ => return Err(not_api()),
        })
    }

    /// The repository the endpoint is about, if any.
    pub fn repository(&self) -> Option<&RepositoryName> {
        match self {
            Self::Base | Self::Catalog => None,
            Self::Tags { name }
            | Self::Manifest { name, .. }
            | Self::Blob { name, .. }
            | Self::UploadStart { name }
            | Self::Upload { name, .. }
            | Self::Referrers { name, .. } => Some(name),
        }
    }
}

/// A repository name from a request path: invalid names are `NAME_INVALID` with 404 (no
/// repository can have them), before authorization, so that they never reach a challenge.
fn path_name(name: &str) -> Result<RepositoryName, RegistryError> {
    name.parse().map_err(|e: berth_core::name::NameError| {
        RegistryError::new(ErrorCode::NameInvalid, e.to_string()).status(StatusCode::NOT_FOUND)
    })
}

/// The single entry point of `/v2`.
pub async fn handle(State(app): State<AppState>, req: Request) -> Response {
    let path = percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let mut response = match Endpoint::parse(&path) {
        Ok(endpoint) => match crate::auth::authorize(
            &app,
            &endpoint,
            req.method(),
            req.uri(),
            req.headers(),
            req.extensions(),
        )
        .await
        {
            Ok(caller) => dispatch(app, endpoint, caller, req)
                .await
                .unwrap_or_else(IntoResponse::into_response),
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    };
    response
        .headers_mut()
        .insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    response
}

async fn dispatch(
    app: AppState,
    endpoint: Endpoint,
    caller: Caller,
    req: Request,
) -> Result<Response, RegistryError> {
    let method = req.method().clone();
    // Handlers that do not read the body get the request head only (the body is not `Sync`).
    match (&endpoint, &method) {
        (Endpoint::Base, &Method::GET | &Method::HEAD) => {
            Ok(axum::Json(serde_json::json!({})).into_response())
        }
        (Endpoint::Catalog, &Method::GET) => listing::catalog(&app, &head(req)).await,
        (Endpoint::Tags { name }, &Method::GET) => listing::tags(&app, name, &head(req)).await,
        (Endpoint::Referrers { name, digest }, &Method::GET) => {
            listing::referrers(&app, name, &parse_digest(digest)?, &head(req)).await
        }
        (Endpoint::Manifest { name, reference }, &Method::GET | &Method::HEAD) => {
            manifests::get(&app, &caller, name, reference, &head(req)).await
        }
        (Endpoint::Manifest { name, reference }, &Method::PUT) => {
            let initiator = initiator(&app, &caller, &req);
            manifests::put(&app, &initiator, name, reference, req).await
        }
        (Endpoint::Manifest { name, reference }, &Method::DELETE) => {
            let initiator = initiator(&app, &caller, &req);
            manifests::delete(&app, &initiator, name, reference).await
        }
        (Endpoint::Blob { name, digest }, &Method::GET | &Method::HEAD) => {
            blobs::get(&app, name, &parse_digest(digest)?, &head(req)).await
        }
        (Endpoint::Blob { name, digest }, &Method::DELETE) => {
            blobs::delete(&app, name, &parse_digest(digest)?).await
        }
        (Endpoint::UploadStart { name }, &Method::POST) => {
            uploads::start(&app, &caller, name, req).await
        }
        (Endpoint::Upload { name, id }, &Method::GET) => uploads::status(&app, name, id).await,
        (Endpoint::Upload { name, id }, &Method::PATCH) => {
            uploads::patch(&app, name, id, req).await
        }
        (Endpoint::Upload { name, id }, &Method::PUT) => uploads::finish(&app, name, id, req).await,
        (Endpoint::Upload { name, id }, &Method::DELETE) => uploads::cancel(&app, name, id).await,
        _ => Err(method_not_allowed(&endpoint, &method)),
    }
}

/// Who is calling, and from where, for the registry's events.
fn initiator(app: &crate::App, caller: &Caller, req: &Request) -> berth_registry::Initiator {
    berth_registry::Initiator {
        who: caller.who(),
        address: crate::auth::client_address(req.extensions(), req.headers(), &app.trusted_proxies),
    }
}

/// The request without its body.
fn head(req: Request) -> Parts {
    req.into_parts().0
}

fn method_not_allowed(endpoint: &Endpoint, method: &Method) -> RegistryError {
    let allow = match endpoint {
        Endpoint::Base => "GET, HEAD",
        Endpoint::Catalog | Endpoint::Tags { .. } | Endpoint::Referrers { .. } => "GET",
        Endpoint::Manifest { .. } => "GET, HEAD, PUT, DELETE",
        Endpoint::Blob { .. } => "GET, HEAD, DELETE",
        Endpoint::UploadStart { .. } => "POST",
        Endpoint::Upload { .. } => "GET, PATCH, PUT, DELETE",
    };
    RegistryError::new(
        ErrorCode::Unsupported,
        format!("{method} is not supported here; allowed: {allow}"),
    )
    .header(header::ALLOW, HeaderValue::from_static(allow))
}

fn parse_digest(digest: &str) -> Result<Digest, RegistryError> {
    digest
        .parse()
        .map_err(|e: berth_core::digest::DigestError| {
            RegistryError::new(ErrorCode::DigestInvalid, e.to_string())
        })
}

/// A header value from text that is known to be valid (paths built from validated names,
/// digests and numbers).
fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// An empty response with a status and headers.
fn empty(status: StatusCode, headers: HeaderMap) -> Response {
    let mut response = (status, Body::empty()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response.headers_mut().extend(headers);
    response
}

/// The `key=value` pairs of a query string or an `application/x-www-form-urlencoded` body,
/// percent-decoded (`+` is a space).
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A query parameter, percent-decoded; the last one wins when repeated.
pub(crate) fn query_param(uri: &Uri, key: &str) -> Option<String> {
    query_pairs(uri.query()?)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> RepositoryName {
        n.parse().unwrap()
    }

    fn parse(p: &str) -> Option<Endpoint> {
        Endpoint::parse(p).ok()
    }

    #[test]
    fn parses_every_endpoint() {
        assert_eq!(parse("/v2"), Some(Endpoint::Base));
        assert_eq!(parse("/v2/"), Some(Endpoint::Base));
        assert_eq!(parse("/v2/_catalog"), Some(Endpoint::Catalog));
        assert_eq!(
            parse("/v2/a/b/c/tags/list"),
            Some(Endpoint::Tags {
                name: name("a/b/c")
            })
        );
        assert_eq!(
            parse("/v2/a/b/manifests/latest"),
            Some(Endpoint::Manifest {
                name: name("a/b"),
                reference: "latest".into()
            })
        );
        assert_eq!(
            parse("/v2/a/blobs/sha256:abc"),
            Some(Endpoint::Blob {
                name: name("a"),
                digest: "sha256:abc".into()
            })
        );
        assert_eq!(
            parse("/v2/a/b/blobs/uploads/"),
            Some(Endpoint::UploadStart { name: name("a/b") })
        );
        assert_eq!(
            parse("/v2/a/b/blobs/uploads"),
            Some(Endpoint::UploadStart { name: name("a/b") })
        );
        assert_eq!(
            parse("/v2/a/b/blobs/uploads/123-abc"),
            Some(Endpoint::Upload {
                name: name("a/b"),
                id: "123-abc".into()
            })
        );
        assert_eq!(
            parse("/v2/a/referrers/sha256:abc"),
            Some(Endpoint::Referrers {
                name: name("a"),
                digest: "sha256:abc".into()
            })
        );
        // A repository may be called "manifests" or "blobs": the suffix decides.
        assert_eq!(
            parse("/v2/blobs/manifests/manifests/x"),
            Some(Endpoint::Manifest {
                name: name("blobs/manifests"),
                reference: "x".into()
            })
        );
    }

    #[test]
    fn rejects_other_paths_and_invalid_names_with_404() {
        for p in [
            "/v3/",
            "/v2x",
            "/v2/a",
            "/v2/a/b",
            "/v2/a/things/x",
            "/v2/a/uploads/x",
            "/v2/manifests/x",
            // Invalid names, whatever the endpoint: they never reach authorization.
            "/v2/A/manifests/x",
            "/v2/a\",realm=\"http://evil/manifests/x",
            "/v2/a b/tags/list",
            "/v2/a//b/blobs/uploads/",
            "/v2//manifests/x",
        ] {
            let e = Endpoint::parse(p).expect_err(p);
            let response = e.into_response();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{p}");
            assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
        }
    }
}
