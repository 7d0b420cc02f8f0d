//! Who calls the management API (`Actor`: Basic credentials, a browser session, or nobody),
//! from where (`ClientAddress`), and what they may do to a project (`project_for`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use berth_auth::{Login, Principal, ProjectOp, RobotReach, Standing};
use berth_meta::{Project, ProjectScope};

use super::ApiError;
use crate::AppState;
use crate::auth::{basic_credentials, client_address};

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
            let session = super::sessions::session_principal(parts, app).await?;
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
    pub(super) fn principal(&self) -> Principal {
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
    pub(super) async fn standing(
        &self,
        app: &AppState,
        project: &Project,
    ) -> Result<Standing, ApiError> {
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
