//! Projects and their members.

use berth_auth::Role;
use berth_core::ProjectName;
use berth_meta::{Member, MemberEntity, Project, ProjectDelete};

use crate::{Error, EventKind, Initiator, Registry};

/// Longest LDAP group DN accepted as a member.
pub const MAX_GROUP_DN_LEN: usize = 1024;

/// Checks an LDAP group's distinguished name given as a member.
pub fn check_group_dn(dn: &str) -> Result<(), Error> {
    if dn.trim().is_empty() {
        return Err(Error::Invalid(
            "the group needs a distinguished name".into(),
        ));
    }
    if dn.len() > MAX_GROUP_DN_LEN || !dn.contains('=') {
        return Err(Error::Invalid(format!(
            "ldap_group_dn {dn:?} is not a distinguished name"
        )));
    }
    Ok(())
}

impl Registry {
    /// Creates a project owned by `owner`; returns its id. Who may create projects is the
    /// caller's check (the `project_creation` setting).
    pub async fn create_project(
        &self,
        initiator: &Initiator,
        name: &ProjectName,
        public: bool,
        owner: Option<i64>,
    ) -> Result<i64, Error> {
        let kind = EventKind::ProjectCreated {
            name: name.to_string(),
        };
        let id = self
            .change(initiator, None, kind, |m| async move {
                m.create_project(name.as_str(), public, owner).await
            })
            .await?;
        let id = id.ok_or_else(|| Error::Conflict(format!("project {name} exists already")))?;
        tracing::info!(project = %name, public, "created a project");
        Ok(id)
    }

    /// Makes a project public or private.
    pub async fn set_project_public(
        &self,
        initiator: &Initiator,
        project: &Project,
        public: bool,
    ) -> Result<(), Error> {
        let kind = EventKind::ProjectUpdated {
            name: project.name.clone(),
        };
        let id = project.id;
        let changed = self
            .change(initiator, Some(id), kind, |m| async move {
                m.set_project_public(id, public).await
            })
            .await?;
        if !changed {
            return Err(Error::NotFound(format!(
                "project {} not found",
                project.name
            )));
        }
        tracing::info!(project = %project.name, public, "project visibility changed");
        Ok(())
    }

    /// Deletes a project, only once it has no repositories (refused, and recorded, while it
    /// has).
    pub async fn delete_project(
        &self,
        initiator: &Initiator,
        project: &Project,
    ) -> Result<(), Error> {
        let kind = EventKind::ProjectDeleted {
            name: project.name.clone(),
        };
        let id = project.id;
        let outcome = self
            .change(initiator, Some(id), kind.clone(), |m| async move {
                m.delete_project(id).await
            })
            .await?;
        match outcome {
            ProjectDelete::Deleted => {
                tracing::info!(project = %project.name, "deleted a project");
                Ok(())
            }
            ProjectDelete::Unknown => Err(Error::NotFound(format!(
                "project {} not found",
                project.name
            ))),
            ProjectDelete::NotEmpty(n) => {
                let why = format!(
                    "project {} still has {n} repositories; delete them first",
                    project.name
                );
                self.refused(initiator, Some(id), kind, why.clone()).await?;
                Err(Error::Precondition(why))
            }
        }
    }

    /// Adds a user or an LDAP group (`name` as shown) to a project with `role`; returns the
    /// membership's id.
    pub async fn add_member(
        &self,
        initiator: &Initiator,
        project: &Project,
        entity: &MemberEntity,
        name: &str,
        role: Role,
    ) -> Result<i64, Error> {
        if let MemberEntity::Group(dn) = entity {
            check_group_dn(dn)?;
        }
        let kind = EventKind::MemberAdded {
            project: project.name.clone(),
            member: name.to_owned(),
            role: role.to_string(),
        };
        let id = project.id;
        let added = self
            .change(initiator, Some(id), kind, |m| async move {
                m.add_member(id, entity, role.as_str()).await
            })
            .await?;
        let Some(member_id) = added else {
            return Err(Error::Conflict(format!(
                "{name} is a member of project {} already; change its role with PUT",
                project.name
            )));
        };
        tracing::info!(project = %project.name, member = %name, %role, "added a member");
        Ok(member_id)
    }

    /// Changes a member's role.
    pub async fn set_member_role(
        &self,
        initiator: &Initiator,
        project: &Project,
        member: &Member,
        role: Role,
    ) -> Result<(), Error> {
        let kind = EventKind::MemberUpdated {
            project: project.name.clone(),
            member: member.entity_name.clone(),
            role: role.to_string(),
        };
        let (id, member_id) = (project.id, member.id);
        let changed = self
            .change(initiator, Some(id), kind, |m| async move {
                m.update_member_role(id, member_id, role.as_str()).await
            })
            .await?;
        if !changed {
            return Err(Error::NotFound(format!("member {member_id} not found")));
        }
        tracing::info!(project = %project.name, member = %member.entity_name, %role, "member role changed");
        Ok(())
    }

    /// Removes a member.
    pub async fn remove_member(
        &self,
        initiator: &Initiator,
        project: &Project,
        member: &Member,
    ) -> Result<(), Error> {
        let kind = EventKind::MemberRemoved {
            project: project.name.clone(),
            member: member.entity_name.clone(),
        };
        let (id, member_id) = (project.id, member.id);
        let removed = self
            .change(initiator, Some(id), kind, |m| async move {
                m.delete_member(id, member_id).await
            })
            .await?;
        if !removed {
            return Err(Error::NotFound(format!("member {member_id} not found")));
        }
        tracing::info!(project = %project.name, member = %member.entity_name, "removed a member");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_dns() {
        assert!(check_group_dn("cn=devs,ou=groups,dc=example,dc=org").is_ok());
        for bad in [
            "",
            "  ",
            "devs",
            &format!("cn={}", "x".repeat(MAX_GROUP_DN_LEN)),
        ] {
            assert!(
                matches!(check_group_dn(bad), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
    }
}
