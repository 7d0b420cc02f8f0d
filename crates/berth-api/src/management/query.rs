//! Harbor's request conventions: query parameters and `q=` filters, `page`/`page_size` with
//! `X-Total-Count` and `Link`, JSON bodies, ids in paths, times and `201 Created`.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_meta::Page;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::v2::query_pairs;

/// A request's query parameters.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses the query of `uri`.
    pub fn of(uri: &Uri) -> Self {
        Self(query_pairs(uri.query().unwrap_or("")))
    }

    /// A parameter's value (the last one when repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`false`).
    pub fn flag(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::bad_request(format!(
                "{key} must be true or false, not {other:?}"
            ))),
        }
    }

    /// The terms of Harbor's `q` filter (`key=value` exact, `key=~value` fragment), limited
    /// to `keys`.
    pub fn filters(&self, keys: &[&str]) -> Result<Vec<Filter>, ApiError> {
        let Some(q) = self.get("q").filter(|q| !q.is_empty()) else {
            return Ok(Vec::new());
        };
        q.split(',')
            .map(|term| {
                let (key, value) = term.split_once('=').ok_or_else(|| {
                    ApiError::bad_request(format!("q term {term:?} is not key=value or key=~value"))
                })?;
                if !keys.contains(&key) {
                    return Err(ApiError::bad_request(format!(
                        "q cannot filter on {key:?}; it takes {}",
                        keys.join(", ")
                    )));
                }
                let (value, exact) = match value.strip_prefix('~') {
                    Some(v) => (v, false),
                    None => (value, true),
                };
                Ok(Filter {
                    key: key.to_owned(),
                    value: value.to_owned(),
                    exact,
                })
            })
            .collect()
    }
}

/// One term of a `q` filter.
pub struct Filter {
    /// The field.
    pub key: String,
    /// The value or fragment.
    pub value: String,
    /// `key=value` (true) or `key=~value` (false).
    pub exact: bool,
}

/// Default and largest page sizes (Harbor's).
const DEFAULT_PAGE_SIZE: u64 = 10;
const MAX_PAGE_SIZE: u64 = 100;

/// `page` and `page_size` of a listing.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    page: u64,
    size: u64,
}

impl Paging {
    /// Reads `page` (from 1) and `page_size` (1 to 100, default 10).
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        let number = |key: &str, default: u64, max: u64| -> Result<u64, ApiError> {
            match query.get(key) {
                None | Some("") => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "{key} must be a whole number from 1 to {max}, not {v:?}"
                        ))
                    }),
            }
        };
        Ok(Self {
            page: number("page", 1, u64::MAX / MAX_PAGE_SIZE)?,
            size: number("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?,
        })
    }

    /// The rows to fetch.
    pub fn page(self) -> Page {
        Page {
            offset: (self.page - 1) * self.size,
            limit: self.size,
        }
    }

    /// A JSON array of `items` with `X-Total-Count` and a `Link` header to the neighbouring
    /// pages (other query parameters kept).
    pub fn respond<T: Serialize>(self, uri: &Uri, total: u64, items: Vec<T>) -> Response {
        let link = |page: u64| {
            let mut query: Vec<String> = query_pairs(uri.query().unwrap_or(""))
                .into_iter()
                .filter(|(k, _)| k != "page" && k != "page_size")
                .map(|(k, v)| format!("{}={}", encode(&k), encode(&v)))
                .collect();
            query.push(format!("page={page}"));
            query.push(format!("page_size={}", self.size));
            format!("<{}?{}>", uri.path(), query.join("&"))
        };
        let mut links = Vec::new();
        if self.page > 1 {
            links.push(format!("{}; rel=\"prev\"", link(self.page - 1)));
        }
        if self.page * self.size < total {
            links.push(format!("{}; rel=\"next\"", link(self.page + 1)));
        }
        let mut response = axum::Json(items).into_response();
        let headers = response.headers_mut();
        headers.insert("x-total-count", HeaderValue::from(total));
        if let Ok(value) = HeaderValue::from_str(&links.join(", "))
            && !links.is_empty()
        {
            headers.insert(header::LINK, value);
        }
        response
    }
}

pub(super) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Parses a JSON request body.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("a JSON request body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// Parses a numeric path parameter.
pub fn id_param(value: &str, what: &str) -> Result<i64, ApiError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!("{what} must be a positive number, not {value:?}"))
        })
}

/// `201 Created` with `Location: /api/v2.0/{path}`.
pub fn created(path: &str) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("/api/v2.0/{path}")) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Unix seconds as Harbor's time strings (RFC 3339, UTC).
pub fn time(secs: i64) -> String {
    crate::auth::rfc3339(u64::try_from(secs).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_and_links() {
        let uri: Uri = "/api/v2.0/projects?name=x%20y&page=2&page_size=5"
            .parse()
            .unwrap();
        let paging = Paging::from_query(&Query::of(&uri)).unwrap();
        assert_eq!(
            paging.page(),
            Page {
                offset: 5,
                limit: 5
            }
        );
        let response = paging.respond(&uri, 11, vec![1, 2, 3, 4, 5]);
        assert_eq!(response.headers()["x-total-count"], "11");
        assert_eq!(
            response.headers()[header::LINK],
            "</api/v2.0/projects?name=x%20y&page=1&page_size=5>; rel=\"prev\", \
             </api/v2.0/projects?name=x%20y&page=3&page_size=5>; rel=\"next\""
        );
        let last = Paging::from_query(&Query::of(&"/p?page=3&page_size=5".parse().unwrap()))
            .unwrap()
            .respond(&"/p?page=3&page_size=5".parse().unwrap(), 11, vec![1]);
        assert_eq!(
            last.headers()[header::LINK],
            "</p?page=2&page_size=5>; rel=\"prev\""
        );
        for bad in [
            "page=0",
            "page=x",
            "page_size=0",
            "page_size=101",
            "page=-1",
        ] {
            let uri: Uri = format!("/p?{bad}").parse().unwrap();
            assert!(Paging::from_query(&Query::of(&uri)).is_err(), "{bad}");
        }
    }

    #[test]
    fn q_filters() {
        let q = |s: &str| Query::of(&format!("/p?q={s}").parse().unwrap());
        let f = q("name%3D~ab,public%3Dtrue")
            .filters(&["name", "public"])
            .unwrap();
        assert_eq!(
            f.iter()
                .map(|f| (f.key.as_str(), f.value.as_str(), f.exact))
                .collect::<Vec<_>>(),
            [("name", "ab", false), ("public", "true", true)]
        );
        assert!(q("owner%3Dx").filters(&["name"]).is_err());
        assert!(q("name").filters(&["name"]).is_err());
        assert!(q("").filters(&["name"]).unwrap().is_empty());
    }
}
