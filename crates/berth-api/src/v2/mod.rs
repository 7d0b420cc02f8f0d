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
        name: String,
    },
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        /// Repository.
        name: String,
        /// Tag or digest, unparsed.
        reference: String,
    },
    /// `/v2/<name>/blobs/<digest>`.
    Blob {
        /// Repository.
        name: String,
        /// Digest, unparsed.
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`.
    UploadStart {
        /// Repository.
        name: String,
    },
    /// `/v2/<name>/blobs/uploads/<id>`.
    Upload {
        /// Repository.
        name: String,
        /// Session id.
        id: String,
    },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers {
        /// Repository.
        name: String,
        /// Subject digest, unparsed.
        digest: String,
    },
}

impl Endpoint {
    /// Parses a request path (already percent-decoded). `None`: not a registry API path.
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/v2")?;
        if rest.is_empty() || rest == "/" {
            return Some(Self::Base);
        }
        let rest = rest.strip_prefix('/')?;
        if rest == "_catalog" {
            return Some(Self::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Some(Self::Tags { name: name.into() });
        }
        let (head, last) = rest.rsplit_once('/')?;
        let (name, kind) = head.rsplit_once('/')?;
        let (name, last) = (name.to_owned(), last.to_owned());
        match kind {
            "manifests" => Some(Self::Manifest {
                name,
                reference: last,
            }),
            "blobs" if last == "uploads" => Some(Self::UploadStart { name }),
            "blobs" => Some(Self::Blob { name, digest: last }),
            "referrers" => Some(Self::Referrers { name, digest: last }),
            "uploads" => {
                let name = name.strip_suffix("/blobs")?.to_owned();
                Some(if last.is_empty() {
                    Self::UploadStart { name }
                } else {
                    Self::Upload { name, id: last }
                })
            }
            _ => None,
        }
    }
}

/// The single entry point of `/v2`.
pub async fn handle(State(app): State<AppState>, req: Request) -> Response {
    let path = percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let mut response = match Endpoint::parse(&path) {
        Some(endpoint) => {
            match crate::auth::authorize(
                &app,
                &endpoint,
                req.method(),
                req.headers(),
                req.extensions(),
            )
            .await
            {
                Ok(caller) => dispatch(app, endpoint, caller, req)
                    .await
                    .unwrap_or_else(IntoResponse::into_response),
                Err(e) => e.into_response(),
            }
        }
        None => RegistryError::new(
            ErrorCode::NameInvalid,
            format!("{path} is not a registry API path"),
        )
        .status(StatusCode::NOT_FOUND)
        .into_response(),
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
        (Endpoint::Tags { name }, &Method::GET) => {
            listing::tags(&app, &repository(name)?, &head(req)).await
        }
        (Endpoint::Referrers { name, digest }, &Method::GET) => {
            listing::referrers(&app, &repository(name)?, &parse_digest(digest)?, &head(req)).await
        }
        (Endpoint::Manifest { name, reference }, &Method::GET | &Method::HEAD) => {
            manifests::get(&app, &repository(name)?, reference, &head(req)).await
        }
        (Endpoint::Manifest { name, reference }, &Method::PUT) => {
            let name = repository(name)?;
            manifests::put(&app, &name, reference, req).await
        }
        (Endpoint::Manifest { name, reference }, &Method::DELETE) => {
            manifests::delete(&app, &repository(name)?, reference).await
        }
        (Endpoint::Blob { name, digest }, &Method::GET | &Method::HEAD) => {
            blobs::get(&app, &repository(name)?, &parse_digest(digest)?, &head(req)).await
        }
        (Endpoint::Blob { name, digest }, &Method::DELETE) => {
            blobs::delete(&app, &repository(name)?, &parse_digest(digest)?).await
        }
        (Endpoint::UploadStart { name }, &Method::POST) => {
            let name = repository(name)?;
            uploads::start(&app, &caller, &name, req).await
        }
        (Endpoint::Upload { name, id }, &Method::GET) => {
            uploads::status(&app, &repository(name)?, id).await
        }
        (Endpoint::Upload { name, id }, &Method::PATCH) => {
            let name = repository(name)?;
            uploads::patch(&app, &name, id, req).await
        }
        (Endpoint::Upload { name, id }, &Method::PUT) => {
            let name = repository(name)?;
            uploads::finish(&app, &name, id, req).await
        }
        (Endpoint::Upload { name, id }, &Method::DELETE) => {
            uploads::cancel(&app, &repository(name)?, id).await
        }
        _ => Err(method_not_allowed(&endpoint, &method)),
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

fn repository(name: &str) -> Result<RepositoryName, RegistryError> {
    name.parse().map_err(|e: berth_core::name::NameError| {
        RegistryError::new(ErrorCode::NameInvalid, e.to_string())
    })
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
fn query_param(uri: &Uri, key: &str) -> Option<String> {
    query_pairs(uri.query()?)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> String {
        n.to_owned()
    }

    #[test]
    fn parses_every_endpoint() {
        assert_eq!(Endpoint::parse("/v2"), Some(Endpoint::Base));
        assert_eq!(Endpoint::parse("/v2/"), Some(Endpoint::Base));
        assert_eq!(Endpoint::parse("/v2/_catalog"), Some(Endpoint::Catalog));
        assert_eq!(
            Endpoint::parse("/v2/a/b/c/tags/list"),
            Some(Endpoint::Tags {
                name: name("a/b/c")
            })
        );
        assert_eq!(
            Endpoint::parse("/v2/a/b/manifests/latest"),
            Some(Endpoint::Manifest {
                name: name("a/b"),
                reference: name("latest")
            })
        );
        assert_eq!(
            Endpoint::parse("/v2/a/blobs/sha256:abc"),
            Some(Endpoint::Blob {
                name: name("a"),
                digest: name("sha256:abc")
            })
        );
        assert_eq!(
            Endpoint::parse("/v2/a/b/blobs/uploads/"),
            Some(Endpoint::UploadStart { name: name("a/b") })
        );
        assert_eq!(
            Endpoint::parse("/v2/a/b/blobs/uploads"),
            Some(Endpoint::UploadStart { name: name("a/b") })
        );
        assert_eq!(
            Endpoint::parse("/v2/a/b/blobs/uploads/123-abc"),
            Some(Endpoint::Upload {
                name: name("a/b"),
                id: name("123-abc")
            })
        );
        assert_eq!(
            Endpoint::parse("/v2/a/referrers/sha256:abc"),
            Some(Endpoint::Referrers {
                name: name("a"),
                digest: name("sha256:abc")
            })
        );
        // A repository may be called "manifests" or "blobs": the suffix decides.
        assert_eq!(
            Endpoint::parse("/v2/blobs/manifests/manifests/x"),
            Some(Endpoint::Manifest {
                name: name("blobs/manifests"),
                reference: name("x")
            })
        );
    }

    #[test]
    fn rejects_other_paths() {
        for p in [
            "/v3/",
            "/v2x",
            "/v2/a",
            "/v2/a/b",
            "/v2/a/things/x",
            "/v2/a/uploads/x",
            "/v2/manifests/x",
        ] {
            assert_eq!(Endpoint::parse(p), None, "{p}");
        }
    }
}
