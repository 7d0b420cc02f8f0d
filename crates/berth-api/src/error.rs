//! Errors on the wire.
//!
//! Policy: client mistakes become a specific 4xx with an OCI error code and a message that says
//! what to fix. A database that cannot be reached is `503 UNAVAILABLE`, so load balancers and
//! clients retry. Anything else is logged with its cause and answered with an opaque
//! `500 UNKNOWN`; the request id in the response header finds the log line.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::ErrorCode;
use berth_meta::MetaError;
use berth_storage::StorageError;
use serde_json::{Value, json};

/// An error answered in the OCI envelope `{"errors":[{"code","message","detail"}]}`.
/// Boxed: errors are the rare path, and results stay small on the common one.
#[derive(Debug)]
pub struct RegistryError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    detail: Value,
    headers: HeaderMap,
}

fn default_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BlobUnknown
        | ErrorCode::BlobUploadUnknown
        | ErrorCode::ManifestUnknown
        | ErrorCode::NameUnknown => StatusCode::NOT_FOUND,
        ErrorCode::BlobUploadInvalid
        | ErrorCode::DigestInvalid
        | ErrorCode::ManifestBlobUnknown
        | ErrorCode::ManifestInvalid
        | ErrorCode::NameInvalid
        | ErrorCode::SizeInvalid
        | ErrorCode::TagInvalid
        | ErrorCode::PaginationNumberInvalid => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Denied => StatusCode::FORBIDDEN,
        ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl RegistryError {
    /// An error with the code's usual status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status: default_status(code),
            code,
            message: message.into(),
            detail: Value::Null,
            headers: HeaderMap::new(),
        }))
    }

    /// Overrides the HTTP status.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.0.status = status;
        self
    }

    /// Adds the `detail` member.
    pub fn detail(mut self, detail: Value) -> Self {
        self.0.detail = detail;
        self
    }

    /// Adds response headers.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.0.headers.extend(headers);
        self
    }

    /// Adds one response header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.insert(name, value);
        self
    }

    /// An unexpected failure: logged in full here, answered opaquely.
    pub fn internal(context: &str, error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error, "{context}");
        Self::new(
            ErrorCode::Unknown,
            "internal server error; the server log has the details under this request's id",
        )
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let Inner {
            status,
            code,
            message,
            detail,
            headers,
        } = *self.0;
        let mut error = json!({"code": code.as_str(), "message": message});
        if !detail.is_null() {
            error["detail"] = detail;
        }
        let mut response = (status, axum::Json(json!({ "errors": [error] }))).into_response();
        response.headers_mut().extend(headers);
        response
    }
}

/// The two envelopes errors leave in: OCI's on `/v2`, Harbor's on `/api`. Failures of the
/// layers below (the metadata store, the blob store, authentication) are mapped to them once,
/// here ([`from_meta`], [`from_storage`], [`from_auth`]).
pub(crate) trait Envelope: Sized {
    /// 503 with `Retry-After`: a backend that cannot be reached.
    fn unavailable(message: &str, retry_after: u64) -> Self;
    /// An unexpected failure: logged in full, answered opaquely.
    fn internal(context: &str, error: &dyn std::error::Error) -> Self;
}

impl Envelope for RegistryError {
    fn unavailable(message: &str, retry_after: u64) -> Self {
        Self::new(ErrorCode::Unavailable, message).header(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(retry_after.max(1)),
        )
    }

    fn internal(context: &str, error: &dyn std::error::Error) -> Self {
        Self::internal(context, error)
    }
}

/// A metadata store failure: 503 when the database cannot be reached (load balancers and
/// clients retry), else opaque.
pub(crate) fn from_meta<E: Envelope>(e: MetaError) -> E {
    match e {
        MetaError::Unavailable(_) => {
            tracing::warn!(error = %e, "metadata database unavailable");
            E::unavailable("the metadata database is unavailable; retry shortly", 1)
        }
        other => E::internal("metadata store failed", &other),
    }
}

/// A blob store failure: opaque.
pub(crate) fn from_storage<E: Envelope>(e: StorageError) -> E {
    E::internal("blob storage failed", &e)
}

/// An authentication failure: the database's as above, 503 when the directory cannot be
/// reached, else opaque.
pub(crate) fn from_auth<E: Envelope>(e: berth_auth::AuthError) -> E {
    match e {
        berth_auth::AuthError::Meta(m) => from_meta(m),
        berth_auth::AuthError::Ldap(l) => {
            tracing::warn!(error = %l, "directory unavailable");
            E::unavailable(
                "the user directory (LDAP) cannot be reached; retry shortly",
                5,
            )
        }
        other => E::internal("authentication failed", &other),
    }
}

impl From<MetaError> for RegistryError {
    fn from(e: MetaError) -> Self {
        from_meta(e)
    }
}

impl From<StorageError> for RegistryError {
    fn from(e: StorageError) -> Self {
        from_storage(e)
    }
}
