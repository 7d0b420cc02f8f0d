//! Users, projects, project members and token signing keys.

use sqlx::Row;

use crate::MetaError;
use crate::store::{MetadataStore, now};

/// A local user account.
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
    /// Permissions as JSON: `[{"project": "<name>" | "*", "actions": [...]}]`.
    pub permissions: String,
    /// Expiry (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
    /// Disabled robots cannot authenticate.
    pub disabled: bool,
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
    /// Creates a user. `None` if the name is taken.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        sysadmin: bool,
    ) -> Result<Option<i64>, MetaError> {
        let now = now();
        let n = sqlx::query(&self.dialect.insert_ignore(
            "users (username, password_hash, sysadmin, disabled, created_at, updated_at) VALUES (?, ?, ?, 0, ?, ?)",
        ))
        .bind(username)
        .bind(password_hash)
        .bind(i64::from(sysadmin))
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        Ok(self.user(username).await?.map(|u| u.id))
    }

    /// A user by name.
    pub async fn user(&self, username: &str) -> Result<Option<User>, MetaError> {
        let row = sqlx::query(
            "SELECT id, username, password_hash, sysadmin, disabled FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<User, MetaError> {
            Ok(User {
                id: r.try_get(0)?,
                username: r.try_get(1)?,
                password_hash: r.try_get(2)?,
                sysadmin: r.try_get::<i64, _>(3)? != 0,
                disabled: r.try_get::<i64, _>(4)? != 0,
            })
        })
        .transpose()
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
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, MetaError> {
        let n =
            sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE username = ?")
                .bind(password_hash)
                .bind(now())
                .bind(username)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    /// Creates a project. `None` if the name is taken.
    pub async fn create_project(&self, name: &str, public: bool) -> Result<Option<i64>, MetaError> {
        let n = sqlx::query(
            &self
                .dialect
                .insert_ignore("projects (name, public, created_at) VALUES (?, ?, ?)"),
        )
        .bind(name)
        .bind(i64::from(public))
        .bind(now())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        Ok(self.project(name).await?.map(|p| p.id))
    }

    /// A project by name.
    pub async fn project(&self, name: &str) -> Result<Option<Project>, MetaError> {
        let row = sqlx::query("SELECT id, name, public FROM projects WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<Project, MetaError> {
            Ok(Project {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                public: r.try_get::<i64, _>(2)? != 0,
            })
        })
        .transpose()
    }

    /// Makes a user a member of a project with `role` (replacing any role it had).
    pub async fn set_user_role(
        &self,
        project_id: i64,
        user_id: i64,
        role: &str,
    ) -> Result<(), MetaError> {
        self.set_member_role(project_id, "user", &user_id.to_string(), role)
            .await
    }

    /// Makes a directory group (by DN) a member of a project with `role`.
    pub async fn set_group_role(
        &self,
        project_id: i64,
        group_dn: &str,
        role: &str,
    ) -> Result<(), MetaError> {
        self.set_member_role(project_id, "group", group_dn, role)
            .await
    }

    async fn set_member_role(
        &self,
        project_id: i64,
        kind: &str,
        principal: &str,
        role: &str,
    ) -> Result<(), MetaError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM project_members WHERE project_id = ? AND kind = ? AND principal = ?",
        )
        .bind(project_id)
        .bind(kind)
        .bind(principal)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO project_members (project_id, kind, principal, role, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(project_id)
            .bind(kind)
            .bind(principal)
            .bind(role)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
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
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
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

    /// Creates a robot. `None` if the name is taken.
    pub async fn create_robot(
        &self,
        name: &str,
        secret_hash: &str,
        permissions: &str,
        expires_at: Option<i64>,
    ) -> Result<Option<i64>, MetaError> {
        let n = sqlx::query(&self.dialect.insert_ignore(
            "robots (name, secret_hash, permissions, expires_at, disabled, created_at) VALUES (?, ?, ?, ?, 0, ?)",
        ))
        .bind(name)
        .bind(secret_hash)
        .bind(permissions)
        .bind(expires_at)
        .bind(now())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        Ok(self.robot(name).await?.map(|r| r.id))
    }

    /// A robot by full name.
    pub async fn robot(&self, name: &str) -> Result<Option<Robot>, MetaError> {
        let row = sqlx::query("SELECT id, name, secret_hash, permissions, expires_at, disabled FROM robots WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<Robot, MetaError> {
            Ok(Robot {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                secret_hash: r.try_get(2)?,
                permissions: r.try_get(3)?,
                expires_at: r.try_get(4)?,
                disabled: r.try_get::<i64, _>(5)? != 0,
            })
        })
        .transpose()
    }

    /// Disables or enables a robot. Returns whether it exists.
    pub async fn set_robot_disabled(&self, name: &str, disabled: bool) -> Result<bool, MetaError> {
        let n = sqlx::query("UPDATE robots SET disabled = ? WHERE name = ?")
            .bind(i64::from(disabled))
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

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
                    private_pem: r.try_get(1)?,
                    cert_pem: r.try_get(2)?,
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
