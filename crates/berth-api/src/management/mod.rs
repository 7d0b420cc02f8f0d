//! The management API under `/api/v2.0`, shaped like Harbor's so that scripts written for
//! Harbor carry over: users, projects and their members, robot accounts, repositories,
//! artifacts and tags, system information and health.
//!
//! Conventions (Harbor's): HTTP Basic authentication (users and robot accounts) or a browser
//! session from `/c/login` (anonymous callers see public projects), JSON errors `{"errors":[{"code","message"}]}`, `page` and
//! `page_size` with `X-Total-Count` and `Link` headers, `q=key=value,key=~fragment` filters,
//! and repository names URL-encoded twice in paths. The OpenAPI document is
//! `crates/berth-api/openapi.json`, served at `/api/v2.0/openapi.json`.

mod artifacts;
mod audit;
mod error;
mod jobs;
mod members;
mod projects;
mod robots;
pub mod sessions;
mod system;
mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_auth::{Login, Principal, ProjectOp, RobotReach, Standing};
use berth_meta::{Page, Project, ProjectScope};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::ApiError;

use crate::AppState;
use crate::auth::{basic_credentials, client_address};
use crate::v2::query_pairs;

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// The routes under `/api/v2.0`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ping", get(system::ping))
        .route("/health", get(system::health))
        .route("/systeminfo", get(system::systeminfo))
        .route("/openapi.json", get(system::openapi))
        .route("/users", get(users::list).post(users::create))
        .route("/users/current", get(users::current))
        .route("/users/search", get(users::search))
        .route(
            "/users/{user_id}",
            get(users::get_one).put(users::update).delete(users::delete),
        )
        .route(
            "/users/{user_id}/password",
            axum::routing::put(users::password),
        )
        .route(
            "/users/{user_id}/sysadmin",
            axum::routing::put(users::sysadmin),
        )
        .route(
            "/users/{user_id}/disabled",
            axum::routing::put(users::disabled),
        )
        .route(
            "/projects",
            get(projects::list)
                .post(projects::create)
                .head(projects::exists),
        )
        .route(
            "/projects/{project}",
            get(projects::get_one)
                .put(projects::update)
                .delete(projects::delete),
        )
        .route(
            "/projects/{project}/members",
            get(members::list).post(members::create),
        )
        .route(
            "/projects/{project}/members/{member_id}",
            get(members::get_one)
                .put(members::update)
                .delete(members::delete),
        )
        .route("/jobservice/pools", get(jobs::pools))
        .route("/jobservice/pools/{pool_id}/workers", get(jobs::workers))
        .route("/jobservice/queues", get(jobs::queues))
        .route(
            "/jobservice/queues/{job_type}",
            axum::routing::put(jobs::queue_action),
        )
        .route("/jobservice/jobs", get(jobs::list_jobs))
        .route(
            "/jobservice/jobs/{job_id}",
            get(jobs::get_job).put(jobs::job_action),
        )
        .route("/jobservice/jobs/{job_id}/log", get(jobs::job_log))
        .route("/jobservice/executions", get(jobs::executions))
        .route(
            "/jobservice/executions/{execution_id}",
            get(jobs::execution).put(jobs::execution_action),
        )
        .route(
            "/jobservice/executions/{execution_id}/tasks",
            get(jobs::tasks),
        )
        .route(
            "/jobservice/executions/{execution_id}/tasks/{task_id}/log",
            get(jobs::task_log),
        )
        .route("/jobservice/schedules", get(jobs::schedules))
        .route(
            "/system/purgeaudit",
            get(jobs::purge_history).post(jobs::purge_now),
        )
        .route(
            "/system/purgeaudit/{purge_id}",
            get(jobs::purge_get).put(jobs::purge_stop),
        )
        .route("/system/purgeaudit/{purge_id}/log", get(jobs::purge_log))
        .route("/audit-logs", get(audit::list))
        .route("/projects/{project}/logs", get(audit::project_logs))
        .route("/robots", get(robots::list).post(robots::create))
        .route(
            "/robots/{robot_id}",
            get(robots::get_one)
                .put(robots::update)
                .patch(robots::refresh)
                .delete(robots::delete),
        )
        .route("/repositories", get(artifacts::all_repositories))
        .route(
            "/projects/{project}/repositories",
            get(artifacts::repositories),
        )
        .route(
            "/projects/{project}/repositories/{repository}",
            get(artifacts::repository).delete(artifacts::delete_repository),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts",
            get(artifacts::list),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts/{reference}",
            get(artifacts::get_one).delete(artifacts::delete),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts/{reference}/tags",
            get(artifacts::tags).post(artifacts::create_tag),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts/{reference}/tags/{tag}",
            axum::routing::delete(artifacts::delete_tag),
        )
        .fallback(unknown_endpoint)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(error::harbor_errors))
}

