//! Who is looking at a page (the session cookie shared with `/c/login`, checked on every
//! request, so that it idles out and ends everywhere at once), in which language, and the
//! CSRF token every form carries: the session's, or before signing in a random token kept in
//! a cookie of its own (double submit), so that the sign-in and language forms are protected
//! too.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use berth_api::management::sessions::{SESSION_COOKIE, cookie, cookie_header};
use berth_api::management::{Actor, ApiError};
use berth_auth::Principal;

use crate::Web;
use crate::i18n::{LANGUAGE_COOKIE, Locale};

/// The cookie holding the CSRF token of forms sent before signing in.
pub const FORM_TOKEN_COOKIE: &str = "berth_form";

/// A page request's viewer.
pub struct Viewer {
    /// Who: a signed-in user, or anonymous (`Actor::Open` when authentication is off).
    pub actor: Actor,
    /// The signed-in user's name.
    pub user: Option<String>,
    /// The session's id, when signed in.
    pub session: Option<String>,
    /// The token this viewer's forms must carry.
    pub csrf: String,
    /// Set when the token is new: the cookie to send with the response.
    pub new_token: Option<HeaderValue>,
    /// The page's language.
    pub locale: Locale,
    /// The path and query of the page (for the language form's return).
    pub path: String,
    /// The client's address (for the audit log and login limits).
    pub client: String,
    /// The request's id (error pages name it; the server log has it on every line).
    pub request_id: String,
}

impl Viewer {
    /// Whether `sent` is this viewer's CSRF token.
    pub fn csrf_ok(&self, sent: Option<&str>) -> bool {
        let Some(sent) = sent else { return false };
        // Constant time is not needed against a token that never leaves a cookie jar, but a
        // length check first keeps the comparison honest.
        sent.len() == self.csrf.len() && sent == self.csrf
    }

    /// The viewer as the registry's events name it.
    pub fn initiator(&self) -> berth_registry::Initiator {
        self.actor
            .initiator(berth_api::management::ClientAddress(self.client.clone()))
    }

    /// Response headers this viewer needs (a new form-token cookie).
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(c) = &self.new_token {
            h.append(header::SET_COOKIE, c.clone());
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h
    }
}

impl FromRequestParts<std::sync::Arc<Web>> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        web: &std::sync::Arc<Web>,
    ) -> Result<Self, Self::Rejection> {
        let app = &web.app;
        let headers = &parts.headers;
        let locale = Locale::negotiate(
            cookie(headers, LANGUAGE_COOKIE),
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |u| u.0.clone())
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let client = berth_api::client_address(&parts.extensions, headers, &app.trusted_proxies);
        let mut viewer = Viewer {
            actor: Actor::As(Principal::Anonymous),
            user: None,
            session: None,
            csrf: String::new(),
            new_token: None,
            locale,
            path,
            client,
            request_id: headers
                .get(berth_api::REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned(),
        };
        let Some(auth) = &app.auth else {
            viewer.actor = Actor::Open;
            form_token(app, headers, &mut viewer);
            return Ok(viewer);
        };
        if let Some(id) = cookie(headers, SESSION_COOKIE)
            && let Some((principal, csrf)) = auth.service.session(id).await?
        {
            viewer.user = Some(principal.name().to_owned());
            viewer.actor = Actor::As(principal);
            viewer.session = Some(id.to_owned());
            viewer.csrf = csrf;
            return Ok(viewer);
        }
        form_token(app, headers, &mut viewer);
        Ok(viewer)
    }
}

/// The form token of a viewer without a session: the cookie's, or a new one.
fn form_token(app: &berth_api::AppState, headers: &HeaderMap, viewer: &mut Viewer) {
    match cookie(headers, FORM_TOKEN_COOKIE).filter(|t| t.len() == 32) {
        Some(token) => viewer.csrf = token.to_owned(),
        None => {
            let token = berth_auth::password::generate_secret();
            viewer.new_token = Some(cookie_header(app, FORM_TOKEN_COOKIE, &token, true, None));
            viewer.csrf = token;
        }
    }
}
