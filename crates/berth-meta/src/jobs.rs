//! The job system's tables: executions, their jobs (claimed under a lease with a fencing
//! token), job logs, schedules, paused kinds and the nodes running workers. The rules (what a
//! job does, when to retry, how a schedule advances) are `berth-jobs`'s; the statements here
//! make each step atomic. Times are Unix milliseconds.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::identity::{Bind, Conditions, Page, Paged};
use crate::store::{Dialect, MetadataStore, text};

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for its run time and a worker.
    Pending,
    /// Held by a worker.
    Running,
    /// Finished.
    Succeeded,
    /// Gave up (attempts exhausted, or an error not worth retrying).
    Failed,
    /// Stopped by an administrator.
    Stopped,
}

impl JobState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "stopped" => Self::Stopped,
            _ => return None,
        })
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Stopped)
    }
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its kind (the name the worker's registry knows it by).
    pub kind: String,
    /// Its parameters, as JSON.
    pub params: String,
    /// Attempts before it counts as failed.
    pub max_attempts: u32,
    /// When it may run first.
    pub run_at: i64,
}

/// An execution to create: what started it.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// The kind of work.
    pub kind: String,
    /// `manual`, `schedule` or `event`.
    pub trigger: String,
    /// The schedule that fired it, if any.
    pub schedule: Option<String>,
    /// Who started it.
    pub created_by: String,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Id.
    pub id: i64,
    /// Its execution.
    pub execution_id: i64,
    /// Kind.
    pub kind: String,
    /// Parameters (JSON).
    pub params: String,
    /// State.
    pub state: JobState,
    /// Attempts started.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it runs next (pending), or ran.
    pub run_at: i64,
    /// The node holding it.
    pub holder: Option<String>,
    /// Until when the holder's lease runs.
    pub lease_until: Option<i64>,
    /// The fencing token of the latest claim.
    pub fence: i64,
    /// The latest checkpoint (JSON).
    pub checkpoint: Option<String>,
    /// A stop was asked for.
    pub stop_requested: bool,
    /// The result (JSON) of a successful run.
    pub result: Option<String>,
    /// The last error.
    pub error: Option<String>,
    /// Created.
    pub created_at: i64,
    /// First started.
    pub started_at: Option<i64>,
    /// Ended.
    pub finished_at: Option<i64>,
    /// Last changed.
    pub updated_at: i64,
}

/// An execution with its jobs' states summed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// Id.
    pub id: i64,
    /// Kind of work.
    pub kind: String,
    /// `manual`, `schedule` or `event`.
    pub trigger: String,
    /// The schedule that fired it.
    pub schedule: Option<String>,
    /// Who started it.
    pub created_by: String,
    /// Created.
    pub created_at: i64,
    /// Jobs in total, and by state: pending, running, succeeded, failed, stopped.
    pub jobs: [u64; 6],
    /// When its last job ended, once all have.
    pub finished_at: Option<i64>,
}

impl Execution {
    /// Harbor's execution status: `Running` while a job is pending or running, then `Error`
    /// if one failed, `Stopped` if one was stopped, else `Success`.
    pub fn status(&self) -> &'static str {
        let [_, pending, running, _, failed, stopped] = self.jobs;
        if pending + running > 0 {
            "Running"
        } else if failed > 0 {
            "Error"
        } else if stopped > 0 {
            "Stopped"
        } else {
            "Success"
        }
    }
}

/// A line of a job's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLogLine {
    /// Id (increasing).
    pub id: i64,
    /// When.
    pub at: i64,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// The line.
    pub message: String,
}

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

/// Pending jobs of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Kind.
    pub kind: String,
    /// Pending jobs.
    pub pending: u64,
    /// Running jobs.
    pub running: u64,
    /// The run time of the oldest pending job that is due.
    pub oldest_due: Option<i64>,
    /// Whether the kind is paused.
    pub paused: bool,
}

/// A node running workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobNode {
    /// Node id.
    pub node: String,
    /// Host name.
    pub host: String,
    /// Workers.
    pub workers: u32,
    /// Started.
    pub started_at: i64,
    /// Last heartbeat.
    pub heartbeat_at: i64,
}

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

/// Filters of a job listing.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only these states.
    pub states: Vec<JobState>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this execution.
    pub execution_id: Option<i64>,
}

/// Most lines kept per job; older ones are dropped as new ones come.
pub const MAX_LOG_LINES: u64 = 2000;
/// Longest log line kept, in bytes (longer ones are cut at a character boundary).
pub const MAX_LOG_LINE: usize = 2000;

