//! Users, projects, project members, robot accounts and token signing keys.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::store::{MetadataStore, now, text};

/// A page of a listing: skip `offset` rows, return at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows skipped.
    pub offset: u64,
    /// Most rows returned.
    pub limit: u64,
}

/// One page of a listing and how many rows the whole listing has.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    /// The rows of the page.
    pub items: Vec<T>,
    /// Rows in the whole listing.
    pub total: u64,
}

/// A value bound to a statement built at run time.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Int(i64),
    Text(String),
}

/// A `WHERE` clause under construction: conditions joined by `AND`, and their values.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    sql: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    pub(crate) fn push(&mut self, sql: impl Into<String>, binds: impl IntoIterator<Item = Bind>) {
        self.sql.push(sql.into());
        self.binds.extend(binds);
    }

    pub(crate) fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.sql.join(" AND "))
        }
    }

    /// Runs `select … {where} {tail}` for a page and `SELECT COUNT(*) {from} {where}` for the total.
    pub(crate) async fn page(
        &self,
        pool: &sqlx::AnyPool,
        select: &str,
        from: &str,
        tail: &str,
        page: Page,
    ) -> Result<(Vec<AnyRow>, u64), MetaError> {
        let clause = self.clause();
        let sql = format!("{select} {from}{clause} {tail} LIMIT ? OFFSET ?");
        let mut query = sqlx::query(&sql);
        for b in &self.binds {
            query = bind(query, b);
        }
        let rows = query
            .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
        let count = format!("SELECT COUNT(*) {from}{clause}");
        let mut query = sqlx::query(&count);
        for b in &self.binds {
            query = bind(query, b);
        }
        let total: i64 = query.fetch_one(pool).await?.try_get(0)?;
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }
}

impl MetadataStore {
    /// The row `sql` selects with `key` bound, mapped by `map`.
    async fn fetch_by<T>(
        &self,
        sql: &str,
        key: Bind,
        map: fn(&AnyRow) -> Result<T, MetaError>,
    ) -> Result<Option<T>, MetaError> {
        let row = bind(sqlx::query(sql), &key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(map).transpose()
    }
}

pub(crate) fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    value: &Bind,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match value {
        Bind::Int(v) => query.bind(*v),
        Bind::Text(v) => query.bind(v.clone()),
    }
}

/// A local user account (or a directory user once onboarded: no password hash).
#[derive(Debug, Clone)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// argon2id PHC hash; `None` for accounts that cannot log in with a password.
    pub password_hash: Option<String>,
    /// System administrator.
    pub sysadmin: bool,
    /// Disabled accounts cannot authenticate.
    pub disabled: bool,
    /// E-mail address.
    pub email: Option<String>,
    /// Full name.
    pub realname: Option<String>,
    /// Free text.
    pub comment: Option<String>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last changed (Unix seconds).
    pub updated_at: i64,
}

const USER_COLUMNS: &str = "id, username, password_hash, sysadmin, disabled, email, realname, comment, created_at, updated_at";

fn user_from_row(r: &AnyRow) -> Result<User, MetaError> {
    Ok(User {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        password_hash: r.try_get(2)?,
        sysadmin: r.try_get::<i64, _>(3)? != 0,
        disabled: r.try_get::<i64, _>(4)? != 0,
        email: r.try_get(5)?,
        realname: r.try_get(6)?,
        comment: text(r, 7)?,
        created_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
    })
}

/// A user's profile fields.
#[derive(Debug, Clone, Default)]
pub struct UserProfile {
    /// E-mail address.
    pub email: Option<String>,
    /// Full name.
    pub realname: Option<String>,
    /// Free text.
    pub comment: Option<String>,
}

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

/// A robot account.
#[derive(Debug, Clone)]
pub struct Robot {
    /// Row id.
    pub id: i64,
    /// Full name, `robot$…`.
    pub name: String,
    /// argon2id hash of the secret.
    pub secret_hash: String,
    /// What it may do, per project id.
    pub grants: Vec<RobotGrant>,
    /// Expiry (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
    /// Disabled robots cannot authenticate.
    pub disabled: bool,
    /// Free text.
    pub description: String,
    /// The project of a project-level robot; `None` for system robots.
    pub project_id: Option<i64>,
    /// Lifetime asked for, in days; -1: never expires.
    pub duration_days: i64,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last changed (Unix seconds).
    pub updated_at: i64,
}

