//! Events: what the registry did (or refused to do), for whom, from where, and when.

use berth_meta::AuditEntry;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// No credentials (pulls from public projects), or authentication disabled.
    Anonymous,
    /// A user; `id` when known (Bearer tokens carry the name only).
    User {
        /// User id.
        id: Option<i64>,
        /// Login name.
        name: String,
    },
    /// A robot account.
    Robot {
        /// Full name, `robot$…`.
        name: String,
    },
    /// The registry itself (jobs).
    System,
}

impl Who {
    /// Who from its parts: `user` (with the id when known), `robot`, anything else anonymous.
    pub fn from_parts(principal: &str, name: &str, user_id: Option<i64>) -> Self {
        match principal {
            "user" => Self::User {
                id: user_id,
                name: name.to_owned(),
            },
            "robot" => Self::Robot {
                name: name.to_owned(),
            },
            _ => Self::Anonymous,
        }
    }

    /// The name the audit log shows.
    pub fn name(&self) -> &str {
        match self {
            Self::Anonymous => "anonymous",
            Self::User { name, .. } | Self::Robot { name } => name,
            Self::System => "system",
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::User { .. } => "user",
            Self::Robot { .. } => "robot",
            Self::System => "system",
        }
    }
}

/// Who asked for an operation, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initiator {
    /// Who.
    pub who: Who,
    /// The client's address: the first hop that is not a trusted proxy.
    pub address: String,
}

impl Initiator {
    /// The registry itself, acting on its own (jobs).
    pub fn system() -> Self {
        Self {
            who: Who::System,
            address: String::new(),
        }
    }
}

/// Whether an operation took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did.
    Success,
    /// It was refused, for this reason.
    Refused(String),
}

/// What happened. Names are the registry's own (validated) names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A manifest was pushed (and tagged, when `tag` is set).
    ArtifactPushed {
        /// Repository.
        repository: String,
        /// Manifest digest.
        digest: String,
        /// The tag it was pushed under.
        tag: Option<String>,
    },
    /// A manifest was pulled.
    ArtifactPulled {
        /// Repository.
        repository: String,
        /// The tag or digest asked for.
        reference: String,
    },
    /// A manifest was deleted with its tags.
    ArtifactDeleted {
        /// Repository.
        repository: String,
        /// Manifest digest.
        digest: String,
    },
    /// A tag was created or moved through the management API.
    TagCreated {
        /// Repository.
        repository: String,
        /// Tag.
        tag: String,
    },
    /// A tag was deleted.
    TagDeleted {
        /// Repository.
        repository: String,
        /// Tag.
        tag: String,
    },
    /// A repository was deleted with its content.
    RepositoryDeleted {
        /// Repository.
        repository: String,
    },
    /// A project was created.
    ProjectCreated {
        /// Name.
        name: String,
    },
    /// A project's settings changed.
    ProjectUpdated {
        /// Name.
        name: String,
    },
    /// A project was deleted.
    ProjectDeleted {
        /// Name.
        name: String,
    },
    /// A user was created.
    UserCreated {
        /// Name.
        name: String,
    },
    /// A user was changed: `what` says how (profile, password, admin, disabled).
    UserUpdated {
        /// Name.
        name: String,
        /// What changed.
        what: String,
    },
    /// A user was deleted.
    UserDeleted {
        /// Name.
        name: String,
    },
    /// A member was added to a project.
    MemberAdded {
        /// Project.
        project: String,
        /// User name or group DN.
        member: String,
        /// Role.
        role: String,
    },
    /// A member's role changed.
    MemberUpdated {
        /// Project.
        project: String,
        /// User name or group DN.
        member: String,
        /// New role.
        role: String,
    },
    /// A member was removed.
    MemberRemoved {
        /// Project.
        project: String,
        /// User name or group DN.
        member: String,
    },
    /// A robot account was created.
    RobotCreated {
        /// Full name.
        name: String,
    },
    /// A robot account was changed (permissions, expiry, description, disabled, secret).
    RobotUpdated {
        /// Full name.
        name: String,
        /// What changed.
        what: String,
    },
    /// A robot account was deleted.
    RobotDeleted {
        /// Full name.
        name: String,
    },
    /// A login: a browser session or `docker login`; the initiator names who tried.
    Login,
    /// A browser session ended.
    Logout,
    /// A setting of the registry changed.
    ConfigurationChanged {
        /// The setting.
        key: String,
    },
}