async fn unknown_endpoint(uri: axum::extract::OriginalUri) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint: {}; /api/v2.0/openapi.json lists them",
        uri.path()
    ))
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here; /api/v2.0/openapi.json lists the operations"),
    )
}

/// The caller of a management API request.
pub enum Actor {
    /// Authentication is disabled on this registry: the caller may do everything.
    Open,
    /// An authenticated user or robot, or `Principal::Anonymous`.
    As(Principal),
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let Some(auth) = &app.auth else {
            return Ok(Self::Open);
        };
        let credentials = basic_credentials(&parts.headers)
            .map_err(|_| ApiError::unauthorized("malformed Basic credentials"))?;
        let Some((user, password)) = credentials else {
            if parts.headers.contains_key(header::AUTHORIZATION) {
                return Err(ApiError::unauthorized(
                    "the management API takes Basic credentials (a user or a robot account)",
                ));
            }
            let session = sessions::session_principal(parts, app).await?;
            return Ok(Self::As(session.unwrap_or(Principal::Anonymous)));
        };
        let client = client_address(&parts.extensions, &parts.headers, &app.trusted_proxies);
        match auth.service.authenticate(&user, &password, &client).await? {
            Login::Accepted(principal) => Ok(Self::As(principal)),
            Login::Rejected => {
                crate::auth::audit_login(app, &user, None, &client).await;
                Err(ApiError::unauthorized("invalid username or password"))
            }
            Login::Throttled(wait) => Err(ApiError::throttled(wait)),
        }
    }
}

/// The caller's address, for rate limits: the TCP peer, or the client a trusted proxy names.
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Self(client_address(
            &parts.extensions,
            &parts.headers,
            &app.trusted_proxies,
        )))
    }
}

impl Actor {
    /// The caller as the registry's events name it, calling from `address`.
    pub fn initiator(&self, ClientAddress(address): ClientAddress) -> berth_registry::Initiator {
        berth_registry::Initiator {
            who: match self {
                Self::Open => berth_registry::Who::Anonymous,
                Self::As(p) => crate::auth::who_of(p),
            },
            address,
        }
    }

    /// Whether the caller is a system administrator (or authentication is off).
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Self::Open | Self::As(Principal::User { sysadmin: true, .. })
        )
    }

    /// The principal; a system administrator without a name when authentication is off.
    fn principal(&self) -> Principal {
        match self {
            Self::Open => Principal::User {
                id: 0,
                name: String::new(),
                sysadmin: true,
                groups: Vec::new(),
            },
            Self::As(p) => p.clone(),
        }
    }

    /// Refuses anonymous callers.
    pub fn require_login(&self) -> Result<(), ApiError> {
        match self {
            Self::As(Principal::Anonymous) => Err(ApiError::unauthorized(
                "authentication required: send Basic credentials",
            )),
            _ => Ok(()),
        }
    }

    /// Refuses everyone but system administrators.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require_login()?;
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "only system administrators may do this",
            ))
        }
    }

    /// Which projects the caller may see in listings: those where [`Actor::standing`] allows
    /// [`ProjectOp::Read`] (`ids` holds a robot's projects).
    pub fn project_scope<'a>(&'a self, ids: &'a mut Vec<i64>) -> ProjectScope<'a> {
        match self {
            _ if self.is_admin() => ProjectScope::All,
            Self::As(Principal::User { id, groups, .. }) => ProjectScope::Member {
                user_id: *id,
                groups,
            },
            Self::As(Principal::Robot { permissions, .. }) => {
                match berth_auth::robot_reach(permissions) {
                    RobotReach::Everywhere => ProjectScope::All,
                    RobotReach::Projects(reached) => {
                        *ids = reached;
                        ProjectScope::Ids(ids)
                    }
                }
            }
            _ => ProjectScope::Public,
        }
    }

    /// The caller's standing in `project`.
    async fn standing(&self, app: &AppState, project: &Project) -> Result<Standing, ApiError> {
        match (self, &app.auth) {
            (Self::As(principal), Some(auth)) => {
                Ok(auth.service.standing(principal, project).await?)
            }
            _ => Ok(Standing::SystemAdmin),
        }
    }
}