/// A robot's registry actions in one project, by id, or in every project. Grants point at
/// project ids, never names: a grant dies with its project, and a project re-created under the
/// same name inherits none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotGrant {
    /// The project; `None`: every project.
    pub project_id: Option<i64>,
    /// Registry actions: `pull`, `push`, `delete`.
    pub actions: Vec<String>,
}

const ROBOT_COLUMNS: &str = "id, name, secret_hash, expires_at, disabled, description, project_id, duration_days, created_at, updated_at";

fn robot_from_row(r: &AnyRow) -> Result<Robot, MetaError> {
    Ok(Robot {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        secret_hash: r.try_get(2)?,
        grants: Vec::new(),
        expires_at: r.try_get(3)?,
        disabled: r.try_get::<i64, _>(4)? != 0,
        description: text(r, 5)?.unwrap_or_default(),
        project_id: r.try_get(6)?,
        duration_days: r.try_get(7)?,
        created_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
    })
}

/// A robot account to create.
#[derive(Debug, Clone)]
pub struct NewRobot<'a> {
    /// Full name, `robot$…`.
    pub name: &'a str,
    /// argon2id hash of the secret.
    pub secret_hash: &'a str,
    /// What it may do.
    pub grants: &'a [RobotGrant],
    /// Free text.
    pub description: &'a str,
    /// The project of a project-level robot.
    pub project_id: Option<i64>,
    /// Lifetime in days; -1: never.
    pub duration_days: i64,
    /// Expiry (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
    /// Created disabled.
    pub disabled: bool,
}

/// The changeable fields of a robot account.
#[derive(Debug, Clone)]
pub struct RobotUpdate<'a> {
    /// Free text.
    pub description: &'a str,
    /// What it may do.
    pub grants: &'a [RobotGrant],
    /// Lifetime in days; -1: never.
    pub duration_days: i64,
    /// Expiry (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
    /// Disabled.
    pub disabled: bool,
}

/// Outcome of creating or changing a robot account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RobotWrite {
    /// Done; the robot's id.
    Done(i64),
    /// Another robot has the name (create), or the robot is gone (update).
    Conflict,
    /// A grant names a project that does not exist (any more).
    UnknownProject(i64),
}

/// A token signing key as stored.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// libtrust key id.
    pub kid: String,
    /// PKCS#8 PEM private key.
    pub private_pem: String,
    /// PEM certificate.
    pub cert_pem: String,
    /// When it starts signing (Unix seconds).
    pub activates_at: i64,
    /// When it stops verifying (Unix seconds); `None`: not scheduled.
    pub retires_at: Option<i64>,
}

impl MetadataStore {
    // ---- users ------------------------------------------------------------------------------

