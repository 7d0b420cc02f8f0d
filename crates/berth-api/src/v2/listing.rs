//! Content discovery: tags, the catalog and referrers.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::media_type::OCI_INDEX;
use berth_core::{Digest, ErrorCode, RepositoryName};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::{header_value, query_pairs, query_param};
use crate::{App, RegistryError};

/// The `n` and `last` pagination parameters.
struct Page {
    n: Option<u32>,
    last: Option<String>,
}

impl Page {
    fn from_request(req: &Parts) -> Result<Self, RegistryError> {
        let (mut n, mut last) = (None, None);
        for (key, value) in query_pairs(req.uri.query().unwrap_or_default()) {
            match key.as_str() {
                "n" => n = Some(value),
                "last" => last = Some(value),
                _ => {}
            }
        }
        let n = n
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
            last: last.filter(|l| !l.is_empty()),
        })
    }

    /// Whether a list fetched with a limit of `n + 1` holds more than the page: then the `n`
    /// it is to be cut to.
    fn overflow(&self, len: usize) -> Option<usize> {
        let n = self.n? as usize;
        (len > n).then_some(n)
    }
}

/// The `Link` header to the page of `n` entries after `last`.
fn next_link(base: &str, n: usize, last: &str) -> HeaderValue {
    let mut link = format!("<{base}?n={n}&last=");
    link.extend(utf8_percent_encode(last, NON_ALPHANUMERIC));
    link.push_str(">; rel=\"next\"");
    header_value(&link)
}

/// A 200 with a JSON body and, when more follows, the `Link` to the next page.
fn json_page(body: Vec<u8>, link: Option<HeaderValue>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(link) = link {
        headers.insert(header::LINK, link);
    }
    (StatusCode::OK, headers, body).into_response()
}

/// `{"name":…,"tags":[…]}` for a page's text (a tag per line), written straight from it: no
/// copy per tag, and no escaping pass over tags that need none (every tag the API accepts).
fn tag_list_body(name: &str, text: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(32 + name.len() + text.len() * 2);
    body.extend_from_slice(b"{\"name\":");
    push_json_str(&mut body, name);
    body.extend_from_slice(b",\"tags\":[");
    let bytes = text.as_bytes();
    if bytes.iter().all(|&b| b == b'\n' || is_plain(b)) {
        // Every tag the API accepts: quote the lines as they are.
        let lines = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if !bytes.is_empty() {
            body.push(b'"');
            for (i, tag) in lines.split(|&b| b == b'\n').enumerate() {
                if i > 0 {
                    body.extend_from_slice(b"\",\"");
                }
                body.extend_from_slice(tag);
            }
            body.push(b'"');
        }
    } else {
        for (i, tag) in text.split_terminator('\n').enumerate() {
            if i > 0 {
                body.push(b',');
            }
            push_json_str(&mut body, tag);
        }
    }
    body.extend_from_slice(b"]}");
    body
}

/// Whether a byte stands for itself inside a JSON string.
fn is_plain(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'"' && b != b'\\'
}

/// Appends `s` as a JSON string.
fn push_json_str(body: &mut Vec<u8>, s: &str) {
    if s.bytes().all(is_plain) {
        body.push(b'"');
        body.extend_from_slice(s.as_bytes());
        body.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *body, s);
    }
}

/// `GET /v2/<name>/tags/list?n=&last=`: tags in lexical order.
pub(super) async fn tags(
    app: &App,
    name: &RepositoryName,
    req: &Parts,
) -> Result<Response, RegistryError> {
    let page = Page::from_request(req)?;
    let Some(mut tags) = app
        .registry
        .meta()
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
    let link = page.overflow(tags.len()).and_then(|n| {
        tags.truncate(n);
        let base = format!("/v2/{name}/tags/list");
        tags.last().map(|last| next_link(&base, n, last))
    });
    Ok(json_page(tag_list_body(name.as_str(), tags.text()), link))
}

/// `GET /v2/_catalog?n=&last=`: repositories in lexical order, a page at a time.
pub(super) async fn catalog(app: &App, req: &Parts) -> Result<Response, RegistryError> {
    let mut page = Page::from_request(req)?;
    let max = app.limits.catalog_page;
    page.n = Some(page.n.unwrap_or(max).min(max));
    let limit = page.n.unwrap_or(max).saturating_add(1);
    let mut repositories = app
        .registry
        .meta()
        .list_repositories(page.last.as_deref(), limit)
        .await?;
    let link = page.overflow(repositories.len()).and_then(|n| {
        repositories.truncate(n);
        repositories
            .last()
            .map(|last| next_link("/v2/_catalog", n, last))
    });
    let body = json!({ "repositories": repositories }).to_string();
    Ok(json_page(body.into_bytes(), link))
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
        .registry
        .meta()
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

#[cfg(test)]
mod tests {
    use super::*;
    use berth_meta::TagPage;

    fn body(name: &str, text: &str) -> serde_json::Value {
        let bytes = tag_list_body(name, text);
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&bytes));
        })
    }

    #[test]
    fn tag_lists_are_json_whatever_the_tags_hold() {
        assert_eq!(
            body("a/b", "1.0\nlatest\nv_2-rc\n"),
            json!({"name": "a/b", "tags": ["1.0", "latest", "v_2-rc"]})
        );
        assert_eq!(body("a", ""), json!({"name": "a", "tags": []}));
        assert_eq!(body("a", "x\n"), json!({"name": "a", "tags": ["x"]}));
        // A last line without its newline (only a damaged cache entry has one).
        assert_eq!(body("a", "x\ny"), json!({"name": "a", "tags": ["x", "y"]}));
        // Nothing the API accepts needs escaping, but a list is JSON whatever it holds.
        assert_eq!(
            body("a\"b", "ok\nq\"uote\nback\\slash\ntab\there\né\n"),
            json!({"name": "a\"b", "tags": ["ok", "q\"uote", "back\\slash", "tab\there", "é"]})
        );
        let page = TagPage::from_tags(&["1".to_owned(), "2".to_owned()]);
        assert_eq!(
            body("r", page.text()),
            json!({"name": "r", "tags": ["1", "2"]})
        );
    }
}