const JOB_COLUMNS: &str = "id, execution_id, kind, params, state, attempts, max_attempts, run_at, \
     holder, lease_until, fence, checkpoint, stop_requested, result, error, created_at, \
     started_at, finished_at, updated_at";

fn job(r: &AnyRow) -> Result<Job, MetaError> {
    let state = text(r, 4)?.unwrap_or_default();
    Ok(Job {
        id: r.try_get(0)?,
        execution_id: r.try_get(1)?,
        kind: text(r, 2)?.unwrap_or_default(),
        params: text(r, 3)?.unwrap_or_default(),
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        attempts: u32::try_from(count(r, 5)?).unwrap_or(0),
        max_attempts: u32::try_from(count(r, 6)?).unwrap_or(0),
        run_at: r.try_get(7)?,
        holder: text(r, 8)?,
        lease_until: r.try_get(9)?,
        fence: r.try_get(10)?,
        checkpoint: text(r, 11)?,
        stop_requested: count(r, 12)? != 0,
        result: text(r, 13)?,
        error: text(r, 14)?,
        created_at: r.try_get(15)?,
        started_at: r.try_get(16)?,
        finished_at: r.try_get(17)?,
        updated_at: r.try_get(18)?,
    })
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl MetadataStore {
    /// Creates an execution and its jobs in one transaction; returns the execution's id.
    pub async fn create_execution(
        &self,
        execution: &NewExecution,
        jobs: &[NewJob],
        now: i64,
    ) -> Result<i64, MetaError> {
        let mut tx = self.pool.begin().await?;
        let id = insert_execution(&mut tx, self.dialect, execution, jobs, now).await?;
        tx.commit().await?;
        Ok(id)
    }

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

    /// A job by id.
    pub async fn job(&self, id: i64) -> Result<Option<Job>, MetaError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job).transpose()
    }

    /// Jobs, newest first, a page at a time.
    pub async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Paged<Job>, MetaError> {
        let mut c = Conditions::default();
        if !filter.states.is_empty() {
            c.push(
                format!("state IN ({})", vec!["?"; filter.states.len()].join(", ")),
                filter
                    .states
                    .iter()
                    .map(|s| Bind::Text(s.as_str().to_owned())),
            );
        }
        if let Some(kind) = &filter.kind {
            c.push("kind = ?", [Bind::Text(kind.clone())]);
        }
        if let Some(id) = filter.execution_id {
            c.push("execution_id = ?", [Bind::Int(id)]);
        }
        let (rows, total) = c
            .page(
                &self.pool,
                &format!("SELECT {JOB_COLUMNS}"),
                "FROM jobs",
                "ORDER BY id DESC",
                page,
            )
            .await?;
        Ok(Paged {
            items: rows.iter().map(job).collect::<Result<_, _>>()?,
            total,
        })
    }

    /// Appends a line to a claimed job's log (if the claim holds), dropping the oldest lines
    /// beyond [`MAX_LOG_LINES`]. Returns whether the claim held.
    pub async fn log_job(
        &self,
        id: i64,
        fence: i64,
        level: &str,
        message: &str,
        now: i64,
    ) -> Result<bool, MetaError> {
        let n = sqlx::query(
            "INSERT INTO job_logs (job_id, at, level, message) \
             SELECT id, ?, ?, ? FROM jobs WHERE id = ? AND fence = ?",
        )
        .bind(now)
        .bind(level)
        .bind(cut(message, MAX_LOG_LINE))
        .bind(id)
        .bind(fence)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let cutoff: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM job_logs WHERE job_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
        )
        .bind(id)
        .bind(i64::try_from(MAX_LOG_LINES).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(cutoff) = cutoff {
            sqlx::query("DELETE FROM job_logs WHERE job_id = ? AND id <= ?")
                .bind(id)
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
        }
        Ok(true)
    }

    /// A page of a job's log, oldest first.
    pub async fn job_log(&self, id: i64, page: Page) -> Result<Paged<JobLogLine>, MetaError> {
        let mut c = Conditions::default();
        c.push("job_id = ?", [Bind::Int(id)]);
        let (rows, total) = c
            .page(
                &self.pool,
                "SELECT id, at, level, message",
                "FROM job_logs",
                "ORDER BY id",
                page,
            )
            .await?;
        Ok(Paged {
            items: rows
                .iter()
                .map(|r| {
                    Ok(JobLogLine {
                        id: r.try_get(0)?,
                        at: r.try_get(1)?,
                        level: text(r, 2)?.unwrap_or_default(),
                        message: text(r, 3)?.unwrap_or_default(),
                    })
                })
                .collect::<Result<_, MetaError>>()?,
            total,
        })
    }

    /// Executions, newest first, a page at a time (of one kind when given).
    pub async fn list_executions(
        &self,
        kind: Option<&str>,
        page: Page,
    ) -> Result<Paged<Execution>, MetaError> {
        let mut c = Conditions::default();
        if let Some(kind) = kind {
            c.push("e.kind = ?", [Bind::Text(kind.to_owned())]);
        }
        let (rows, total) = c
            .page(
                &self.pool,
                EXECUTION_SELECT,
                "FROM job_executions e",
                "ORDER BY e.id DESC",
                page,
            )
            .await?;
        Ok(Paged {
            items: rows.iter().map(execution).collect::<Result<_, _>>()?,
            total,
        })
    }

    /// An execution by id.
    pub async fn execution(&self, id: i64) -> Result<Option<Execution>, MetaError> {
        let sql = format!("{EXECUTION_SELECT} FROM job_executions e WHERE e.id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(execution).transpose()
    }

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

    /// Pauses or resumes the claiming of a kind's jobs.
    pub async fn pause_kind(&self, kind: &str, paused: bool) -> Result<(), MetaError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            &self
                .dialect
                .insert_ignore("job_kinds (kind, paused) VALUES (?, 0)"),
        )
        .bind(kind)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE job_kinds SET paused = ? WHERE kind = ?")
            .bind(i64::from(paused))
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pending and running jobs per kind, with the kinds' pause flags; `kinds` are listed even
    /// when they have no jobs.
    pub async fn job_queues(&self, kinds: &[&str], now: i64) -> Result<Vec<Queue>, MetaError> {
        let mut queues: std::collections::BTreeMap<String, Queue> = kinds
            .iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    Queue {
                        kind: (*k).to_owned(),
                        pending: 0,
                        running: 0,
                        oldest_due: None,
                        paused: false,
                    },
                )
            })
            .collect();
        let rows = sqlx::query(
            "SELECT kind, \
             COUNT(CASE WHEN state = 'pending' THEN 1 END), \
             COUNT(CASE WHEN state = 'running' THEN 1 END), \
             MIN(CASE WHEN state = 'pending' AND run_at <= ? THEN run_at END) \
             FROM jobs WHERE state IN ('pending', 'running') GROUP BY kind",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let kind = text(r, 0)?.unwrap_or_default();
            let q = queues.entry(kind.clone()).or_insert_with(|| Queue {
                kind,
                pending: 0,
                running: 0,
                oldest_due: None,
                paused: false,
            });
            q.pending = count(r, 1)?;
            q.running = count(r, 2)?;
            q.oldest_due = r.try_get::<Option<i64>, _>(3).ok().flatten();
        }
        let paused = sqlx::query("SELECT kind FROM job_kinds WHERE paused = 1")
            .fetch_all(&self.pool)
            .await?;
        for r in &paused {
            let kind = text(r, 0)?.unwrap_or_default();
            if let Some(q) = queues.get_mut(&kind) {
                q.paused = true;
            }
        }
        Ok(queues.into_values().collect())
    }

    /// Jobs that ended, by kind and state, with their total run time (ms, from first start to
    /// end): the job system's history, cluster-wide.
    pub async fn job_totals(&self) -> Result<Vec<(String, JobState, u64, u64)>, MetaError> {
        let rows = sqlx::query(
            "SELECT kind, state, COUNT(*), \
             CAST(COALESCE(SUM(finished_at - started_at), 0) AS SIGNED) \
             FROM jobs WHERE state IN ('succeeded', 'failed', 'stopped') GROUP BY kind, state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let state = text(r, 1)?.unwrap_or_default();
                Ok((
                    text(r, 0)?.unwrap_or_default(),
                    JobState::parse(&state).unwrap_or(JobState::Failed),
                    count(r, 2)?,
                    count(r, 3)?,
                ))
            })
            .collect()
    }

    /// Records that `node` runs `workers` workers (a heartbeat; the first one registers it).
    pub async fn job_node_heartbeat(
        &self,
        node: &str,
        host: &str,
        workers: u32,
        now: i64,
    ) -> Result<(), MetaError> {
        let n = sqlx::query("UPDATE job_nodes SET heartbeat_at = ?, workers = ? WHERE node = ?")
            .bind(now)
            .bind(i64::from(workers))
            .bind(node)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            sqlx::query(&self.dialect.insert_ignore(
                "job_nodes (node, host, workers, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(node)
            .bind(host)
            .bind(i64::from(workers))
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Nodes that reported since `since`, by name; older ones are forgotten.
    pub async fn job_nodes(&self, since: i64) -> Result<Vec<JobNode>, MetaError> {
        sqlx::query("DELETE FROM job_nodes WHERE heartbeat_at < ?")
            .bind(since)
            .execute(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT node, host, workers, started_at, heartbeat_at FROM job_nodes ORDER BY node",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobNode {
                    node: text(r, 0)?.unwrap_or_default(),
                    host: text(r, 1)?.unwrap_or_default(),
                    workers: u32::try_from(count(r, 2)?).unwrap_or(0),
                    started_at: r.try_get(3)?,
                    heartbeat_at: r.try_get(4)?,
                })
            })
            .collect()
    }
}

