//! Errors of the management API, in Harbor's envelope `{"errors":[{"code","message"}]}` with
//! Harbor's codes, so that scripts written for Harbor read them unchanged.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_meta::MetaError;
use serde_json::json;

/// A management API error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status` and a message saying what to fix.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: credentials are missing or wrong.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: the caller is known but may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: no such thing (or not one the caller may see).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: it exists already.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 412: the thing is in a state that does not allow this (e.g. a project that is not empty).
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, message)
    }

    /// 429: too many failed password checks; try again after `wait`.
    pub fn throttled(wait: std::time::Duration) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed logins; try again in {} s",
                wait.as_secs().max(1)
            ),
        )
        .retry_after(wait.as_secs())
    }

    /// Asks the client to retry after `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// An unexpected failure: logged in full here, answered opaquely.
    pub fn internal(context: &str, error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error; the server log has the details under this request's id",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether this is a 404.
    pub fn is_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
    }

    fn code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "BAD_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::FORBIDDEN => "FORBIDDEN",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
            StatusCode::CONFLICT => "CONFLICT",
            StatusCode::PRECONDITION_FAILED => "PRECONDITION",
            StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
            StatusCode::TOO_MANY_REQUESTS => "TOO_MANY_REQUESTS",
            StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
            _ => "INTERNAL_SERVER_ERROR",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{"code": self.code(), "message": self.message}]});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl crate::error::Envelope for ApiError {
    fn unavailable(message: &str, retry_after: u64) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message).retry_after(retry_after)
    }

    fn internal(context: &str, error: &dyn std::error::Error) -> Self {
        Self::internal(context, error)
    }
}

impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> Self {
        crate::error::from_meta(e)
    }
}

impl From<berth_auth::AuthError> for ApiError {
    fn from(e: berth_auth::AuthError) -> Self {
        crate::error::from_auth(e)
    }
}

impl From<berth_registry::Error> for ApiError {
    fn from(e: berth_registry::Error) -> Self {
        use berth_registry::Error;
        match e {
            Error::Invalid(m) => Self::bad_request(m),
            Error::NotFound(m) => Self::not_found(m),
            Error::Conflict(m) => Self::conflict(m),
            Error::Unauthorized(m) => Self::unauthorized(m),
            Error::Forbidden(m) => Self::forbidden(m),
            Error::Precondition(m) => Self::precondition(m),
            Error::Throttled(wait) => Self::throttled(wait),
            Error::Meta(e) => e.into(),
            Error::Auth(e) => e.into(),
            Error::Internal(m) => {
                Self::internal("registry operation failed", &std::io::Error::other(m))
            }
        }
    }
}

/// Largest request body the management API reads (its bodies are small JSON documents).
pub const MAX_BODY: usize = 1 << 20;

/// Middleware of the whole management API: request bodies are read here within [`MAX_BODY`]
/// (an oversized one is drained, so that the client reads the 413), and every error response,
/// including those of layers below the handlers (extractor rejections, body limits), leaves in
/// Harbor's envelope.
pub async fn harbor_errors(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body = match crate::body::read_limited(&parts.headers, body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(crate::body::BodyError::TooLarge) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {MAX_BODY} bytes"),
            )
            .into_response();
        }
        Err(crate::body::BodyError::Read(e)) => {
            return ApiError::bad_request(format!("could not read the request body: {e}"))
                .into_response();
        }
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    in_envelope(response).await
}

/// An error response that is not JSON, rewritten into Harbor's envelope with its text as the
/// message (headers such as `Allow` and `Retry-After` kept).
async fn in_envelope(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let rendered = ApiError::new(status, message).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let (new_parts, new_body) = rendered.into_parts();
    parts.headers.extend(new_parts.headers);
    Response::from_parts(parts, new_body)
}
