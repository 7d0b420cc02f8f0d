//! Robot accounts: their names, permissions, lifetimes and secrets.
//!
//! System robots (`robot$<name>`, created by administrators) may hold permissions in several
//! projects or all; project robots (`robot$<project>+<name>`) in their project only. The
//! secret is shown once, at creation and at each refresh; only its argon2id hash is kept.

use berth_auth::ROBOT_PREFIX;
use berth_core::Action;
use berth_core::name::check_simple_name;
use berth_meta::{NewRobot, Project, Robot, RobotGrant, RobotUpdate, RobotWrite};
use serde::Deserialize;

use crate::error::hash_secret;
use crate::{Error, EventKind, Initiator, Registry};

/// Lifetime of a robot created without a duration (Harbor's `robot_token_duration`).
pub const DEFAULT_DURATION_DAYS: i64 = 30;
/// Longest lifetime that is not "never".
pub const MAX_DURATION_DAYS: i64 = 36_500;
/// Longest robot name (without its prefix).
pub const MAX_ROBOT_NAME_LEN: usize = 128;

/// A permission as Harbor's API and the UI state it: a kind (`project`), a namespace (a
/// project name, or `*` for every project) and resource/action pairs.
#[derive(Debug, Clone, Deserialize)]
pub struct Permission {
    /// Only `project`.
    pub kind: String,
    /// A project name, or `*`.
    pub namespace: String,
    /// What is allowed.
    #[serde(default)]
    pub access: Vec<Access>,
}

/// One resource/action pair of a [`Permission`].
#[derive(Debug, Clone, Deserialize)]
pub struct Access {
    /// `repository`, `artifact` or `tag`.
    pub resource: String,
    /// `pull`, `push`, `delete`, `read`, `list` or `create`.
    pub action: String,
    /// Only `allow` (absent means allow).
    #[serde(default)]
    pub effect: Option<String>,
}

/// Registry actions asked for in one namespace (a project name, or `*`), before the name is
/// resolved to the project's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// A project name, or `*`.
    pub namespace: String,
    /// The actions.
    pub actions: Vec<Action>,
}

