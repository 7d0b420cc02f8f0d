//! Who may do what: Harbor's project roles, mapped onto registry actions.

use std::fmt;
use std::str::FromStr;

/// A project role (Harbor's five).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything in the project, members included.
    ProjectAdmin,
    /// Pull, push, delete.
    Maintainer,
    /// Pull and push.
    Developer,
    /// Pull.
    Guest,
    /// Pull, and less of the project's other resources than a guest.
    LimitedGuest,
}

impl Role {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProjectAdmin => "projectAdmin",
            Self::Maintainer => "maintainer",
            Self::Developer => "developer",
            Self::Guest => "guest",
            Self::LimitedGuest => "limitedGuest",
        }
    }

    /// Registry actions on the project's repositories.
    pub fn repository_actions(self) -> &'static [&'static str] {
        match self {
            Self::ProjectAdmin | Self::Maintainer => &["pull", "push", "delete"],
            Self::Developer => &["pull", "push"],
            Self::Guest | Self::LimitedGuest => &["pull"],
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "projectAdmin" => Self::ProjectAdmin,
            "maintainer" => Self::Maintainer,
            "developer" => Self::Developer,
            "guest" => Self::Guest,
            "limitedGuest" => Self::LimitedGuest,
            other => return Err(format!("unknown role {other:?}")),
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// A local user.
    User {
        /// User id.
        id: i64,
        /// Login name.
        name: String,
        /// System administrator.
        sysadmin: bool,
        /// DNs of the directory groups the user is in (LDAP users; empty otherwise).
        groups: Vec<String>,
    },
    /// A robot account, with explicit permissions.
    Robot {
        /// Robot id.
        id: i64,
        /// Full name, `robot$…`.
        name: String,
        /// What it may do, per project (`*`: every project).
        permissions: Vec<RobotPermission>,
    },
}

/// A robot's permission in one project, or in every project (`*`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct RobotPermission {
    /// Project name, or `*`.
    pub project: String,
    /// Registry actions: `pull`, `push`, `delete`.
    pub actions: Vec<String>,
}

/// Prefix of robot account names.
pub const ROBOT_PREFIX: &str = "robot$";

impl Principal {
    /// The name tokens carry in `sub` (empty for anonymous).
    pub fn name(&self) -> &str {
        match self {
            Self::Anonymous => "",
            Self::User { name, .. } | Self::Robot { name, .. } => name,
        }
    }
}

/// What a principal may do in a repository, and if not everything, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// Allowed registry actions.
    pub actions: Vec<&'static str>,
    /// Why more is not allowed, in words a user can act on.
    pub limit: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_map_to_actions() {
        for r in [
            Role::ProjectAdmin,
            Role::Maintainer,
            Role::Developer,
            Role::Guest,
            Role::LimitedGuest,
        ] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("owner".parse::<Role>().is_err());
        assert_eq!(Role::Developer.repository_actions(), ["pull", "push"]);
        assert_eq!(
            Role::Maintainer.repository_actions(),
            ["pull", "push", "delete"]
        );
        assert_eq!(Role::LimitedGuest.repository_actions(), ["pull"]);
    }
}