/// A count or integer column: BIGINT (`COUNT`, `CAST … AS SIGNED`) or INT (MySQL's `INT`
/// columns reach the `Any` driver as 32-bit), never negative here.
fn count(r: &AnyRow, i: usize) -> Result<u64, MetaError> {
    let v = match r.try_get::<i64, _>(i) {
        Ok(v) => v,
        Err(_) => i64::from(r.try_get::<i32, _>(i)?),
    };
    Ok(u64::try_from(v).unwrap_or(0))
}

const EXECUTION_SELECT: &str = "SELECT e.id, e.kind, e.trigger_type, e.schedule, e.created_by, \
     e.created_at, \
     (SELECT COUNT(*) FROM jobs j WHERE j.execution_id = e.id), \
     (SELECT COUNT(*) FROM jobs j WHERE j.execution_id = e.id AND j.state = 'pending'), \
     (SELECT COUNT(*) FROM jobs j WHERE j.execution_id = e.id AND j.state = 'running'), \
     (SELECT COUNT(*) FROM jobs j WHERE j.execution_id = e.id AND j.state = 'succeeded'), \
     (SELECT COUNT(*) FROM jobs j WHERE j.execution_id = e.id AND j.state = 'failed'), \
     (SELECT COUNT(*) FROM jobs j WHERE j.execution_id = e.id AND j.state = 'stopped'), \
     (SELECT MAX(j.finished_at) FROM jobs j WHERE j.execution_id = e.id)";