/// Harbor's permission list → registry actions per namespace. Read and list access are
/// implied by pull and accepted; anything Berth cannot enforce is refused rather than ignored.
pub fn requested_actions(list: Vec<Permission>) -> Result<Vec<Requested>, Error> {
    let mut out: Vec<Requested> = Vec::new();
    for p in list {
        if p.kind != "project" {
            return Err(Error::Invalid(format!(
                "permission kind {:?} is not supported: use kind \"project\"",
                p.kind
            )));
        }
        let mut actions: Vec<Action> = Vec::new();
        for a in p.access {
            if a.effect.as_deref().is_some_and(|e| e != "allow") {
                return Err(Error::Invalid(
                    "only \"allow\" permissions are supported".into(),
                ));
            }
            let action = match (a.resource.as_str(), a.action.as_str()) {
                ("repository" | "artifact" | "tag", "read" | "list") => continue,
                ("repository", "pull") => Action::Pull,
                ("repository", "push") | ("tag", "create") => Action::Push,
                ("repository" | "artifact" | "tag", "delete") => Action::Delete,
                (resource, action) => {
                    return Err(Error::Invalid(format!(
                        "robot permission {resource}:{action} is not supported; robots can have \
                         repository pull and push, and repository, artifact or tag delete"
                    )));
                }
            };
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
        if actions.contains(&Action::Push) && !actions.contains(&Action::Pull) {
            return Err(Error::Invalid(format!(
                "push needs pull as well in {} (clients check what the registry has before pushing)",
                p.namespace
            )));
        }
        match out.iter_mut().find(|x| x.namespace == p.namespace) {
            Some(existing) => {
                for a in actions {
                    if !existing.actions.contains(&a) {
                        existing.actions.push(a);
                    }
                }
            }
            None => out.push(Requested {
                namespace: p.namespace,
                actions,
            }),
        }
    }
    Ok(out)
}

/// The one project a project robot's permissions name (by name: `"4"` is the project named
/// 4, never the one with id 4).
pub fn single_project(requested: &[Requested]) -> Result<&Requested, Error> {
    let [only] = requested else {
        return Err(Error::Invalid(
            "a project robot has permissions in exactly one project".into(),
        ));
    };
    if only.namespace == "*" {
        return Err(Error::Invalid(
            "only system robots may have permissions in every project (*)".into(),
        ));
    }
    Ok(only)
}

/// The full name of a robot: `robot$<name>` (system) or `robot$<project>+<name>`.
pub fn robot_full_name(project: Option<&Project>, name: &str) -> String {
    match project {
        None => format!("{ROBOT_PREFIX}{name}"),
        Some(p) => format!("{ROBOT_PREFIX}{}+{name}", p.name),
    }
}

/// Where a robot lives.
#[derive(Debug, Clone, Copy)]
pub enum RobotScope<'a> {
    /// A system robot.
    System,
    /// A robot of this project.
    Project(&'a Project),
}

/// A robot account to create.
#[derive(Debug, Clone)]
pub struct RobotRequest {
    /// Its name, without prefix and project.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Days; -1: never expires; `None` or 0: [`DEFAULT_DURATION_DAYS`].
    pub duration: Option<i64>,
    /// Created disabled.
    pub disabled: bool,
    /// What it may do.
    pub permissions: Vec<Requested>,
}

/// A robot just created, with the secret that is shown only now.
#[derive(Debug, Clone)]
pub struct CreatedRobot {
    /// Row id.
    pub id: i64,
    /// Full name.
    pub name: String,
    /// The secret (not stored).
    pub secret: String,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Expiry (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
}

/// Changes to a robot account; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct RobotChange {
    /// Free text.
    pub description: Option<String>,
    /// Days from now; -1: never.
    pub duration: Option<i64>,
    /// Disabled.
    pub disabled: Option<bool>,
    /// What it may do (a project robot's stay in its project).
    pub permissions: Option<Vec<Requested>>,
}

fn grant(project_id: Option<i64>, actions: &[Action]) -> RobotGrant {
    RobotGrant {
        project_id,
        actions: actions.to_vec(),
    }
}

/// The answer to a robot write whose grant names a project deleted meanwhile.
fn gone(project_id: i64) -> Error {
    Error::Invalid(format!(
        "project {project_id} was deleted while the robot account was being written"
    ))
}

impl Registry {
    /// `duration` (days; -1 never; absent or 0: the default) → (days, expiry).
    pub fn robot_expiry(&self, duration: Option<i64>) -> Result<(i64, Option<i64>), Error> {
        let now = self.clock.unix_seconds();
        match duration.unwrap_or(0) {
            -1 => Ok((-1, None)),
            0 => Ok((
                DEFAULT_DURATION_DAYS,
                Some(now + DEFAULT_DURATION_DAYS * 86_400),
            )),
            d if (1..=MAX_DURATION_DAYS).contains(&d) => Ok((d, Some(now + d * 86_400))),
            d => Err(Error::Invalid(format!(
                "duration {d} is not a number of days from 1 to {MAX_DURATION_DAYS}, or -1 for never"
            ))),
        }
    }

    /// A system robot's grants: each namespace resolved, once, to its project's id (`*`:
    /// every project). Namespaces are project names, as in Harbor; a number is a name too.
    async fn system_grants(&self, requested: &[Requested]) -> Result<Vec<RobotGrant>, Error> {
        let mut grants = Vec::with_capacity(requested.len());
        for r in requested {
            let project_id = if r.namespace == "*" {
                None
            } else {
                match self.meta.project(&r.namespace).await? {
                    Some(project) => Some(project.id),
                    None => {
                        return Err(Error::Invalid(format!(
                            "project {} does not exist",
                            r.namespace
                        )));
                    }
                }
            };
            grants.push(grant(project_id, &r.actions));
        }
        Ok(grants)
    }

    /// A project robot's grant: in `project` only.
    fn project_grant(project: &Project, requested: &[Requested]) -> Result<RobotGrant, Error> {
        let only = single_project(requested)?;
        if only.namespace != project.name {
            return Err(Error::Invalid(format!(
                "a project robot keeps its permissions in its own project, not {}",
                only.namespace
            )));
        }
        Ok(grant(Some(project.id), &only.actions))
    }

    /// Creates a robot account and its secret. The caller checked that the initiator may
    /// manage robots at `scope`.
    pub async fn create_robot(
        &self,
        initiator: &Initiator,
        scope: RobotScope<'_>,
        request: RobotRequest,
    ) -> Result<CreatedRobot, Error> {
        check_simple_name("robot name", &request.name, MAX_ROBOT_NAME_LEN)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let (project, grants) = match scope {
            RobotScope::System => (None, self.system_grants(&request.permissions).await?),
            RobotScope::Project(p) => {
                (Some(p), vec![Self::project_grant(p, &request.permissions)?])
            }
        };
        let full_name = robot_full_name(project, &request.name);
        let (duration_days, expires_at) = self.robot_expiry(request.duration)?;
        let secret = berth_auth::password::generate_secret();
        let hash = hash_secret(secret.clone()).await?;
        let project_id = project.map(|p| p.id);
        let robot = NewRobot {
            name: &full_name,
            secret_hash: &hash,
            grants: &grants,
            description: &request.description,
            project_id,
            duration_days,
            expires_at,
            disabled: request.disabled,
        };
        let kind = EventKind::RobotCreated {
            name: full_name.clone(),
        };
        let robot = &robot;
        let written = self
            .change(initiator, project_id, kind, |m| async move {
                m.create_robot(robot).await
            })
            .await?;
        let id = match written {
            RobotWrite::Done(id) => id,
            RobotWrite::Conflict => {
                return Err(Error::Conflict(format!(
                    "robot account {full_name} exists already"
                )));
            }
            RobotWrite::UnknownProject(project) => return Err(gone(project)),
        };
        tracing::info!(robot = %full_name, "created a robot account");
        Ok(CreatedRobot {
            id,
            name: full_name,
            secret,
            created_at: self.clock.unix_seconds(),
            expires_at,
        })
    }

    /// Changes a robot's description, lifetime (counted from now), disabled flag and
    /// permissions.
    pub async fn update_robot(
        &self,
        initiator: &Initiator,
        robot: &Robot,
        change: RobotChange,
    ) -> Result<(), Error> {
        let grants = match &change.permissions {
            Some(requested) => match robot.project_id {
                Some(own) => {
                    let only = single_project(requested)?;
                    let named = self.meta.project(&only.namespace).await?;
                    match named {
                        Some(p) if p.id == own => vec![Self::project_grant(&p, requested)?],
                        _ => {
                            return Err(Error::Invalid(format!(
                                "a project robot keeps its permissions in its own project, not {}",
                                only.namespace
                            )));
                        }
                    }
                }
                None => self.system_grants(requested).await?,
            },
            None => robot.grants.clone(),
        };
        let (duration_days, expires_at) = match change.duration {
            Some(d) => self.robot_expiry(Some(d))?,
            None => (robot.duration_days, robot.expires_at),
        };
        let update = RobotUpdate {
            description: change.description.as_deref().unwrap_or(&robot.description),
            grants: &grants,
            duration_days,
            expires_at,
            disabled: change.disabled.unwrap_or(robot.disabled),
        };
        let kind = EventKind::RobotUpdated {
            name: robot.name.clone(),
            what: "settings".into(),
        };
        let (id, update) = (robot.id, &update);
        let written = self
            .change(initiator, robot.project_id, kind, |m| async move {
                m.update_robot(id, update).await
            })
            .await?;
        match written {
            RobotWrite::Done(_) => {}
            RobotWrite::Conflict => {
                return Err(Error::NotFound(format!(
                    "robot account {} not found",
                    robot.id
                )));
            }
            RobotWrite::UnknownProject(project) => return Err(gone(project)),
        }
        tracing::info!(robot = %robot.name, "changed a robot account");
        Ok(())
    }

    /// Gives a robot a new secret: `given` if it meets the password policy, else a generated
    /// one. Returns it (shown once). The old secret stops working at once, on every node.
    pub async fn refresh_robot_secret(
        &self,
        initiator: &Initiator,
        robot: &Robot,
        given: Option<String>,
    ) -> Result<String, Error> {
        let secret = match given.filter(|s| !s.is_empty()) {
            Some(given) => {
                berth_auth::password::check_strength(&given).map_err(Error::Invalid)?;
                given
            }
            None => berth_auth::password::generate_secret(),
        };
        let hash = hash_secret(secret.clone()).await?;
        let kind = EventKind::RobotUpdated {
            name: robot.name.clone(),
            what: "secret".into(),
        };
        let id = robot.id;
        let changed = self
            .change(initiator, robot.project_id, kind, |m| async move {
                m.set_robot_secret(id, &hash).await
            })
            .await?;
        if !changed {
            return Err(Error::NotFound(format!("robot account {id} not found")));
        }
        tracing::info!(robot = %robot.name, "refreshed a robot secret");
        Ok(secret)
    }

    /// Deletes a robot account.
    pub async fn delete_robot(&self, initiator: &Initiator, robot: &Robot) -> Result<(), Error> {
        let kind = EventKind::RobotDeleted {
            name: robot.name.clone(),
        };
        let id = robot.id;
        let deleted = self
            .change(initiator, robot.project_id, kind, |m| async move {
                m.delete_robot(id).await
            })
            .await?;
        if !deleted {
            return Err(Error::NotFound(format!("robot account {id} not found")));
        }
        tracing::info!(robot = %robot.name, "deleted a robot account");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(resource: &str, action: &str) -> Access {
        Access {
            resource: resource.into(),
            action: action.into(),
            effect: None,
        }
    }

    fn perm(ns: &str, access: Vec<Access>) -> Permission {
        Permission {
            kind: "project".into(),
            namespace: ns.into(),
            access,
        }
    }

    #[test]
    fn harbor_permissions_map_to_registry_actions() {
        let p = requested_actions(vec![
            perm(
                "a",
                vec![
                    access("repository", "pull"),
                    access("repository", "push"),
                    access("artifact", "list"),
                    access("artifact", "delete"),
                    access("tag", "delete"),
                ],
            ),
            perm("a", vec![access("repository", "pull")]),
            perm("b", vec![access("repository", "pull")]),
        ])
        .unwrap();
        assert_eq!(
            p,
            [
                Requested {
                    namespace: "a".into(),
                    actions: vec![Action::Pull, Action::Push, Action::Delete]
                },
                Requested {
                    namespace: "b".into(),
                    actions: vec![Action::Pull]
                }
            ]
        );
        for bad in [
            vec![perm("a", vec![access("repository", "push")])],
            vec![perm("a", vec![access("scan", "create")])],
            vec![Permission {
                kind: "system".into(),
                namespace: "/".into(),
                access: vec![],
            }],
            vec![perm(
                "a",
                vec![Access {
                    effect: Some("deny".into()),
                    ..access("repository", "pull")
                }],
            )],
        ] {
            assert!(matches!(requested_actions(bad), Err(Error::Invalid(_))));
        }
    }

    #[test]
    fn one_project_per_project_robot() {
        let r = |ns: &str| Requested {
            namespace: ns.into(),
            actions: vec![Action::Pull],
        };
        assert_eq!(single_project(&[r("a")]).unwrap().namespace, "a");
        assert!(single_project(&[]).is_err());
        assert!(single_project(&[r("a"), r("b")]).is_err());
        assert!(single_project(&[r("*")]).is_err());
    }
}
