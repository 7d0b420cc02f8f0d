//! Berth's job system and its jobs.
//!
//! A job is a row in the metadata database (`berth-meta`'s `jobs`), created in an execution
//! (by hand, by a schedule, by an event) and run by whichever node's [`Runner`] claims it
//! first. A claim holds a lease that heartbeats renew; a node that dies stops renewing, and
//! once the lease expires another node claims the job and resumes it from its last
//! checkpoint. Every claim increments the job's fencing token, and every write a run makes
//! (checkpoint, log line, result) names the token it claimed with: a node that lost its lease
//! can no longer write anything, so a job's result is written once.
//!
//! Job kinds are registered in code ([`Job`]); [`Scheduler`] fires schedules once per
//! occurrence across all nodes.

mod context;
mod forward;
mod kinds;
mod runner;
mod schedule;
mod uploads;

use async_trait::async_trait;

pub use context::{JobContext, JobFailure};
pub use forward::{FORWARD, GAP_WAIT, SyslogForwarder};
pub use kinds::{AuditPurge, Count, UploadPurge, standard_jobs};
pub use runner::{Runner, RunnerSettings};
pub use schedule::{ScheduleError, Scheduler, Timing, TimingError};
pub use uploads::{JobError, PurgeReport, purge_abandoned_uploads};

/// A kind of job.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// The kind's name, as stored with its jobs.
    fn kind(&self) -> &'static str;

    /// Runs one attempt. The context gives the parameters, the last checkpoint (when the job
    /// resumes after a failed attempt or a dead node), a fenced checkpoint and log, and the
    /// stop signal, which a long job checks between steps.
    async fn run(&self, ctx: &mut JobContext) -> Result<serde_json::Value, JobFailure>;
}
