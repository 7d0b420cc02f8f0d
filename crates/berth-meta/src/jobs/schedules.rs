//! Schedules: creating, pausing, deleting and listing them, and firing an occurrence
//! (moving it on and creating its execution atomically).

use sqlx::Row;

use super::executions::insert_execution;
use super::{NewExecution, NewJob, count};
use crate::MetaError;
use crate::store::{MetadataStore, text};

/// A schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Name (unique).
    pub name: String,
    /// Kind of the jobs it starts.
    pub kind: String,
    /// Their parameters (JSON).
    pub params: String,
    /// When: a cron expression or `@every <n>{s,m,h}`.
    pub cron: String,
    /// The next occurrence.
    pub next_at: i64,
    /// The occurrence last fired.
    pub last_at: Option<i64>,
    /// Paused: occurrences pass without firing.
    pub paused: bool,
}

impl MetadataStore {
    /// Creates or replaces a schedule's kind, parameters and timing. `next_at` applies when
    /// the schedule is new or its timing changed; otherwise the next occurrence stays.
    pub async fn put_schedule(
        &self,
        name: &str,
        kind: &str,
        params: &str,
        cron: &str,
        next_at: i64,
        now: i64,
    ) -> Result<(), MetaError> {
        let mut tx = self.pool.begin().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT cron FROM job_schedules WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        match current {
            None => {
                sqlx::query(&self.dialect.insert_ignore(
                    "job_schedules (name, kind, params, cron, next_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                ))
                .bind(name)
                .bind(kind)
                .bind(params)
                .bind(cron)
                .bind(next_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            Some(c) => {
                let sql = if c == cron {
                    "UPDATE job_schedules SET kind = ?, params = ?, cron = ?, updated_at = ? \
                     WHERE name = ?"
                } else {
                    "UPDATE job_schedules SET kind = ?, params = ?, cron = ?, updated_at = ?, \
                     next_at = ? WHERE name = ?"
                };
                let mut q = sqlx::query(sql)
                    .bind(kind)
                    .bind(params)
                    .bind(cron)
                    .bind(now);
                if c != cron {
                    q = q.bind(next_at);
                }
                q.bind(name).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Pauses or resumes a schedule. Returns whether it exists.
    pub async fn pause_schedule(&self, name: &str, paused: bool) -> Result<bool, MetaError> {
        let n = sqlx::query("UPDATE job_schedules SET paused = ? WHERE name = ?")
            .bind(i64::from(paused))
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Deletes a schedule. Returns whether it existed.
    pub async fn delete_schedule(&self, name: &str) -> Result<bool, MetaError> {
        let n = sqlx::query("DELETE FROM job_schedules WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<Schedule>, MetaError> {
        let rows = sqlx::query(
            "SELECT name, kind, params, cron, next_at, last_at, paused FROM job_schedules \
             ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Schedule {
                    name: text(r, 0)?.unwrap_or_default(),
                    kind: text(r, 1)?.unwrap_or_default(),
                    params: text(r, 2)?.unwrap_or_default(),
                    cron: text(r, 3)?.unwrap_or_default(),
                    next_at: r.try_get(4)?,
                    last_at: r.try_get(5)?,
                    paused: count(r, 6)? != 0,
                })
            })
            .collect()
    }

    /// Fires `schedule` for its occurrence `occurrence` (its `next_at` as read), moving
    /// `next_at` on to `next`: only the caller whose update finds `next_at` unchanged fires,
    /// and the execution is created in the same transaction. A paused schedule moves on
    /// without firing. Returns the execution created, if this caller fired it.
    pub async fn fire_schedule(
        &self,
        schedule: &Schedule,
        occurrence: i64,
        next: i64,
        job: &NewJob,
        now: i64,
    ) -> Result<Option<i64>, MetaError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE job_schedules SET next_at = ?, last_at = ? WHERE name = ? AND next_at = ?",
        )
        .bind(next)
        .bind(occurrence)
        .bind(schedule.name.as_str())
        .bind(occurrence)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        if schedule.paused {
            tx.commit().await?;
            return Ok(None);
        }
        let execution = NewExecution {
            kind: schedule.kind.clone(),
            trigger: "schedule".into(),
            schedule: Some(schedule.name.clone()),
            created_by: "scheduler".into(),
        };
        let id = insert_execution(
            &mut tx,
            self.dialect,
            &execution,
            std::slice::from_ref(job),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }
}
