//! Projects: creating, looking up, listing (per caller scope), visibility, and deleting a
//! project with everything it owns; which repositories belong to a project.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::identity::{Bind, Conditions, Page, Paged, bind};
use crate::store::{MetadataStore, text};

/// A project: the first path component of its repositories' names.
#[derive(Debug, Clone)]
pub struct Project {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Anyone (anonymous included) may pull from a public project.
    pub public: bool,
    /// The user who created it, if known.
    pub owner_id: Option<i64>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last changed (Unix seconds).
    pub updated_at: i64,
}

const PROJECT_COLUMNS: &str = "p.id, p.name, p.public, p.owner_id, p.created_at, p.updated_at";

fn project_from_row(r: &AnyRow) -> Result<Project, MetaError> {
    Ok(Project {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        public: r.try_get::<i64, _>(2)? != 0,
        owner_id: r.try_get(3)?,
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
    })
}

/// Which projects a listing may show.
#[derive(Debug, Clone, Copy)]
pub enum ProjectScope<'a> {
    /// Every project (system administrators).
    All,
    /// Public projects, and those where the user or one of its directory groups is a member.
    Member {
        /// The user.
        user_id: i64,
        /// DNs of its directory groups.
        groups: &'a [String],
    },
    /// Public projects and these, by id (robot accounts: the projects where they may do
    /// something).
    Ids(&'a [i64]),
    /// Public projects only (anonymous callers).
    Public,
}

/// A project listing's filters.
#[derive(Debug, Clone, Copy)]
pub struct ProjectFilter<'a> {
    /// Which projects the caller may see.
    pub scope: ProjectScope<'a>,
    /// Only names containing this.
    pub name: Option<&'a str>,
    /// Only public (or only private) projects.
    pub public: Option<bool>,
}

/// Outcome of deleting a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectDelete {
    /// Deleted, with its members and robot accounts.
    Deleted,
    /// No such project.
    Unknown,
    /// It still has repositories with content (this many).
    NotEmpty(u64),
}

impl MetadataStore {
    /// Creates a project, making `owner` (if any) its project admin. `None` if the name is taken.
    pub async fn create_project(
        &self,
        name: &str,
        public: bool,
        owner: Option<i64>,
    ) -> Result<Option<i64>, MetaError> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(&self.dialect.insert_ignore(
            "projects (name, public, owner_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(name)
        .bind(i64::from(public))
        .bind(owner)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let id: i64 = sqlx::query_scalar("SELECT id FROM projects WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if let Some(owner) = owner {
            sqlx::query(
                "INSERT INTO project_members (project_id, kind, principal, role, created_at, updated_at) \
                 VALUES (?, 'user', ?, 'projectAdmin', ?, ?)",
            )
            .bind(id)
            .bind(owner.to_string())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        self.commit_in_project(tx, Some(id)).await?;
        Ok(Some(id))
    }

    /// A project by name.
    pub async fn project(&self, name: &str) -> Result<Option<Project>, MetaError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.name = ?");
        self.fetch_by(&sql, Bind::Text(name.to_owned()), project_from_row)
            .await
    }

    /// The ids of the projects named in `names` that exist (one query).
    pub async fn project_ids(&self, names: &[String]) -> Result<Vec<(String, i64)>, MetaError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT name, id FROM projects WHERE name IN ({})",
            vec!["?"; names.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for n in names {
            q = q.bind(n.as_str());
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((text(r, 0)?.unwrap_or_default(), r.try_get(1)?)))
            .collect()
    }

    /// A project by id.
    pub async fn project_by_id(&self, id: i64) -> Result<Option<Project>, MetaError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.id = ?");
        self.fetch_by(&sql, Bind::Int(id), project_from_row).await
    }

    /// Projects a page at a time, by name.
    pub async fn list_projects(
        &self,
        filter: &ProjectFilter<'_>,
        page: Page,
    ) -> Result<Paged<Project>, MetaError> {
        let mut c = Conditions::default();
        match filter.scope {
            ProjectScope::All => {}
            ProjectScope::Public => c.push("p.public = 1", []),
            ProjectScope::Ids(ids) => {
                let marks = vec!["?"; ids.len()].join(", ");
                let sql = if ids.is_empty() {
                    "p.public = 1".to_owned()
                } else {
                    format!("(p.public = 1 OR p.id IN ({marks}))")
                };
                c.push(sql, ids.iter().map(|id| Bind::Int(*id)));
            }
            ProjectScope::Member { user_id, groups } => {
                let mut sql = String::from(
                    "(p.public = 1 OR p.id IN (SELECT project_id FROM project_members \
                     WHERE (kind = 'user' AND principal = ?)",
                );
                let mut binds = vec![Bind::Text(user_id.to_string())];
                if !groups.is_empty() {
                    let marks = vec!["?"; groups.len()].join(", ");
                    sql.push_str(&format!(
                        " OR (kind = 'group' AND LOWER(principal) IN ({marks}))"
                    ));
                    binds.extend(groups.iter().map(|g| Bind::Text(g.to_ascii_lowercase())));
                }
                sql.push_str("))");
                c.push(sql, binds);
            }
        }
        if let Some(part) = filter.name {
            c.push("INSTR(p.name, ?) > 0", [Bind::Text(part.to_owned())]);
        }
        if let Some(public) = filter.public {
            c.push("p.public = ?", [Bind::Int(i64::from(public))]);
        }
        let (rows, total) = c
            .page(
                &self.pool,
                &format!("SELECT {PROJECT_COLUMNS}"),
                "FROM projects p",
                "ORDER BY p.name",
                page,
            )
            .await?;
        Ok(Paged {
            items: rows
                .iter()
                .map(project_from_row)
                .collect::<Result<_, _>>()?,
            total,
        })
    }