fn execution(r: &AnyRow) -> Result<Execution, MetaError> {
    let mut jobs = [0u64; 6];
    for (i, slot) in jobs.iter_mut().enumerate() {
        *slot = count(r, 6 + i)?;
    }
    let done = jobs[1] + jobs[2] == 0;
    Ok(Execution {
        id: r.try_get(0)?,
        kind: text(r, 1)?.unwrap_or_default(),
        trigger: text(r, 2)?.unwrap_or_default(),
        schedule: text(r, 3)?,
        created_by: text(r, 4)?.unwrap_or_default(),
        created_at: r.try_get(5)?,
        jobs,
        finished_at: if done {
            r.try_get::<Option<i64>, _>(12).ok().flatten()
        } else {
            None
        },
    })
}

async fn insert_execution(
    tx: &mut crate::store::Tx<'_>,
    dialect: Dialect,
    execution: &NewExecution,
    jobs: &[NewJob],
    now: i64,
) -> Result<i64, MetaError> {
    let insert = "INSERT INTO job_executions (kind, trigger_type, schedule, created_by, \
                  created_at) VALUES (?, ?, ?, ?, ?)";
    let returning = format!("{insert} RETURNING id");
    let query = sqlx::query(match dialect {
        Dialect::Sqlite => returning.as_str(),
        Dialect::MySql => insert,
    })
    .bind(execution.kind.as_str())
    .bind(execution.trigger.as_str())
    .bind(execution.schedule.as_deref())
    .bind(execution.created_by.as_str())
    .bind(now);
    // SQLite returns the id; MySQL reports it as the last insert id of the connection.
    let id: i64 = match dialect {
        Dialect::Sqlite => query.fetch_one(&mut **tx).await?.try_get(0)?,
        Dialect::MySql => query
            .execute(&mut **tx)
            .await?
            .last_insert_id()
            .ok_or(MetaError::Database(sqlx::Error::RowNotFound))?,
    };
    for j in jobs {
        sqlx::query(
            "INSERT INTO jobs (execution_id, kind, params, state, max_attempts, run_at, \
             created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(j.kind.as_str())
        .bind(j.params.as_str())
        .bind(i64::from(j.max_attempts))
        .bind(j.run_at)
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(id)
}
