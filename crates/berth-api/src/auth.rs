//! Authentication on the HTTP surface: the Docker registry token endpoint (`/service/token`) and
//! the check every `/v2` request passes when authentication is enabled.
//!
//! A request without credentials gets `401` with a `Bearer` challenge naming the realm, the
//! service and the scope the request needs. Bearer tokens are verified (ES256, issuer,
//! audience, expiry) and must grant the action; Basic credentials are accepted directly, as
//! Harbor does. A known user who lacks an action gets `403 DENIED` with the reason.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_auth::scope::parse_scopes;
use berth_auth::{AuthService, Claims, Login, Principal};
use berth_core::{Action, ErrorCode, RepositoryName};
use data_encoding::BASE64;
use serde_json::json;

use crate::v2::{Endpoint, query_pairs, query_param};
use crate::{App, AppState, RegistryError};

/// Authentication settings of the HTTP surface.
pub struct HttpAuth {
    /// The service that checks credentials and issues tokens.
    pub service: Arc<AuthService>,
    /// The token endpoint's URL as clients reach it: `<external url>/service/token`.
    pub realm: String,
}

/// Who is calling, once authenticated.
pub enum Caller {
    /// Authentication is disabled: everything is allowed.
    Open,
    /// A verified bearer token.
    Token(Claims),
    /// Basic credentials checked directly.
    Basic(Principal),
}

impl Caller {
    /// Whether the caller may do `action` in `repository`.
    pub async fn may(
        &self,
        app: &App,
        repository: &str,
        action: Action,
    ) -> Result<bool, RegistryError> {
        self.may_all(app, repository, &[action]).await
    }

    /// Whether the caller may do every one of `actions` in `repository` (one permission
    /// lookup, however many actions).
    pub async fn may_all(
        &self,
        app: &App,
        repository: &str,
        actions: &[Action],
    ) -> Result<bool, RegistryError> {
        Ok(match self {
            Self::Open => true,
            Self::Token(claims) => actions
                .iter()
                .all(|a| claims.allows("repository", repository, a.as_str())),
            Self::Basic(principal) => match &app.auth {
                Some(auth) => {
                    let permission = auth
                        .service
                        .permission(principal, repository)
                        .await
                        .map_err(internal)?;
                    actions.iter().all(|a| permission.actions.contains(a))
                }
                None => true,
            },
        })
    }

    /// Whether the caller may have a blob mounted from wherever the registry finds it
    /// (cross-repository mount without `from`): only when it could pull from anywhere.
    pub fn may_mount_from_anywhere(&self) -> bool {
        matches!(
            self,
            Self::Open | Self::Basic(Principal::User { sysadmin: true, .. })
        )
    }
}

impl Caller {
    /// Who the caller is, borrowed: (`user`, `robot` or `anonymous`, name, user id).
    pub fn who_parts(&self) -> (&'static str, &str, Option<i64>) {
        match self {
            Self::Open => ("anonymous", "", None),
            Self::Token(claims) if claims.sub.is_empty() => ("anonymous", "", None),
            Self::Token(claims) if claims.sub.starts_with(berth_auth::ROBOT_PREFIX) => {
                ("robot", claims.sub.as_str(), None)
            }
            Self::Token(claims) => ("user", claims.sub.as_str(), None),
            Self::Basic(Principal::Anonymous) => ("anonymous", "", None),
            Self::Basic(Principal::User { id, name, .. }) => ("user", name.as_str(), Some(*id)),
            Self::Basic(Principal::Robot { name, .. }) => ("robot", name.as_str(), None),
        }
    }

    /// Who the caller is, as the registry's events name it.
    pub fn who(&self) -> berth_registry::Who {
        let (principal, name, user_id) = self.who_parts();
        berth_registry::Who::from_parts(principal, name, user_id)
    }
}

/// A principal as the registry's events name it.
pub fn who_of(principal: &Principal) -> berth_registry::Who {
    principal.into()
}

fn internal(e: berth_auth::AuthError) -> RegistryError {
    crate::error::from_auth(e)
}