    /// Makes a project public or private. Returns whether it exists.
    pub async fn set_project_public(&self, id: i64, public: bool) -> Result<bool, MetaError> {
        let n = self
            .execute_recorded(
                sqlx::query("UPDATE projects SET public = ?, updated_at = ? WHERE id = ?")
                    .bind(i64::from(public))
                    .bind(self.now())
                    .bind(id),
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes a project with everything it owns, unless it still has repositories with
    /// content: its members, its robot accounts, every grant of other robots on it, and its
    /// empty repositories (names and blob links only). The repositories counted and removed
    /// are those `project_repositories` assigns to it, the rule permissions follow.
    pub async fn delete_project(&self, id: i64) -> Result<ProjectDelete, MetaError> {
        let mut tx = self.pool.begin().await?;
        // A write first, so that the transaction holds the write lock from the start.
        let n = sqlx::query("UPDATE projects SET updated_at = ? WHERE id = ?")
            .bind(self.now())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(ProjectDelete::Unknown);
        }
        let name: String = sqlx::query_scalar("SELECT name FROM projects WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        // `name` unqualified: the repositories' column, in the outer queries and the subqueries
        // alike; `repository` is the upload sessions' column.
        let (owned, binds) = project_repositories("name", &name);
        let in_use_sql = format!(
            "SELECT COUNT(*) FROM repositories r WHERE {owned} \
             AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)"
        );
        let in_use: i64 = binds
            .iter()
            .fold(sqlx::query(&in_use_sql), bind)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if in_use > 0 {
            return Ok(ProjectDelete::NotEmpty(u64::try_from(in_use).unwrap_or(0)));
        }
        let names_sql = format!("SELECT name FROM repositories WHERE {owned}");
        let repositories: Vec<String> = binds
            .iter()
            .fold(sqlx::query(&names_sql), bind)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        // Upload sessions into the project end with it (their bytes go with the next purge of
        // abandoned uploads): none can be finished in a project re-created under the name.
        let (uploads, upload_binds) = project_repositories("repository", &name);
        let owned_ids = format!("SELECT id FROM repositories WHERE {owned}");
        for (sql, binds) in [
            (
                format!("DELETE FROM repository_blobs WHERE repository_id IN ({owned_ids})"),
                &binds,
            ),
            (
                format!("DELETE FROM tags WHERE repository_id IN ({owned_ids})"),
                &binds,
            ),
            (format!("DELETE FROM repositories WHERE {owned}"), &binds),
            (
                format!("DELETE FROM uploads WHERE {uploads}"),
                &upload_binds,
            ),
        ] {
            binds
                .iter()
                .fold(sqlx::query(&sql), bind)
                .execute(&mut *tx)
                .await?;
        }
        for sql in [
            "DELETE FROM project_members WHERE project_id = ?",
            "DELETE FROM robot_permissions WHERE project_id = ?",
            "DELETE FROM robot_permissions WHERE robot_id IN (SELECT id FROM robots WHERE project_id = ?)",
            "DELETE FROM robots WHERE project_id = ?",
            "DELETE FROM projects WHERE id = ?",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        self.commit(tx).await?;
        for repository in &repositories {
            self.lookups.invalidate(repository).await;
        }
        Ok(ProjectDelete::Deleted)
    }
}

/// The repositories of project `name`, as a condition on `column` with its values: the
/// repository named as the project itself and every `name/…` (by range, `'0'` following `'/'`,
/// without `LIKE` and its wildcards: `_` is valid in names). The same rule as
/// `berth_core::name::project_of`, which permissions follow.
pub(crate) fn project_repositories(column: &str, name: &str) -> (String, [Bind; 3]) {
    (
        format!("({column} = ? OR ({column} > ? AND {column} < ?))"),
        [
            Bind::Text(name.to_owned()),
            Bind::Text(format!("{name}/")),
            Bind::Text(format!("{name}0")),
        ],
    )
}
