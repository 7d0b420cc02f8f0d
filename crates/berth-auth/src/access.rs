//! Who may do what: Harbor's project roles, mapped onto registry actions.

use std::fmt;
use std::str::FromStr;

pub use berth_core::Action;
use berth_meta::RobotGrant;

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
    /// Every role, strongest first.
    pub const ALL: [Role; 5] = [
        Self::ProjectAdmin,
        Self::Maintainer,
        Self::Developer,
        Self::Guest,
        Self::LimitedGuest,
    ];

    /// Harbor's numeric role id (API `role_id`).
    pub fn id(self) -> i64 {
        match self {
            Self::ProjectAdmin => 1,
            Self::Developer => 2,
            Self::Guest => 3,
            Self::Maintainer => 4,
            Self::LimitedGuest => 5,
        }
    }

    /// The role with Harbor's numeric id.
    pub fn from_id(id: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.id() == id)
    }

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
    pub fn repository_actions(self) -> &'static [Action] {
        match self {
            Self::ProjectAdmin | Self::Maintainer => &REPOSITORY_ACTIONS,
            Self::Developer => &[Action::Pull, Action::Push],
            Self::Guest | Self::LimitedGuest => &[Action::Pull],
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
        /// What it may do, per project id (or in every project).
        permissions: Vec<RobotGrant>,
    },
}

/// The registry actions a robot may be granted, in the order they are reported.
pub const REPOSITORY_ACTIONS: [Action; 3] = Action::ALL;

/// The registry actions robot `grants` allow in project `project_id`.
pub fn robot_actions(grants: &[RobotGrant], project_id: i64) -> Vec<Action> {
    REPOSITORY_ACTIONS
        .into_iter()
        .filter(|a| {
            grants
                .iter()
                .any(|g| g.project_id.is_none_or(|p| p == project_id) && g.actions.contains(a))
        })
        .collect()
}

/// Where a robot may do anything at all: the projects its listings show. Derived from
/// [`robot_actions`], so that a listing shows exactly the projects a single read allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RobotReach {
    /// Every project (a grant on every project with at least one action).
    Everywhere,
    /// These projects, by id.
    Projects(Vec<i64>),
}

/// The reach of robot `grants`.
pub fn robot_reach(grants: &[RobotGrant]) -> RobotReach {
    let anywhere = grants
        .iter()
        .any(|g| g.project_id.is_none() && !g.actions.is_empty());
    if anywhere {
        return RobotReach::Everywhere;
    }
    RobotReach::Projects(
        grants
            .iter()
            .filter_map(|g| g.project_id)
            .filter(|id| !robot_actions(grants, *id).is_empty())
            .collect(),
    )
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
    pub actions: Vec<Action>,
    /// Why more is not allowed, in words a user can act on.
    pub limit: Option<String>,
}

/// Who may create projects (Harbor's `project_creation_restriction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProjectCreation {
    /// Every logged-in user.
    #[default]
    Everyone,
    /// System administrators only.
    AdminOnly,
}

impl ProjectCreation {
    /// The setting's name (`everyone`, `adminonly`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Everyone => "everyone",
            Self::AdminOnly => "adminonly",
        }
    }

    /// Whether `principal` may create a project. Robot accounts and anonymous callers never may.
    pub fn allows(self, principal: &Principal) -> bool {
        match principal {
            Principal::User { sysadmin: true, .. } => true,
            Principal::User { .. } => self == Self::Everyone,
            _ => false,
        }
    }
}

impl FromStr for ProjectCreation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "everyone" => Ok(Self::Everyone),
            "adminonly" => Ok(Self::AdminOnly),
            other => Err(format!("{other:?} is not everyone or adminonly")),
        }
    }
}

/// What a principal is to one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// A system administrator: everything, everywhere.
    SystemAdmin,
    /// A member with this role (the strongest of its own and its groups').
    Member(Role),
    /// A robot account with these registry actions in the project.
    Robot(Vec<Action>),
    /// Neither: only what a public project allows everyone.
    Outsider {
        /// The project is public.
        public: bool,
    },
}

/// Something done to a project, or within it, through the management API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectOp {
    /// See the project, its repositories and artifacts.
    Read,
    /// Change its settings (public flag).
    Update,
    /// Delete it.
    Delete,
    /// List its members.
    ReadMembers,
    /// Add, change and remove members.
    ManageMembers,
    /// List its robot accounts.
    ReadRobots,
    /// Create, change and delete its robot accounts.
    ManageRobots,
    /// Pull (read artifacts' content).
    Pull,
    /// Push, and add tags.
    Push,
    /// Delete repositories, artifacts and tags.
    DeleteArtifacts,
    /// Read its audit log: developers and up (Harbor's documentation gives it to guests too,
    /// its code to project admins only; who did what is for those who change the project).
    ReadLogs,
}