/// What an endpoint requires: a repository and its actions, the catalog, or only a valid caller.
enum Need<'a> {
    Any,
    Catalog,
    Repository(&'a RepositoryName, &'static [Action]),
}

fn need<'a>(endpoint: &'a Endpoint, method: &axum::http::Method) -> Need<'a> {
    use axum::http::Method;
    let pull: &'static [Action] = &[Action::Pull];
    let push: &'static [Action] = &[Action::Pull, Action::Push];
    let delete: &'static [Action] = &[Action::Delete];
    match endpoint {
        Endpoint::Base => Need::Any,
        Endpoint::Catalog => Need::Catalog,
        Endpoint::Tags { name } | Endpoint::Referrers { name, .. } => Need::Repository(name, pull),
        Endpoint::Manifest { name, .. } | Endpoint::Blob { name, .. } => {
            let actions = match *method {
                Method::DELETE => delete,
                Method::PUT | Method::POST | Method::PATCH => push,
                _ => pull,
            };
            Need::Repository(name, actions)
        }
        Endpoint::UploadStart { name } | Endpoint::Upload { name, .. } => {
            Need::Repository(name, push)
        }
    }
}

/// The scope a challenge asks the client to get a token for: what the endpoint needs, and for a
/// cross-repository mount also pull on the source (as CNCF Distribution asks), so that clients
/// that follow the challenge can mount rather than upload again.
fn challenge_scope(need: &Need<'_>, endpoint: &Endpoint, uri: &axum::http::Uri) -> Option<String> {
    let mut scope = match need {
        Need::Any => return None,
        Need::Catalog => return Some("registry:catalog:*".to_owned()),
        Need::Repository(name, actions) => {
            let actions: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
            format!("repository:{name}:{}", actions.join(","))
        }
    };
    if let Endpoint::UploadStart { name } = endpoint
        && query_param(uri, "mount").is_some()
        && let Some(from) = query_param(uri, "from").and_then(|f| f.parse::<RepositoryName>().ok())
        && &from != name
    {
        scope.push_str(&format!(" repository:{from}:pull"));
    }
    Some(scope)
}

/// Parses `Authorization: Basic …`. `Err` for a malformed header.
pub(crate) fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, RegistryError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        RegistryError::new(ErrorCode::Unauthorized, "malformed Basic credentials")
            .status(StatusCode::BAD_REQUEST)
    };
    let text = value.to_str().map_err(|_| malformed())?;
    let Some(encoded) = text
        .strip_prefix("Basic ")
        .or_else(|| text.strip_prefix("basic "))
    else {
        return Ok(None);
    };
    let decoded = BASE64
        .decode(encoded.trim().as_bytes())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok(Some((user.to_owned(), password.to_owned())))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let text = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    text.strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .map(str::trim)
}

