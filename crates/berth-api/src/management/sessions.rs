//! Browser sessions, Harbor's way: `POST /c/login` (form fields `principal` and `password`)
//! sets the `sid` cookie, which then authenticates management API requests; `/c/log_out` ends
//! it on every node. Requests that change something under a session must echo its CSRF token
//! in `X-Harbor-CSRF-Token` (given at login in that header and in the `__csrf` cookie), so a
//! page on another site cannot act with the user's cookie.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_auth::Principal;

use super::ApiError;
use crate::AppState;
use crate::auth::client_address;

/// The session cookie.
pub const SESSION_COOKIE: &str = "sid";
/// The cookie and header that carry the CSRF token.
pub const CSRF_COOKIE: &str = "__csrf";
/// The header unsafe requests echo the CSRF token in.
pub const CSRF_HEADER: &str = "x-harbor-csrf-token";

/// The value of cookie `name`, if the request sent it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The principal of the request's session, if it has a live one. Unsafe methods must carry
/// the session's CSRF token.
pub async fn session_principal(
    parts: &Parts,
    app: &AppState,
) -> Result<Option<Principal>, ApiError> {
    let (Some(auth), Some(id)) = (&app.auth, cookie(&parts.headers, SESSION_COOKIE)) else {
        return Ok(None);
    };
    // An unknown or ended session is no session: the caller is anonymous (Harbor's way).
    let Some((principal, csrf)) = auth.service.session(id).await? else {
        return Ok(None);
    };
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let echoed = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if echoed != Some(csrf.as_str()) {
            return Err(ApiError::forbidden(
                "CSRF token missing or invalid: send the session's token in X-Harbor-CSRF-Token",
            ));
        }
    }
    Ok(Some(principal))
}

/// A `Set-Cookie` value for the whole site: `SameSite=Lax`, `Secure` when the registry is
/// reached over HTTPS, `HttpOnly` unless a script must read it; `max_age` 0 deletes it.
pub fn cookie_header(
    app: &AppState,
    name: &str,
    value: &str,
    http_only: bool,
    max_age: Option<u64>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; SameSite=Lax");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if app.system.external_url.starts_with("https://") {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    principal: Option<String>,
    password: Option<String>,
}

/// `POST /c/login`.
pub async fn login(State(app): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = crate::body::read_limited(&parts.headers, body, 64 << 10).await else {
        return ApiError::bad_request("the login form is larger than 64 KiB").into_response();
    };
    login_response(&app, &parts, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn login_response(app: &AppState, parts: &Parts, body: &[u8]) -> Result<Response, ApiError> {
    let Some(auth) = &app.auth else {
        return Err(ApiError::bad_request(
            "authentication is disabled on this registry: there is nothing to log in to",
        ));
    };
    let form: LoginForm = serde_urlencoded::from_bytes(body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected a form (application/x-www-form-urlencoded) with principal and password: {e}"
        ))
    })?;
    let (Some(user), Some(password)) = (
        form.principal.filter(|p| !p.is_empty()),
        form.password.filter(|p| !p.is_empty()),
    ) else {
        return Err(ApiError::bad_request(
            "the form needs both principal (the user name) and password",
        ));
    };
    let client = client_address(&parts.extensions, &parts.headers, &app.trusted_proxies);
    let opened = app
        .registry
        .sign_in(&auth.service, &user, &password, &client)
        .await?;
    let (session, csrf) = (opened.id, opened.csrf);
    let mut headers = HeaderMap::new();
    headers.append(
        header::SET_COOKIE,
        cookie_header(app, SESSION_COOKIE, &session, true, None),
    );
    headers.append(
        header::SET_COOKIE,
        cookie_header(app, CSRF_COOKIE, &csrf, false, None),
    );
    if let Ok(v) = HeaderValue::from_str(&csrf) {
        headers.insert(CSRF_HEADER, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((StatusCode::OK, headers).into_response())
}

/// `GET` or `POST /c/log_out`: ends the session (if any) everywhere and clears the cookies.
pub async fn log_out(
    State(app): State<AppState>,
    super::ClientAddress(client): super::ClientAddress,
    headers: HeaderMap,
) -> Response {
    if let (Some(auth), Some(id)) = (&app.auth, cookie(&headers, SESSION_COOKIE)) {
        app.registry.sign_out(&auth.service, id, &client).await;
    }
    let mut out = HeaderMap::new();
    for (name, http_only) in [(SESSION_COOKIE, true), (CSRF_COOKIE, false)] {
        out.append(
            header::SET_COOKIE,
            cookie_header(&app, name, "", http_only, Some(0)),
        );
    }
    (StatusCode::OK, out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; sid=abc ; x=\"q\""),
        );
        h.append(header::COOKIE, HeaderValue::from_static("__csrf=t"));
        assert_eq!(cookie(&h, "sid"), Some("abc"));
        assert_eq!(cookie(&h, "x"), Some("q"));
        assert_eq!(cookie(&h, "__csrf"), Some("t"));
        assert_eq!(cookie(&h, "si"), None);
        h.append(header::COOKIE, HeaderValue::from_static("empty="));
        assert_eq!(cookie(&h, "empty"), None);
    }
}