impl Standing {
    /// Whether `op` is allowed, following Harbor's permission matrix.
    pub fn may(&self, op: ProjectOp) -> bool {
        use ProjectOp as Op;
        match self {
            Self::SystemAdmin => true,
            Self::Member(role) => match op {
                Op::Read | Op::Pull => true,
                Op::Update | Op::Delete | Op::ManageMembers | Op::ManageRobots => {
                    *role == Role::ProjectAdmin
                }
                Op::ReadMembers | Op::ReadRobots => *role != Role::LimitedGuest,
                Op::Push => role.repository_actions().contains(&Action::Push),
                Op::DeleteArtifacts => role.repository_actions().contains(&Action::Delete),
                Op::ReadLogs => matches!(
                    role,
                    Role::ProjectAdmin | Role::Maintainer | Role::Developer
                ),
            },
            Self::Robot(actions) => match op {
                Op::Read => !actions.is_empty(),
                Op::Pull => actions.contains(&Action::Pull),
                Op::Push => actions.contains(&Action::Push),
                Op::DeleteArtifacts => actions.contains(&Action::Delete),
                _ => false,
            },
            Self::Outsider { public } => *public && matches!(op, Op::Read | Op::Pull),
        }
    }

    /// The role, for members.
    pub fn role(&self) -> Option<Role> {
        match self {
            Self::Member(role) => Some(*role),
            _ => None,
        }
    }
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
        assert_eq!(
            names(Role::Developer.repository_actions()),
            ["pull", "push"]
        );
        assert_eq!(
            names(Role::Maintainer.repository_actions()),
            ["pull", "push", "delete"]
        );
        assert_eq!(names(Role::LimitedGuest.repository_actions()), ["pull"]);
        for r in Role::ALL {
            assert_eq!(Role::from_id(r.id()), Some(r));
        }
        assert_eq!(Role::from_id(0), None);
        assert_eq!(Role::from_id(6), None);
    }

    #[test]
    fn standing_follows_harbors_matrix() {
        use ProjectOp as Op;
        let ops = [
            Op::Read,
            Op::Update,
            Op::Delete,
            Op::ReadMembers,
            Op::ManageMembers,
            Op::ReadRobots,
            Op::ManageRobots,
            Op::Pull,
            Op::Push,
            Op::DeleteArtifacts,
        ];
        let allowed = |s: Standing| -> Vec<Op> { ops.into_iter().filter(|o| s.may(*o)).collect() };
        assert_eq!(allowed(Standing::SystemAdmin), ops);
        assert_eq!(allowed(Standing::Member(Role::ProjectAdmin)), ops);
        assert_eq!(
            allowed(Standing::Member(Role::Maintainer)),
            [
                Op::Read,
                Op::ReadMembers,
                Op::ReadRobots,
                Op::Pull,
                Op::Push,
                Op::DeleteArtifacts
            ]
        );
        assert_eq!(
            allowed(Standing::Member(Role::Developer)),
            [
                Op::Read,
                Op::ReadMembers,
                Op::ReadRobots,
                Op::Pull,
                Op::Push
            ]
        );
        assert_eq!(
            allowed(Standing::Member(Role::Guest)),
            [Op::Read, Op::ReadMembers, Op::ReadRobots, Op::Pull]
        );
        assert_eq!(
            allowed(Standing::Member(Role::LimitedGuest)),
            [Op::Read, Op::Pull]
        );
        assert_eq!(
            allowed(Standing::Outsider { public: true }),
            [Op::Read, Op::Pull]
        );
        assert_eq!(allowed(Standing::Outsider { public: false }), []);
        assert_eq!(
            allowed(Standing::Robot(vec![Action::Pull, Action::Delete])),
            [Op::Read, Op::Pull, Op::DeleteArtifacts]
        );
        assert_eq!(allowed(Standing::Robot(vec![])), []);
    }

    fn names(actions: &[Action]) -> Vec<&'static str> {
        actions.iter().map(|a| a.as_str()).collect()
    }

    /// A grant as stored: unknown action names are dropped when read.
    fn grant(project_id: Option<i64>, actions: &[&str]) -> RobotGrant {
        RobotGrant {
            project_id,
            actions: actions.iter().filter_map(|a| a.parse().ok()).collect(),
        }
    }

    #[test]
    fn robot_grants_follow_project_ids_and_listings_follow_single_reads() {
        let grants = [
            grant(Some(1), &["pull"]),
            grant(Some(2), &[]),
            grant(Some(3), &["push", "pull"]),
            grant(Some(4), &["scan"]),
        ];
        assert_eq!(names(&robot_actions(&grants, 1)), ["pull"]);
        assert_eq!(names(&robot_actions(&grants, 3)), ["pull", "push"]);
        assert!(robot_actions(&grants, 2).is_empty());
        assert!(
            robot_actions(&grants, 4).is_empty(),
            "unknown actions grant nothing"
        );
        assert!(robot_actions(&grants, 5).is_empty());
        assert_eq!(robot_reach(&grants), RobotReach::Projects(vec![1, 3]));
        // The listing's rule and the single read's rule agree on every project.
        let RobotReach::Projects(listed) = robot_reach(&grants) else {
            panic!("not everywhere")
        };
        for id in 0..8 {
            assert_eq!(
                listed.contains(&id),
                Standing::Robot(robot_actions(&grants, id)).may(ProjectOp::Read),
                "project {id}"
            );
        }
        let everywhere = [grant(None, &["pull"]), grant(Some(2), &["delete"])];
        assert_eq!(robot_reach(&everywhere), RobotReach::Everywhere);
        assert_eq!(names(&robot_actions(&everywhere, 2)), ["pull", "delete"]);
        assert_eq!(names(&robot_actions(&everywhere, 9)), ["pull"]);
        assert_eq!(
            robot_reach(&[grant(None, &[])]),
            RobotReach::Projects(vec![]),
            "a grant everywhere with no actions reaches nothing"
        );
    }
}
