//! Users: accounts, their profiles and flags (system administrator, disabled).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::identity::{Bind, Conditions, Page, Paged};
use crate::store::{MetadataStore, text};

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

impl MetadataStore {
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
        let now = self.now();
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
                    .bind(self.now())
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
        .bind(self.now())
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
                    .bind(self.now())
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
}