impl EventKind {
    /// Harbor's operation: `create`, `update`, `delete`, `pull`, `login`, `logout`.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::ArtifactPushed { .. }
            | Self::TagCreated { .. }
            | Self::ProjectCreated { .. }
            | Self::UserCreated { .. }
            | Self::MemberAdded { .. }
            | Self::RobotCreated { .. } => "create",
            Self::ArtifactPulled { .. } => "pull",
            Self::ArtifactDeleted { .. }
            | Self::TagDeleted { .. }
            | Self::RepositoryDeleted { .. }
            | Self::ProjectDeleted { .. }
            | Self::UserDeleted { .. }
            | Self::MemberRemoved { .. }
            | Self::RobotDeleted { .. } => "delete",
            Self::ProjectUpdated { .. }
            | Self::UserUpdated { .. }
            | Self::MemberUpdated { .. }
            | Self::RobotUpdated { .. }
            | Self::ConfigurationChanged { .. } => "update",
            Self::Login => "login",
            Self::Logout => "logout",
        }
    }

    /// What kind of thing it acted on.
    pub fn resource_type(&self) -> &'static str {
        match self {
            Self::ArtifactPushed { .. }
            | Self::ArtifactPulled { .. }
            | Self::ArtifactDeleted { .. } => "artifact",
            Self::TagCreated { .. } | Self::TagDeleted { .. } => "tag",
            Self::RepositoryDeleted { .. } => "repository",
            Self::ProjectCreated { .. }
            | Self::ProjectUpdated { .. }
            | Self::ProjectDeleted { .. } => "project",
            Self::UserCreated { .. } | Self::UserUpdated { .. } | Self::UserDeleted { .. } => {
                "user"
            }
            Self::MemberAdded { .. } | Self::MemberUpdated { .. } | Self::MemberRemoved { .. } => {
                "member"
            }
            Self::RobotCreated { .. } | Self::RobotUpdated { .. } | Self::RobotDeleted { .. } => {
                "robot"
            }
            Self::Login | Self::Logout => "session",
            Self::ConfigurationChanged { .. } => "configuration",
        }
    }

    /// What it acted on, as the audit log shows it.
    pub fn resource(&self, who: &Who) -> String {
        match self {
            Self::ArtifactPushed {
                repository, digest, ..
            }
            | Self::ArtifactDeleted { repository, digest } => format!("{repository}@{digest}"),
            Self::ArtifactPulled {
                repository,
                reference,
            } => {
                let sep = if reference.contains(':') { '@' } else { ':' };
                format!("{repository}{sep}{reference}")
            }
            Self::TagCreated { repository, tag } | Self::TagDeleted { repository, tag } => {
                format!("{repository}:{tag}")
            }
            Self::RepositoryDeleted { repository } => repository.clone(),
            Self::ProjectCreated { name }
            | Self::ProjectUpdated { name }
            | Self::ProjectDeleted { name }
            | Self::UserCreated { name }
            | Self::UserUpdated { name, .. }
            | Self::UserDeleted { name }
            | Self::RobotCreated { name }
            | Self::RobotUpdated { name, .. }
            | Self::RobotDeleted { name } => name.clone(),
            Self::MemberAdded {
                project, member, ..
            }
            | Self::MemberUpdated {
                project, member, ..
            }
            | Self::MemberRemoved { project, member } => format!("{project}/{member}"),
            Self::Login | Self::Logout => who.name().to_owned(),
            Self::ConfigurationChanged { key } => key.clone(),
        }
    }

    /// What changed, beyond the resource, when there is more to say.
    fn detail(&self) -> Option<String> {
        match self {
            Self::ArtifactPushed { tag: Some(tag), .. } => Some(format!("tag {tag}")),
            Self::UserUpdated { what, .. } | Self::RobotUpdated { what, .. } => Some(what.clone()),
            Self::MemberAdded { role, .. } | Self::MemberUpdated { role, .. } => {
                Some(format!("role {role}"))
            }
            _ => None,
        }
    }
}

