//! The job system's tables: executions, their jobs (claimed under a lease with a fencing
//! token), job logs, schedules, paused kinds and the nodes running workers. The rules (what a
//! job does, when to retry, how a schedule advances) are `berth-jobs`'s; the statements here
//! make each step atomic. Times are Unix milliseconds.
//!
//! One submodule per seam; here the job's own types and the row helpers they share.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::store::text;

mod claims;
mod executions;
mod logs;
mod queues;
mod schedules;

pub use claims::{Heartbeat, JobEnd};
pub use executions::{Execution, JobFilter, NewExecution};
pub use logs::{JobLogLine, MAX_LOG_LINE, MAX_LOG_LINES};
pub use queues::{JobNode, Queue};
pub use schedules::Schedule;

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

/// A count or integer column: BIGINT (`COUNT`, `CAST … AS SIGNED`) or INT (MySQL's `INT`
/// columns reach the `Any` driver as 32-bit), never negative here.
fn count(r: &AnyRow, i: usize) -> Result<u64, MetaError> {
    let v = match r.try_get::<i64, _>(i) {
        Ok(v) => v,
        Err(_) => i64::from(r.try_get::<i32, _>(i)?),
    };
    Ok(u64::try_from(v).unwrap_or(0))
}
