//! Running jobs under a lease with a fencing token: claiming due jobs, heartbeats and
//! checkpoints, finishing or releasing a run, and stopping jobs.

use super::{JOB_COLUMNS, Job, JobState, MAX_LOG_LINE, cut, job};
use crate::MetaError;
use crate::identity::Bind;
use crate::store::{Dialect, MetadataStore};

/// What a heartbeat learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease is renewed; `stop` when an administrator asked the job to stop.
    Held {
        /// Stop requested.
        stop: bool,
    },
    /// The lease is gone (expired and taken over, or the job was ended): stop at once and
    /// write nothing more.
    Lost,
}

/// How a run ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// Done; the result as JSON.
    Succeeded(String),
    /// Failed; run again at `retry_at` (pending) or give up (`None`: failed).
    Failed {
        /// The error.
        error: String,
        /// When to try again.
        retry_at: Option<i64>,
    },
    /// Stopped on request.
    Stopped,
    /// Handed back by a node shutting down: pending again at once, the attempt not counted.
    Released,
}

impl MetadataStore {
    /// Claims up to `limit` jobs of the kinds in `kinds` (none paused) that are due, or whose
    /// holder's lease expired, for `node` until `lease_until`. A job is never handed to two
    /// claimants: MySQL locks the rows it picks and skips rows others locked; SQLite runs the
    /// claim as one statement under its single writer. Jobs whose holder died after a stop
    /// was asked for end as stopped instead.
    pub async fn claim_jobs(
        &self,
        node: &str,
        kinds: &[&str],
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<Job>, MetaError> {
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        sqlx::query(
            "UPDATE jobs SET state = 'stopped', holder = NULL, lease_until = NULL, \
             finished_at = ?, updated_at = ? \
             WHERE stop_requested = 1 \
             AND (state = 'pending' OR (state = 'running' AND lease_until < ?))",
        )
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        // A job whose node died on its last attempt fails rather than run again: a job that
        // kills its node must not go round the cluster for ever.
        sqlx::query(
            "UPDATE jobs SET state = 'failed', holder = NULL, lease_until = NULL, \
             error = 'its node stopped answering during the last attempt', \
             finished_at = ?, updated_at = ? \
             WHERE state = 'running' AND lease_until < ? AND attempts >= max_attempts",
        )
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let marks = vec!["?"; kinds.len()].join(", ");
        let due = format!(
            "((state = 'pending' AND run_at <= ?) OR (state = 'running' AND lease_until < ?)) \
             AND kind IN ({marks}) \
             AND kind NOT IN (SELECT kind FROM job_kinds WHERE paused = 1)"
        );
        let set = "state = 'running', holder = ?, lease_until = ?, fence = fence + 1, \
                   attempts = attempts + 1, started_at = COALESCE(started_at, ?), updated_at = ?";
        match self.dialect {
            Dialect::Sqlite => {
                let sql = format!(
                    "UPDATE jobs SET {set} WHERE id IN \
                     (SELECT id FROM jobs WHERE {due} ORDER BY run_at, id LIMIT ?) \
                     RETURNING {JOB_COLUMNS}"
                );
                let mut q = sqlx::query(&sql)
                    .bind(node)
                    .bind(lease_until)
                    .bind(now)
                    .bind(now)
                    .bind(now)
                    .bind(now);
                for k in kinds {
                    q = q.bind(*k);
                }
                let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await?;
                let mut jobs = rows.iter().map(job).collect::<Result<Vec<_>, _>>()?;
                jobs.sort_by_key(|j| (j.run_at, j.id));
                Ok(jobs)
            }
            Dialect::MySql => {
                let mut tx = self.pool.begin().await?;
                let sql = format!(
                    "SELECT id FROM jobs WHERE {due} ORDER BY run_at, id LIMIT ? \
                     FOR UPDATE SKIP LOCKED"
                );
                let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(now).bind(now);
                for k in kinds {
                    q = q.bind(*k);
                }
                let ids = q.bind(i64::from(limit)).fetch_all(&mut *tx).await?;
                if ids.is_empty() {
                    tx.rollback().await?;
                    return Ok(Vec::new());
                }
                let id_marks = vec!["?"; ids.len()].join(", ");
                let sql = format!("UPDATE jobs SET {set} WHERE id IN ({id_marks})");
                let mut q = sqlx::query(&sql)
                    .bind(node)
                    .bind(lease_until)
                    .bind(now)
                    .bind(now);
                for id in &ids {
                    q = q.bind(*id);
                }
                q.execute(&mut *tx).await?;
                let sql = format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({id_marks}) ORDER BY run_at, id"
                );
                let mut q = sqlx::query(&sql);
                for id in &ids {
                    q = q.bind(*id);
                }
                let rows = q.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows.iter().map(job).collect()
            }
        }
    }

    /// Renews the lease of a claimed job until `lease_until`, if the claim (`fence`) still holds.
    pub async fn heartbeat_job(
        &self,
        id: i64,
        fence: i64,
        now: i64,
        lease_until: i64,
    ) -> Result<Heartbeat, MetaError> {
        let n = sqlx::query(
            "UPDATE jobs SET lease_until = ?, updated_at = ? \
             WHERE id = ? AND fence = ? AND state = 'running'",
        )
        .bind(lease_until)
        .bind(now)
        .bind(id)
        .bind(fence)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(Heartbeat::Lost);
        }
        let stop: i64 = sqlx::query_scalar("SELECT stop_requested FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .or_else(|_| Ok::<i64, MetaError>(0))?;
        Ok(Heartbeat::Held { stop: stop != 0 })
    }