    /// Creates a user. `None` if the name is taken.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        sysadmin: bool,
    ) -> Result<Option<i64>, MetaError> {
        self.create_user_with_profile(username, password_hash, sysadmin, &UserProfile::default())
            .await
    }

    /// Creates a user with profile fields. `None` if the name is taken.
    pub async fn create_user_with_profile(
        &self,
        username: &str,
        password_hash: Option<&str>,
        sysadmin: bool,
        profile: &UserProfile,
    ) -> Result<Option<i64>, MetaError> {
        let now = now();
        let n = self.execute_recorded(sqlx::query(&self.dialect.insert_ignore(
            "users (username, password_hash, sysadmin, disabled, email, realname, comment, created_at, updated_at) \
             VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?)",
        ))
        .bind(username)
        .bind(password_hash)
        .bind(i64::from(sysadmin))
        .bind(profile.email.as_deref())
        .bind(profile.realname.as_deref())
        .bind(profile.comment.as_deref())
        .bind(now)
        .bind(now)
        ).await?;
        if n == 0 {
            return Ok(None);
        }
        Ok(self.user(username).await?.map(|u| u.id))
    }

    /// A user by name.
    pub async fn user(&self, username: &str) -> Result<Option<User>, MetaError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?");
        self.fetch_by(&sql, Bind::Text(username.to_owned()), user_from_row)
            .await
    }

    /// A user by id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, MetaError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        self.fetch_by(&sql, Bind::Int(id), user_from_row).await
    }

    /// Users by name, a page at a time: names equal to `exact`, or containing `fragment`.
    pub async fn list_users(
        &self,
        exact: Option<&str>,
        fragment: Option<&str>,
        page: Page,
    ) -> Result<Paged<User>, MetaError> {
        let mut c = Conditions::default();
        if let Some(name) = exact {
            c.push("username = ?", [Bind::Text(name.to_owned())]);
        }
        if let Some(part) = fragment {
            c.push("INSTR(username, ?) > 0", [Bind::Text(part.to_owned())]);
        }
        let (rows, total) = c
            .page(
                &self.pool,
                &format!("SELECT {USER_COLUMNS}"),
                "FROM users",
                "ORDER BY username",
                page,
            )
            .await?;
        Ok(Paged {
            items: rows.iter().map(user_from_row).collect::<Result<_, _>>()?,
            total,
        })
    }

    /// Names of the system administrators, sorted.
    pub async fn admins(&self) -> Result<Vec<String>, MetaError> {
        Ok(
            sqlx::query_scalar("SELECT username FROM users WHERE sysadmin = 1 ORDER BY username")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Number of users.
    pub async fn count_users(&self) -> Result<i64, MetaError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Replaces a user's password hash. Returns whether the user exists.
    pub async fn set_password(&self, id: i64, password_hash: &str) -> Result<bool, MetaError> {
        let n = self
            .execute_recorded(
                sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
                    .bind(password_hash)
                    .bind(now())
                    .bind(id),
            )
            .await?;
        Ok(n == 1)
    }

    /// Replaces a user's profile fields. Returns whether the user exists.
    pub async fn set_user_profile(
        &self,
        id: i64,
        profile: &UserProfile,
    ) -> Result<bool, MetaError> {
        let n = self.execute_recorded(sqlx::query(
            "UPDATE users SET email = ?, realname = ?, comment = ?, updated_at = ? WHERE id = ?",
        )
        .bind(profile.email.as_deref())
        .bind(profile.realname.as_deref())
        .bind(profile.comment.as_deref())
        .bind(now())
        .bind(id)
        ).await?;
        Ok(n == 1)
    }

    /// Grants or withdraws system administration. Returns whether the user exists.
    pub async fn set_sysadmin(&self, id: i64, sysadmin: bool) -> Result<bool, MetaError> {
        self.set_user_flag("sysadmin", id, sysadmin).await
    }

    /// Disables or enables a user. Returns whether the user exists.
    pub async fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<bool, MetaError> {
        self.set_user_flag("disabled", id, disabled).await
    }

    async fn set_user_flag(&self, column: &str, id: i64, value: bool) -> Result<bool, MetaError> {
        let sql = format!("UPDATE users SET {column} = ?, updated_at = ? WHERE id = ?");
        let n = self
            .execute_recorded(
                sqlx::query(&sql)
                    .bind(i64::from(value))
                    .bind(now())
                    .bind(id),
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes a user and its project memberships. Returns whether it existed.
    pub async fn delete_user(&self, id: i64) -> Result<bool, MetaError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM project_members WHERE kind = 'user' AND principal = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE projects SET owner_id = NULL WHERE owner_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.commit(tx).await?;
        Ok(n == 1)
    }

    // ---- projects ---------------------------------------------------------------------------

    /// Creates a project, making `owner` (if any) its project admin. `None` if the name is taken.
    pub async fn create_project(
        &self,
        name: &str,
        public: bool,
        owner: Option<i64>,
    ) -> Result<Option<i64>, MetaError> {
        let now = now();
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
                    .bind(now())
                    .bind(id),
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes a project with everything it owns, unless it still has repositories with
    /// content: its members, its robot accounts, every grant of other robots on it, and its
    /// empty repositories (names and blob links only). The repositories counted and removed
    /// are those [`project_repositories`] assigns to it, the rule permissions follow.
    pub async fn delete_project(&self, id: i64) -> Result<ProjectDelete, MetaError> {
        let mut tx = self.pool.begin().await?;
        // A write first, so that the transaction holds the write lock from the start.
        let n = sqlx::query("UPDATE projects SET updated_at = ? WHERE id = ?")
            .bind(now())
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

    // ---- members ----------------------------------------------------------------------------

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
            .bind(now())
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
        let now = now();
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
        .bind(now())
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

    // ---- robots -----------------------------------------------------------------------------

    /// Creates a robot with its grants, in one transaction. A grant on a project deleted
    /// meanwhile makes it fail whole.
    pub async fn create_robot(&self, robot: &NewRobot<'_>) -> Result<RobotWrite, MetaError> {
        let now = now();
        let mut tx = self.pool.begin().await?;
        // `permissions` is the previous release's column, read only by nodes still running it.
        let n = sqlx::query(&self.dialect.insert_ignore(
            "robots (name, secret_hash, permissions, expires_at, disabled, description, project_id, \
             duration_days, created_at, updated_at) VALUES (?, ?, '[]', ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(robot.name)
        .bind(robot.secret_hash)
        .bind(robot.expires_at)
        .bind(i64::from(robot.disabled))
        .bind(robot.description)
        .bind(robot.project_id)
        .bind(robot.duration_days)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(RobotWrite::Conflict);
        }
        let id: i64 = sqlx::query_scalar("SELECT id FROM robots WHERE name = ?")
            .bind(robot.name)
            .fetch_one(&mut *tx)
            .await?;
        if let Some(project) = write_grants(&mut tx, id, robot.grants).await? {
            return Ok(RobotWrite::UnknownProject(project));
        }
        self.commit(tx).await?;
        Ok(RobotWrite::Done(id))
    }

    /// A robot by full name.
    pub async fn robot(&self, name: &str) -> Result<Option<Robot>, MetaError> {
        let sql = format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE name = ?");
        let robot = self
            .fetch_by(&sql, Bind::Text(name.to_owned()), robot_from_row)
            .await?;
        self.with_grants(robot).await
    }

    /// A robot by id.
    pub async fn robot_by_id(&self, id: i64) -> Result<Option<Robot>, MetaError> {
        let sql = format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE id = ?");
        let robot = self.fetch_by(&sql, Bind::Int(id), robot_from_row).await?;
        self.with_grants(robot).await
    }

    async fn with_grants(&self, robot: Option<Robot>) -> Result<Option<Robot>, MetaError> {
        let mut robots: Vec<Robot> = robot.into_iter().collect();
        self.load_grants(&mut robots).await?;
        Ok(robots.pop())
    }

    /// Fills in the grants of `robots`, in one query.
    async fn load_grants(&self, robots: &mut [Robot]) -> Result<(), MetaError> {
        if robots.is_empty() {
            return Ok(());
        }
        let marks = vec!["?"; robots.len()].join(", ");
        let sql = format!(
            "SELECT robot_id, project_id, actions FROM robot_permissions \
             WHERE robot_id IN ({marks}) ORDER BY robot_id, position"
        );
        let rows = robots
            .iter()
            .fold(sqlx::query(&sql), |q, r| q.bind(r.id))
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let robot_id: i64 = row.try_get(0)?;
            let grant = RobotGrant {
                project_id: row.try_get(1)?,
                actions: parse_actions(text(row, 2)?.as_deref()),
            };
            if let Some(robot) = robots.iter_mut().find(|r| r.id == robot_id) {
                robot.grants.push(grant);
            }
        }
        Ok(())
    }

    /// Robots a page at a time, by name: all of them, or one project's (`Some(project_id)`).
    pub async fn list_robots(
        &self,
        project_id: Option<i64>,
        page: Page,
    ) -> Result<Paged<Robot>, MetaError> {
        let mut c = Conditions::default();
        if let Some(id) = project_id {
            c.push("project_id = ?", [Bind::Int(id)]);
        }
        let (rows, total) = c
            .page(
                &self.pool,
                &format!("SELECT {ROBOT_COLUMNS}"),
                "FROM robots",
                "ORDER BY name",
                page,
            )
            .await?;
        let mut items = rows
            .iter()
            .map(robot_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.load_grants(&mut items).await?;
        Ok(Paged { items, total })
    }

    /// Replaces a robot's changeable fields and grants, in one transaction.
    pub async fn update_robot(
        &self,
        id: i64,
        update: &RobotUpdate<'_>,
    ) -> Result<RobotWrite, MetaError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE robots SET description = ?, duration_days = ?, expires_at = ?, \
             disabled = ?, updated_at = ? WHERE id = ?",
        )
        .bind(update.description)
        .bind(update.duration_days)
        .bind(update.expires_at)
        .bind(i64::from(update.disabled))
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(RobotWrite::Conflict);
        }
        sqlx::query("DELETE FROM robot_permissions WHERE robot_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if let Some(project) = write_grants(&mut tx, id, update.grants).await? {
            return Ok(RobotWrite::UnknownProject(project));
        }
        self.commit(tx).await?;
        Ok(RobotWrite::Done(id))
    }

    /// Replaces a robot's secret. Returns whether it exists.
    pub async fn set_robot_secret(&self, id: i64, secret_hash: &str) -> Result<bool, MetaError> {
        let n = self
            .execute_recorded(
                sqlx::query("UPDATE robots SET secret_hash = ?, updated_at = ? WHERE id = ?")
                    .bind(secret_hash)
                    .bind(now())
                    .bind(id),
            )
            .await?;
        Ok(n == 1)
    }

    /// Disables or enables a robot. Returns whether it exists.
    pub async fn set_robot_disabled(&self, id: i64, disabled: bool) -> Result<bool, MetaError> {
        let n = self
            .execute_recorded(
                sqlx::query("UPDATE robots SET disabled = ?, updated_at = ? WHERE id = ?")
                    .bind(i64::from(disabled))
                    .bind(now())
                    .bind(id),
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes a robot and its grants. Returns whether it existed.
    pub async fn delete_robot(&self, id: i64) -> Result<bool, MetaError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM robot_permissions WHERE robot_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM robots WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.commit(tx).await?;
        Ok(n == 1)
    }

    // ---- signing keys -----------------------------------------------------------------------

    /// Signing keys not retired at `at` (Unix seconds), oldest activation first.
    pub async fn signing_keys(&self, at: i64) -> Result<Vec<StoredKey>, MetaError> {
        let rows = sqlx::query(
            "SELECT kid, private_pem, cert_pem, activates_at, retires_at FROM signing_keys \
             WHERE retires_at IS NULL OR retires_at > ? ORDER BY activates_at, kid",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredKey {
                    kid: r.try_get(0)?,
                    private_pem: text(r, 1)?.unwrap_or_default(),
                    cert_pem: text(r, 2)?.unwrap_or_default(),
                    activates_at: r.try_get(3)?,
                    retires_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Records a signing key (nothing if its kid is already there).
    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), MetaError> {
        sqlx::query(&self.dialect.insert_ignore(
            "signing_keys (kid, private_pem, cert_pem, created_at, activates_at, retires_at) VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(&key.kid)
        .bind(&key.private_pem)
        .bind(&key.cert_pem)
        .bind(now())
        .bind(key.activates_at)
        .bind(key.retires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The cluster's secret `name`: `candidate` if no node stored one before, otherwise the one
    /// stored first (every node gets the same answer, however many ask at once).
    pub async fn cluster_secret(&self, name: &str, candidate: &str) -> Result<String, MetaError> {
        sqlx::query(
            &self
                .dialect
                .insert_ignore("cluster_secrets (name, secret) VALUES (?, ?)"),
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT secret FROM cluster_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(text(&row, 0)?.unwrap_or_default())
    }

    /// Schedules the retirement of every key other than `keep` that is not retiring already.
    pub async fn retire_signing_keys_except(&self, keep: &str, at: i64) -> Result<u64, MetaError> {
        Ok(sqlx::query(
            "UPDATE signing_keys SET retires_at = ? WHERE kid <> ? AND retires_at IS NULL",
        )
        .bind(at)
        .bind(keep)
        .execute(&self.pool)
        .await?
        .rows_affected())
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

/// Writes `grants` of robot `id`, each only if its project exists (checked in the same
/// statement, so that a project deleted meanwhile cannot keep a grant). `Some(project)`: that
/// project does not exist, and the transaction must be dropped.
async fn write_grants(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    grants: &[RobotGrant],
) -> Result<Option<i64>, MetaError> {
    for (position, grant) in (0_i64..).zip(grants) {
        let actions = serde_json::to_string(&grant.actions).unwrap_or_else(|_| "[]".to_owned());
        let n = match grant.project_id {
            None => sqlx::query(
                "INSERT INTO robot_permissions (robot_id, project_id, actions, position) \
                 VALUES (?, NULL, ?, ?)",
            )
            .bind(id)
            .bind(actions)
            .bind(position)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
            Some(project) => sqlx::query(
                "INSERT INTO robot_permissions (robot_id, project_id, actions, position) \
                 SELECT ?, id, ?, ? FROM projects WHERE id = ?",
            )
            .bind(id)
            .bind(actions)
            .bind(position)
            .bind(project)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
        };
        if n == 0
            && let Some(project) = grant.project_id
        {
            return Ok(Some(project));
        }
    }
    Ok(None)
}

/// Registry actions stored as a JSON array; anything unreadable is no action.
fn parse_actions(stored: Option<&str>) -> Vec<String> {
    stored
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
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
