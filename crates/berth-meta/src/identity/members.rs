//! Project members: users and directory groups with a role in a project.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::identity::{Bind, Conditions, Page, Paged};
use crate::store::{MetadataStore, text};

/// A member of a project: a user or a directory group, with a role.
#[derive(Debug, Clone)]
pub struct Member {
    /// Member id (unique across projects).
    pub id: i64,
    /// The project.
    pub project_id: i64,
    /// A user or a group.
    pub entity: MemberEntity,
    /// User name or group DN.
    pub entity_name: String,
    /// Role name (`projectAdmin`, `maintainer`, …).
    pub role: String,
}

/// Who a member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEntity {
    /// A user, by id.
    User(i64),
    /// A directory group, by DN.
    Group(String),
}

impl MemberEntity {
    fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Group(_) => "group",
        }
    }

    fn principal(&self) -> String {
        match self {
            Self::User(id) => id.to_string(),
            Self::Group(dn) => dn.clone(),
        }
    }
}

impl MetadataStore {
    /// Makes a user a member of a project with `role` (replacing any role it had).
    pub async fn set_user_role(
        &self,
        project_id: i64,
        user_id: i64,
        role: &str,
    ) -> Result<(), MetaError> {
        self.set_member_role(project_id, &MemberEntity::User(user_id), role)
            .await
    }

    /// Makes a directory group (by DN) a member of a project with `role`.
    pub async fn set_group_role(
        &self,
        project_id: i64,
        group_dn: &str,
        role: &str,
    ) -> Result<(), MetaError> {
        self.set_member_role(project_id, &MemberEntity::Group(group_dn.to_owned()), role)
            .await
    }

    async fn set_member_role(
        &self,
        project_id: i64,
        entity: &MemberEntity,
        role: &str,
    ) -> Result<(), MetaError> {
        if self.add_member(project_id, entity, role).await?.is_none() {
            sqlx::query(
                "UPDATE project_members SET role = ?, updated_at = ? \
                 WHERE project_id = ? AND kind = ? AND principal = ?",
            )
            .bind(role)
            .bind(self.now())
            .bind(project_id)
            .bind(entity.kind())
            .bind(entity.principal())
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Adds a member with `role`. `None` if it is a member already.
    pub async fn add_member(
        &self,
        project_id: i64,
        entity: &MemberEntity,
        role: &str,
    ) -> Result<Option<i64>, MetaError> {
        let now = self.now();
        let n = self.execute_recorded(sqlx::query(&self.dialect.insert_ignore(
            "project_members (project_id, kind, principal, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(project_id)
        .bind(entity.kind())
        .bind(entity.principal())
        .bind(role)
        .bind(now)
        .bind(now)
        ).await?;
        if n == 0 {
            return Ok(None);
        }
        Ok(sqlx::query_scalar(
            "SELECT id FROM project_members WHERE project_id = ? AND kind = ? AND principal = ?",
        )
        .bind(project_id)
        .bind(entity.kind())
        .bind(entity.principal())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A project's members a page at a time (users by name, then groups by DN), optionally
    /// only those whose name contains `name`.
    pub async fn list_members(
        &self,
        project_id: i64,
        name: Option<&str>,
        page: Page,
    ) -> Result<Paged<Member>, MetaError> {
        let mut c = Conditions::default();
        c.push("m.project_id = ?", [Bind::Int(project_id)]);
        if let Some(part) = name {
            c.push(
                "INSTR(COALESCE(u.username, m.principal), ?) > 0",
                [Bind::Text(part.to_owned())],
            );
        }
        let (rows, total) = c
            .page(
                &self.pool,
                MEMBER_SELECT,
                MEMBER_FROM,
                "ORDER BY m.kind DESC, COALESCE(u.username, m.principal)",
                page,
            )
            .await?;
        Ok(Paged {
            items: rows.iter().map(member_from_row).collect::<Result<_, _>>()?,
            total,
        })
    }

    /// One member of a project.
    pub async fn member(
        &self,
        project_id: i64,
        member_id: i64,
    ) -> Result<Option<Member>, MetaError> {
        let sql = format!("{MEMBER_SELECT} {MEMBER_FROM} WHERE m.project_id = ? AND m.id = ?");
        let row = sqlx::query(&sql)
            .bind(project_id)
            .bind(member_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(member_from_row).transpose()
    }

    /// Changes a member's role. Returns whether the member exists.
    pub async fn update_member_role(
        &self,
        project_id: i64,
        member_id: i64,
        role: &str,
    ) -> Result<bool, MetaError> {
        let n = self.execute_recorded(sqlx::query(
            "UPDATE project_members SET role = ?, updated_at = ? WHERE project_id = ? AND id = ?",
        )
        .bind(role)
        .bind(self.now())
        .bind(project_id)
        .bind(member_id)
        ).await?;
        Ok(n == 1)
    }

    /// Removes a member. Returns whether it existed.
    pub async fn delete_member(&self, project_id: i64, member_id: i64) -> Result<bool, MetaError> {
        let n = self
            .execute_recorded(
                sqlx::query("DELETE FROM project_members WHERE project_id = ? AND id = ?")
                    .bind(project_id)
                    .bind(member_id),
            )
            .await?;
        Ok(n == 1)
    }

    /// The directory groups that are members of a project, with their roles.
    pub async fn group_roles(&self, project_id: i64) -> Result<Vec<(String, String)>, MetaError> {
        let rows = sqlx::query(
            "SELECT principal, role FROM project_members WHERE project_id = ? AND kind = 'group'",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((text(r, 0)?.unwrap_or_default(), r.try_get(1)?)))
            .collect()
    }

    /// The role a user holds in a project, if a member.
    pub async fn user_role(
        &self,
        project_id: i64,
        user_id: i64,
    ) -> Result<Option<String>, MetaError> {
        Ok(sqlx::query_scalar("SELECT role FROM project_members WHERE project_id = ? AND kind = 'user' AND principal = ?")
            .bind(project_id)
            .bind(user_id.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }
}

const MEMBER_SELECT: &str = "SELECT m.id, m.project_id, m.kind, m.principal, m.role, u.username";
const MEMBER_FROM: &str = "FROM project_members m \
     LEFT JOIN users u ON m.kind = 'user' AND u.id = m.principal";

fn member_from_row(r: &AnyRow) -> Result<Member, MetaError> {
    let kind: String = r.try_get(2)?;
    let principal: String = r.try_get(3)?;
    let username: Option<String> = r.try_get(5)?;
    let (entity, entity_name) = if kind == "user" {
        (
            MemberEntity::User(principal.parse().unwrap_or_default()),
            username.unwrap_or_default(),
        )
    } else {
        (MemberEntity::Group(principal.clone()), principal)
    };
    Ok(Member {
        id: r.try_get(0)?,
        project_id: r.try_get(1)?,
        entity,
        entity_name,
        role: r.try_get(4)?,
    })
}
