//! Robot accounts and their per-project grants.

use berth_core::Action;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::identity::{Bind, Conditions, Page, Paged};
use crate::store::{MetadataStore, text};

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

/// Which robots a listing holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotsOf {
    /// Every robot.
    All,
    /// System robots (created by administrators, possibly for several projects).
    System,
    /// The robots of the project with this id.
    Project(i64),
}

/// A robot's registry actions in one project, by id, or in every project. Grants point at
/// project ids, never names: a grant dies with its project, and a project re-created under the
/// same name inherits none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotGrant {
    /// The project; `None`: every project.
    pub project_id: Option<i64>,
    /// Registry actions.
    pub actions: Vec<Action>,
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

impl MetadataStore {
    /// Creates a robot with its grants, in one transaction. A grant on a project deleted
    /// meanwhile makes it fail whole.
    pub async fn create_robot(&self, robot: &NewRobot<'_>) -> Result<RobotWrite, MetaError> {
        let now = self.now();
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

    /// Robots a page at a time, by name: all of them, the system robots, or one project's.
    pub async fn list_robots(&self, of: RobotsOf, page: Page) -> Result<Paged<Robot>, MetaError> {
        let mut c = Conditions::default();
        match of {
            RobotsOf::All => {}
            RobotsOf::System => c.push("project_id IS NULL", []),
            RobotsOf::Project(id) => c.push("project_id = ?", [Bind::Int(id)]),
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
        .bind(self.now())
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
                    .bind(self.now())
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
                    .bind(self.now())
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

/// Registry actions stored as a JSON array of names; anything unreadable is no action.
fn parse_actions(stored: Option<&str>) -> Vec<Action> {
    stored
        .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect()
}
