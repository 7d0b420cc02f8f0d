//! Content discovery: tags, the catalog and referrers.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::media_type::OCI_INDEX;
use berth_core::{Digest, ErrorCode, RepositoryName};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::{header_value, query_param};
use crate::{App, RegistryError};

/// The `n` and `last` pagination parameters.
struct Page {
    n: Option<u32>,
    last: Option<String>,
}

impl Page {
    fn from_request(req: &Parts) -> Result<Self, RegistryError> {
        let n = query_param(&req.uri, "n")
            .map(|n| {
                n.parse::<u32>().map_err(|_| {
                    RegistryError::new(
                        ErrorCode::PaginationNumberInvalid,
                        format!("n={n:?} is not a non-negative integer"),
                    )
                })
            })
            .transpose()?;
        Ok(Self {
            n,
            last: query_param(&req.uri, "last").filter(|l| !l.is_empty()),
        })
    }

    /// Cuts `items` (fetched with a limit of `n + 1`) to `n` and, if more remain, returns the
    /// `Link` header for the next page.
    fn finish(&self, items: &mut Vec<String>, base: &str) -> Option<HeaderValue> {
        let n = self.n? as usize;
        if items.len() <= n {
            return None;
        }
        items.truncate(n);
        let last = utf8_percent_encode(items.last()?, NON_ALPHANUMERIC);
        Some(header_value(&format!(
            "<{base}?n={n}&last={last}>; rel=\"next\""
        )))
    }
}

fn json_response(body: Value, link: Option<HeaderValue>) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(link) = link {
        headers.insert(header::LINK, link);
    }
    (StatusCode::OK, headers, axum::Json(body)).into_response()
}

/// `GET /v2/<name>/tags/list?n=&last=`: tags in lexical order.
pub(super) async fn tags(
    app: &App,
    name: &RepositoryName,
    req: &Parts,
) -> Result<Response, RegistryError> {
    let page = Page::from_request(req)?;
    let Some(mut tags) = app
        .meta
        .list_tags(
            name.as_str(),
            page.last.as_deref(),
            page.n.map(|n| n.saturating_add(1)),
        )
        .await?
    else {
        return Err(RegistryError::new(
            ErrorCode::NameUnknown,
            format!("repository {name} is not known"),
        ));
    };
    let link = page.finish(&mut tags, &format!("/v2/{name}/tags/list"));
    Ok(json_response(
        json!({"name": name.as_str(), "tags": tags}),
        link,
    ))
}

/// `GET /v2/_catalog?n=&last=`: repositories in lexical order, a page at a time.
pub(super) async fn catalog(app: &App, req: &Parts) -> Result<Response, RegistryError> {
    let mut page = Page::from_request(req)?;
    let max = app.limits.catalog_page;
    page.n = Some(page.n.unwrap_or(max).min(max));
    let limit = page.n.unwrap_or(max).saturating_add(1);
    let mut repositories = app
        .meta
        .list_repositories(page.last.as_deref(), limit)
        .await?;
    let link = page.finish(&mut repositories, "/v2/_catalog");
    Ok(json_response(json!({ "repositories": repositories }), link))
}

/// `GET /v2/<name>/referrers/<digest>?artifactType=`: an OCI index of the manifests whose
/// subject is `digest`. Never 404: an unknown subject has no referrers.
pub(super) async fn referrers(
    app: &App,
    name: &RepositoryName,
    subject: &Digest,
    req: &Parts,
) -> Result<Response, RegistryError> {
    let artifact_type = query_param(&req.uri, "artifactType").filter(|t| !t.is_empty());
    let referrers = app
        .meta
        .referrers(name.as_str(), subject, artifact_type.as_deref())
        .await?;
    let manifests: Vec<Value> = referrers
        .into_iter()
        .map(|r| {
            let mut d = json!({"mediaType": r.media_type, "digest": r.digest, "size": r.size});
            if let Some(t) = r.artifact_type {
                d["artifactType"] = Value::String(t);
            }
            if let Some(a) = r
                .annotations
                .and_then(|a| serde_json::from_str::<Value>(&a).ok())
            {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if artifact_type.is_some() {
        headers.insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok((StatusCode::OK, headers, body.to_string()).into_response())
}