/// What an operation is called in refusals.
fn op_words(op: ProjectOp) -> &'static str {
    match op {
        ProjectOp::Read | ProjectOp::Pull => "see",
        ProjectOp::Update => "change",
        ProjectOp::Delete => "delete",
        ProjectOp::ReadMembers => "list the members of",
        ProjectOp::ManageMembers => "manage the members of",
        ProjectOp::ReadRobots => "list the robot accounts of",
        ProjectOp::ManageRobots => "manage the robot accounts of",
        ProjectOp::Push => "push to",
        ProjectOp::DeleteArtifacts => "delete content in",
        ProjectOp::ReadLogs => "read the audit log of",
    }
}

/// How a request names a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectRef<'a> {
    /// By name (robot permissions' `namespace`, `X-Is-Resource-Name: true` paths).
    Name(&'a str),
    /// By id.
    Id(i64),
}

impl<'a> ProjectRef<'a> {
    /// A `{project}` path parameter: an id when it is a number, unless the request says
    /// `X-Is-Resource-Name: true` (Harbor's rule); a name otherwise.
    pub fn from_path(headers: &HeaderMap, value: &'a str) -> Self {
        let by_name = headers
            .get("x-is-resource-name")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        match value.parse::<i64>() {
            Ok(id) if !by_name => Self::Id(id),
            _ => Self::Name(value),
        }
    }
}

impl std::fmt::Display for ProjectRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Id(id) => write!(f, "{id}"),
        }
    }
}

/// The project a path names (`{project}`: see [`ProjectRef::from_path`]), if the caller may do
/// `op` in it.
pub async fn project_for(
    app: &AppState,
    actor: &Actor,
    headers: &HeaderMap,
    name_or_id: &str,
    op: ProjectOp,
) -> Result<(Project, Standing), ApiError> {
    project_by_ref(app, actor, ProjectRef::from_path(headers, name_or_id), op).await
}

/// The project `reference` names, if the caller may do `op` in it. A project the caller may
/// not see is "not found" (anonymous callers are asked to log in instead), so that names of
/// private projects do not leak.
pub async fn project_by_ref(
    app: &AppState,
    actor: &Actor,
    reference: ProjectRef<'_>,
    op: ProjectOp,
) -> Result<(Project, Standing), ApiError> {
    let project = match reference {
        ProjectRef::Id(id) => app.registry.meta().project_by_id(id).await?,
        ProjectRef::Name(name) => app.registry.meta().project(name).await?,
    };
    let hidden = || match actor {
        Actor::As(Principal::Anonymous) => ApiError::unauthorized(format!(
            "authentication required to see project {reference}"
        )),
        _ => ApiError::not_found(format!("project {reference} not found")),
    };
    let Some(project) = project else {
        return Err(hidden());
    };
    let standing = actor.standing(app, &project).await?;
    if !standing.may(ProjectOp::Read) {
        return Err(hidden());
    }
    if !standing.may(op) {
        actor.require_login()?;
        let who = match &standing {
            Standing::Member(role) => format!("a {role} in this project"),
            Standing::Robot(_) => "this robot account".to_owned(),
            _ => "a user who is not a member".to_owned(),
        };
        return Err(ApiError::forbidden(format!(
            "{who} may not {} project {}",
            op_words(op),
            project.name
        )));
    }
    Ok((project, standing))
}

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

fn encode(s: &str) -> String {
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