/// `value` as an RFC 9110 quoted-string: `"` and `\` escaped, control characters dropped, so
/// that no value can end the parameter it is in and start another.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn challenge(auth: &HttpAuth, scope: Option<&str>, error: Option<&str>) -> HeaderValue {
    let mut value = format!(
        "Bearer realm={},service={}",
        quoted(&auth.realm),
        quoted(&auth.service.settings().service)
    );
    if let Some(scope) = scope {
        value.push_str(&format!(",scope={}", quoted(scope)));
    }
    if let Some(error) = error {
        value.push_str(&format!(",error={}", quoted(error)));
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

fn unauthorized(
    auth: &HttpAuth,
    scope: Option<&str>,
    error: Option<&str>,
    message: &str,
) -> RegistryError {
    RegistryError::new(ErrorCode::Unauthorized, message)
        .header(header::WWW_AUTHENTICATE, challenge(auth, scope, error))
}

/// The client's address, for rate limiting failed logins: the TCP peer, or, when the peer is a
/// trusted proxy (`trusted`), the nearest address in `X-Forwarded-For` that is not one.
/// `X-Forwarded-For` from anyone else is ignored: clients cannot choose their address.
pub fn client_address(
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> String {
    client_ip(extensions, headers, trusted).map_or_else(String::new, |ip| ip.to_string())
}

/// The client's address as [`client_address`] finds it, unformatted.
pub fn client_ip(
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<std::net::IpAddr> {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())?;
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    // Right to left: the first hop not one of ours is the client as our proxies saw it.
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
}

/// Records a login in the audit log: `Some(principal)` accepted, `None` refused (with the
/// name tried). Throttled attempts are refused before any check and not recorded one by one
/// (they would let a client write rows at will). A database that cannot take the entry is
/// logged; the login's answer does not change.
pub(crate) async fn audit_login(
    app: &App,
    tried: &str,
    principal: Option<&Principal>,
    client: &str,
) {
    app.registry.record_login(tried, principal, client).await;
}

/// Checks Basic credentials, answering a failed or throttled login as the client expects.
/// With `record_success`, an accepted login is recorded too (`docker login`); a refused one
/// always is.
async fn login(
    app: &App,
    auth: &HttpAuth,
    (user, password): (&str, &str),
    client: &str,
    scope: Option<&str>,
    record_success: bool,
) -> Result<Principal, RegistryError> {
    match auth
        .service
        .authenticate(user, password, client)
        .await
        .map_err(internal)?
    {
        Login::Accepted(principal) => {
            if record_success {
                audit_login(app, user, Some(&principal), client).await;
            }
            Ok(principal)
        }
        Login::Rejected => {
            audit_login(app, user, None, client).await;
            Err(unauthorized(
                auth,
                scope,
                None,
                "invalid username or password",
            ))
        }
        Login::Throttled(wait) => Err(RegistryError::new(
            ErrorCode::TooManyRequests,
            format!("too many failed logins; try again in {} s", wait.as_secs()),
        )
        .header(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        )),
    }
}

/// Authenticates a `/v2` request and checks it may do what it asks. `Ok(Caller)` to proceed.
pub async fn authorize(
    app: &AppState,
    endpoint: &Endpoint,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Result<Caller, RegistryError> {
    let Some(auth) = &app.auth else {
        return Ok(Caller::Open);
    };
    let need = need(endpoint, method);
    let scope = challenge_scope(&need, endpoint, uri);
    let scope = scope.as_deref();
    // Who is it?
    let caller = if let Some(token) = bearer(headers) {
        match auth.service.verify(token) {
            Ok(claims) => Caller::Token(claims),
            Err(e) => {
                return Err(unauthorized(
                    auth,
                    scope,
                    Some("invalid_token"),
                    &format!("{e}; request a new token"),
                ));
            }
        }
    } else if let Some((user, password)) = basic_credentials(headers)? {
        Caller::Basic(
            login(
                app,
                auth,
                (&user, &password),
                &client_address(extensions, headers, &app.trusted_proxies),
                scope,
                false,
            )
            .await?,
        )
    } else {
        return Err(unauthorized(auth, scope, None, "authentication required"));
    };
    // May it?
    let allowed = match (&need, &caller) {
        (Need::Any, _) | (_, Caller::Open) => true,
        (Need::Catalog, Caller::Token(claims)) => claims.allows("registry", "catalog", "*"),
        (Need::Catalog, Caller::Basic(p)) => matches!(p, Principal::User { sysadmin: true, .. }),
        (Need::Repository(name, actions), c) => c.may_all(app, name.as_str(), actions).await?,
    };
    if allowed {
        return Ok(caller);
    }
    let subject = match &caller {
        Caller::Token(claims) => claims.sub.clone(),
        Caller::Basic(p) => p.name().to_owned(),
        Caller::Open => String::new(),
    };
    if subject.is_empty() {
        // An anonymous token: the client should come back with credentials.
        return Err(unauthorized(
            auth,
            scope,
            Some("insufficient_scope"),
            "authentication required",
        ));
    }
    let reason = match &need {
        Need::Repository(name, _) => {
            let principal = match &caller {
                Caller::Basic(p) => Some(p.clone()),
                _ => auth
                    .service
                    .principal_named(&subject)
                    .await
                    .map_err(internal)?,
            };
            match principal {
                Some(p) => {
                    auth.service
                        .permission(&p, name.as_str())
                        .await
                        .map_err(internal)?
                        .limit
                }
                None => None,
            }
        }
        _ => Some("the catalog is for system administrators".to_owned()),
    };
    let message = format!(
        "requested access to the resource is denied: {}",
        reason.unwrap_or_else(|| "insufficient scope".into())
    );
    Err(RegistryError::new(ErrorCode::Denied, message))
}

/// `GET /service/jwks`: the public keys that verify Berth's tokens (JWKS), for verifiers that
/// take one (CNCF Distribution 3.x `auth.token.jwks`).
pub async fn jwks(State(app): State<AppState>) -> Response {
    match &app.auth {
        Some(auth) => axum::Json(auth.service.jwks()).into_response(),
        None => RegistryError::new(
            ErrorCode::Unsupported,
            "authentication is disabled on this registry",
        )
        .status(StatusCode::NOT_FOUND)
        .into_response(),
    }
}

/// `GET /service/token`: the Docker registry token endpoint.
pub async fn token(State(app): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    token_response(&app, &parts)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn token_response(app: &AppState, req: &Parts) -> Result<Response, RegistryError> {
    let Some(auth) = &app.auth else {
        return Err(RegistryError::new(
            ErrorCode::Unsupported,
            "authentication is disabled on this registry",
        )
        .status(StatusCode::NOT_FOUND));
    };
    let params = query_pairs(req.uri.query().unwrap_or(""));
    let param = |k: &'static str| {
        params
            .iter()
            .filter(move |(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    if let Some(service) = param("service").next()
        && service != auth.service.settings().service
    {
        return Err(RegistryError::new(
            ErrorCode::Unsupported,
            format!("unknown service {service:?}"),
        )
        .status(StatusCode::BAD_REQUEST));
    }
    let scopes = parse_scopes(param("scope")).map_err(|e| {
        RegistryError::new(ErrorCode::Unsupported, e.to_string()).status(StatusCode::BAD_REQUEST)
    })?;
    let principal = match basic_credentials(&req.headers)? {
        Some((user, password)) => {
            // A request with no scope is `docker login`: recorded as a login.
            login(
                app,
                auth,
                (&user, &password),
                &client_address(&req.extensions, &req.headers, &app.trusted_proxies),
                None,
                scopes.is_empty(),
            )
            .await?
        }
        // `docker login` without credentials, or a client that ignored the challenge.
        None if scopes.is_empty() => {
            return Err(RegistryError::new(
                ErrorCode::Unauthorized,
                "authentication required",
            ));
        }
        None => Principal::Anonymous,
    };
    let offline = param("offline_token").next() == Some("true");
    token_body(auth, &principal, &scopes, offline, None).await
}

/// The token response: an access token for `scopes`, and a refresh token when asked for
/// (or the one presented, on a refresh grant).
async fn token_body(
    auth: &HttpAuth,
    principal: &Principal,
    scopes: &[berth_auth::Scope],
    offline: bool,
    presented_refresh: Option<&str>,
) -> Result<Response, RegistryError> {
    let access = auth
        .service
        .grant(principal, scopes)
        .await
        .map_err(internal)?;
    let issued = auth
        .service
        .issue(principal, access)
        .map_err(|e| RegistryError::internal("token signing failed", &e))?;
    let mut body = json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": rfc3339(issued.issued_at),
    });
    if !scopes.is_empty() {
        body["scope"] = json!(
            scopes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let refresh = match presented_refresh {
        Some(r) => Some(r.to_owned()),
        None if offline => auth
            .service
            .issue_refresh(principal)
            .await
            .map_err(internal)?,
        None => None,
    };
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /service/token`: the OAuth2 form (`grant_type` `password` or `refresh_token`), as
/// clients use it after `docker login` stored a refresh token.
pub async fn token_post(State(app): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = crate::body::read_limited(&parts.headers, body, 64 << 10).await else {
        return RegistryError::new(
            ErrorCode::Unsupported,
            "the token request body is not a form of at most 64 KiB",
        )
        .status(StatusCode::BAD_REQUEST)
        .into_response();
    };
    token_post_response(&app, &parts, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn token_post_response(
    app: &AppState,
    req: &Parts,
    body: &[u8],
) -> Result<Response, RegistryError> {
    let Some(auth) = &app.auth else {
        return Err(RegistryError::new(
            ErrorCode::Unsupported,
            "authentication is disabled on this registry",
        )
        .status(StatusCode::NOT_FOUND));
    };
    let bad =
        |m: String| RegistryError::new(ErrorCode::Unsupported, m).status(StatusCode::BAD_REQUEST);
    let form =
        query_pairs(std::str::from_utf8(body).map_err(|_| bad("the form is not UTF-8".into()))?);
    let field = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    match field("service") {
        Some(s) if s == auth.service.settings().service => {}
        Some(s) => return Err(bad(format!("unknown service {s:?}"))),
        None => return Err(bad("service is required".into())),
    }
    let scopes = parse_scopes(
        form.iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str()),
    )
    .map_err(|e| bad(e.to_string()))?;
    match field("grant_type") {
        Some("password") => {
            let (Some(user), Some(password)) = (field("username"), field("password")) else {
                return Err(bad("grant_type=password needs username and password".into()));
            };
            let principal = login(
                app,
                auth,
                (user, password),
                &client_address(&req.extensions, &req.headers, &app.trusted_proxies),
                None,
                scopes.is_empty(),
            )
            .await?;
            token_body(
                auth,
                &principal,
                &scopes,
                field("access_type") == Some("offline"),
                None,
            )
            .await
        }
        Some("refresh_token") => {
            let Some(refresh) = field("refresh_token") else {
                return Err(bad("grant_type=refresh_token needs refresh_token".into()));
            };
            match auth
                .service
                .redeem_refresh(refresh)
                .await
                .map_err(internal)?
            {
                Some(principal) => {
                    token_body(auth, &principal, &scopes, false, Some(refresh)).await
                }
                None => Err(RegistryError::new(
                    ErrorCode::Unauthorized,
                    "the refresh token is invalid, expired or revoked; log in again",
                )),
            }
        }
        Some(other) => Err(bad(format!(
            "unsupported grant_type {other:?}: use password or refresh_token"
        ))),
        None => Err(bad("grant_type is required".into())),
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-01-02T03:04:05Z`).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_address_trusts_only_trusted_proxies() {
        let mut ext = axum::http::Extensions::new();
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.9, 203.0.113.7, 10.1.2.3"),
        );
        assert_eq!(client_address(&ext, &h, &trusted), "");
        ext.insert(axum::extract::ConnectInfo(
            "192.0.2.1:4000".parse::<std::net::SocketAddr>().unwrap(),
        ));
        assert_eq!(
            client_address(&ext, &h, &trusted),
            "192.0.2.1",
            "an untrusted peer's header is ignored"
        );
        ext.insert(axum::extract::ConnectInfo(
            "10.9.9.9:4000".parse::<std::net::SocketAddr>().unwrap(),
        ));
        assert_eq!(
            client_address(&ext, &h, &trusted),
            "203.0.113.7",
            "the nearest hop that is not ours"
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("10.1.1.1"));
        assert_eq!(client_address(&ext, &h, &trusted), "10.9.9.9");
        assert_eq!(
            client_address(&ext, &HeaderMap::new(), &trusted),
            "10.9.9.9"
        );
    }

    #[test]
    fn header_values_are_quoted_strings() {
        assert_eq!(quoted("plain"), "\"plain\"");
        assert_eq!(
            quoted("a\",realm=\"http://evil"),
            "\"a\\\",realm=\\\"http://evil\""
        );
        assert_eq!(quoted("back\\slash"), "\"back\\\\slash\"");
        assert_eq!(quoted("tab\tnl\n"), "\"tabnl\"");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn basic_headers() {
        let mut h = HeaderMap::new();
        assert!(basic_credentials(&h).unwrap().is_none());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6czNjcjp0"),
        );
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("alice".into(), "s3cr:t".into()))
        );
        for bad in ["Basic !!!", "Basic YWxpY2U=", "Basic /w=="] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert!(basic_credentials(&h).is_err(), "{bad}");
        }
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(basic_credentials(&h).unwrap().is_none());
    }
}
