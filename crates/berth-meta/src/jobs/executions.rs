//! Executions and their jobs: creating an execution with its jobs, looking up and listing
//! executions (with their jobs' states summed up) and jobs.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{JOB_COLUMNS, Job, JobState, NewJob, count, job};
use crate::MetaError;
use crate::identity::{Bind, Conditions, Page, Paged};
use crate::store::{Dialect, MetadataStore, text};

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

pub(super) async fn insert_execution(
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
