//! Static files, compiled in: the stylesheet, the UI's one script (copy buttons), and the
//! vendored htmx (with its licence).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (path under `/static/`, content type, bytes).
const ASSETS: [(&str, &str, &[u8]); 5] = [
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../web/static/favicon.svg"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/static/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/static/app.css"),
    ),
    (
        "vendor/htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/static/vendor/htmx.min.js"),
    ),
    (
        "vendor/htmx.LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../../web/static/vendor/htmx.LICENSE"),
    ),
];

/// `GET /static/{file}`: cached for a day (the files change only with the binary).
pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=86400"),
                ),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