    /// Saves a checkpoint (JSON) of a claimed job; `false`: the claim is lost, nothing saved.
    pub async fn checkpoint_job(
        &self,
        id: i64,
        fence: i64,
        checkpoint: &str,
        now: i64,
    ) -> Result<bool, MetaError> {
        let n = sqlx::query(
            "UPDATE jobs SET checkpoint = ?, updated_at = ? \
             WHERE id = ? AND fence = ? AND state = 'running'",
        )
        .bind(checkpoint)
        .bind(now)
        .bind(id)
        .bind(fence)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Records how a claimed job's run ended; `false`: the claim was lost, nothing written.
    pub async fn finish_job(
        &self,
        id: i64,
        fence: i64,
        end: &JobEnd,
        now: i64,
    ) -> Result<bool, MetaError> {
        let query = match end {
            JobEnd::Succeeded(result) => sqlx::query(
                "UPDATE jobs SET state = 'succeeded', result = ?, error = NULL, holder = NULL, \
                 lease_until = NULL, finished_at = ?, updated_at = ? \
                 WHERE id = ? AND fence = ? AND state = 'running'",
            )
            .bind(result.as_str())
            .bind(now)
            .bind(now),
            JobEnd::Failed {
                error,
                retry_at: Some(at),
            } => sqlx::query(
                "UPDATE jobs SET error = ?, run_at = ?, holder = NULL, lease_until = NULL, \
                 updated_at = ?, finished_at = CASE WHEN stop_requested = 1 THEN ? END, \
                 state = CASE WHEN stop_requested = 1 THEN 'stopped' ELSE 'pending' END \
                 WHERE id = ? AND fence = ? AND state = 'running'",
            )
            .bind(cut(error, MAX_LOG_LINE))
            .bind(*at)
            .bind(now)
            .bind(now),
            JobEnd::Failed {
                error,
                retry_at: None,
            } => sqlx::query(
                "UPDATE jobs SET state = 'failed', error = ?, holder = NULL, lease_until = NULL, \
                 finished_at = ?, updated_at = ? \
                 WHERE id = ? AND fence = ? AND state = 'running'",
            )
            .bind(cut(error, MAX_LOG_LINE))
            .bind(now)
            .bind(now),
            JobEnd::Stopped => sqlx::query(
                "UPDATE jobs SET state = 'stopped', holder = NULL, lease_until = NULL, \
                 finished_at = ?, updated_at = ? \
                 WHERE id = ? AND fence = ? AND state = 'running'",
            )
            .bind(now)
            .bind(now),
            JobEnd::Released => sqlx::query(
                "UPDATE jobs SET run_at = ?, attempts = attempts - 1, holder = NULL, \
                 lease_until = NULL, updated_at = ?, \
                 finished_at = CASE WHEN stop_requested = 1 THEN ? END, \
                 state = CASE WHEN stop_requested = 1 THEN 'stopped' ELSE 'pending' END \
                 WHERE id = ? AND fence = ? AND state = 'running'",
            )
            .bind(now)
            .bind(now)
            .bind(now),
        };
        let n = query
            .bind(id)
            .bind(fence)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Asks a job to stop: a pending job stops at once, a running one at its holder's next
    /// heartbeat. Returns the job's state afterwards (`None`: no such job).
    pub async fn stop_job(&self, id: i64, now: i64) -> Result<Option<JobState>, MetaError> {
        self.stop_where("id = ?", Bind::Int(id), now).await?;
        Ok(self.job(id).await?.map(|j| j.state))
    }

    /// One statement for every state a job may be in when a stop comes: a pending job stops,
    /// a running one is asked to. (MySQL assigns left to right, so `state` goes last; every
    /// `CASE` reads the state as it was.)
    async fn stop_where(&self, condition: &str, bind: Bind, now: i64) -> Result<u64, MetaError> {
        let sql = format!(
            "UPDATE jobs SET \
             stop_requested = CASE WHEN state = 'running' THEN 1 ELSE stop_requested END, \
             finished_at = CASE WHEN state = 'pending' THEN ? ELSE finished_at END, \
             updated_at = ?, \
             state = CASE WHEN state = 'pending' THEN 'stopped' ELSE state END \
             WHERE {condition} AND state IN ('pending', 'running')"
        );
        let q = sqlx::query(&sql).bind(now).bind(now);
        Ok(crate::identity::bind(q, &bind)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Asks every unfinished job of an execution (or of a kind) to stop. Returns how many.
    pub async fn stop_jobs_where(
        &self,
        execution_id: Option<i64>,
        kind: Option<&str>,
        now: i64,
    ) -> Result<u64, MetaError> {
        let (condition, bind) = match (execution_id, kind) {
            (Some(id), _) => ("execution_id = ?", Bind::Int(id)),
            (None, Some(kind)) => ("kind = ?", Bind::Text(kind.to_owned())),
            (None, None) => return Ok(0),
        };
        self.stop_where(condition, bind, now).await
    }
}