/// One thing the registry did or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When (Unix milliseconds).
    pub at: i64,
    /// Who asked, and from where.
    pub initiator: Initiator,
    /// The project it happened in, when there is one.
    pub project_id: Option<i64>,
    /// What.
    pub kind: EventKind,
    /// Whether it took effect.
    pub outcome: Outcome,
}

/// Longest name and resource kept in the audit log (the columns' sizes).
const MAX_NAME: usize = 255;
const MAX_RESOURCE: usize = 1024;

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    s.chars().take(max).collect()
}

impl Event {
    /// The audit log's entry for this event.
    pub fn audit_entry(&self) -> AuditEntry {
        let who = &self.initiator.who;
        let (outcome, detail) = match &self.outcome {
            Outcome::Success => ("success", self.kind.detail()),
            Outcome::Refused(why) => ("failure", Some(why.clone())),
        };
        AuditEntry {
            op_time: self.at,
            project_id: self.project_id,
            user_id: match who {
                Who::User { id, .. } => *id,
                _ => None,
            },
            principal: who.kind().to_owned(),
            username: clip(who.name(), MAX_NAME),
            operation: self.kind.operation().to_owned(),
            resource_type: self.kind.resource_type().to_owned(),
            resource: clip(&self.kind.resource(who), MAX_RESOURCE),
            client_address: clip(&self.initiator.address, 64),
            outcome: outcome.to_owned(),
            detail,
        }
    }
}

/// Something that follows the registry's events (quotas, replication triggers, webhooks).
/// Called after the change committed, on the task that made it: it must not block.
pub trait Subscriber: Send + Sync + 'static {
    /// One event.
    fn notify(&self, event: &Event);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(who: Who, kind: EventKind, outcome: Outcome) -> Event {
        Event {
            at: 1_000,
            initiator: Initiator {
                who,
                address: "192.0.2.1".into(),
            },
            project_id: Some(3),
            kind,
            outcome,
        }
    }

    #[test]
    fn audit_entries_say_who_what_and_how_it_ended() {
        let e = event(
            Who::User {
                id: Some(7),
                name: "alice".into(),
            },
            EventKind::ArtifactPushed {
                repository: "team/app".into(),
                digest: "sha256:ab".into(),
                tag: Some("v1".into()),
            },
            Outcome::Success,
        )
        .audit_entry();
        assert_eq!(
            (
                e.username.as_str(),
                e.user_id,
                e.principal.as_str(),
                e.operation.as_str(),
                e.resource_type.as_str(),
                e.resource.as_str(),
                e.outcome.as_str(),
                e.detail.as_deref()
            ),
            (
                "alice",
                Some(7),
                "user",
                "create",
                "artifact",
                "team/app@sha256:ab",
                "success",
                Some("tag v1")
            )
        );
        let pull = event(
            Who::Anonymous,
            EventKind::ArtifactPulled {
                repository: "team/app".into(),
                reference: "v1".into(),
            },
            Outcome::Success,
        )
        .audit_entry();
        assert_eq!(pull.resource, "team/app:v1");
        assert_eq!(pull.username, "anonymous");
        let failed = event(
            Who::User {
                id: None,
                name: "x".repeat(300),
            },
            EventKind::Login,
            Outcome::Refused("wrong password".into()),
        )
        .audit_entry();
        assert_eq!(failed.username.len(), 255);
        assert_eq!(failed.outcome, "failure");
        assert_eq!(failed.detail.as_deref(), Some("wrong password"));
        assert_eq!(
            (failed.operation.as_str(), failed.resource_type.as_str()),
            ("login", "session")
        );
    }
}
