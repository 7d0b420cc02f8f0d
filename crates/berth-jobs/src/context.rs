//! What a running job sees: its parameters and checkpoint, and fenced writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use berth_core::Clock;
use berth_meta::{Job as JobRow, MetaError, MetadataStore};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

/// Why an attempt did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    /// Worth another attempt (after a backoff), while attempts remain.
    #[error("{0}")]
    Retry(String),
    /// Not worth another attempt.
    #[error("{0}")]
    Fatal(String),
    /// Stopped on an administrator's request.
    #[error("stopped")]
    Stopped,
    /// This node no longer holds the job (its lease was taken over): nothing more may be
    /// written.
    #[error("lease lost")]
    LeaseLost,
    /// This node is shutting down: the job goes back to the queue for another node.
    #[error("node stopping")]
    Released,
}

impl From<MetaError> for JobFailure {
    fn from(e: MetaError) -> Self {
        Self::Retry(format!("metadata database: {e}"))
    }
}

/// Why a run should stop, set by the heartbeat or the node.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    reason: AtomicU8,
    notify: Notify,
}

/// No stop asked.
const RUN: u8 = 0;
/// An administrator asked for a stop.
const STOP: u8 = 1;
/// The lease is gone.
const LOST: u8 = 2;
/// The node is shutting down.
const RELEASE: u8 = 3;

impl StopSignal {
    pub(crate) fn stop(&self) {
        self.set(STOP);
    }

    pub(crate) fn lost(&self) {
        self.set(LOST);
    }

    pub(crate) fn release(&self) {
        self.set(RELEASE);
    }

    fn set(&self, reason: u8) {
        // The first reason stays: a lost lease is not turned into a stop.
        let _ = self
            .reason
            .compare_exchange(RUN, reason, Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_waiters();
    }

    pub(crate) fn failure(&self) -> Option<JobFailure> {
        match self.reason.load(Ordering::Acquire) {
            STOP => Some(JobFailure::Stopped),
            LOST => Some(JobFailure::LeaseLost),
            RELEASE => Some(JobFailure::Released),
            _ => None,
        }
    }
}

/// A running job: what it was given, and what it may write while its claim holds.
pub struct JobContext {
    pub(crate) meta: MetadataStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) job: JobRow,
    pub(crate) params: serde_json::Value,
    pub(crate) node: String,
    pub(crate) signal: Arc<StopSignal>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("job", &self.job.id)
            .field("fence", &self.job.fence)
            .finish()
    }
}

impl JobContext {
    /// The job's id.
    pub fn id(&self) -> i64 {
        self.job.id
    }

    /// The attempt this is (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.job.attempts
    }

    /// The node running it.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The metadata store.
    pub fn meta(&self) -> &MetadataStore {
        &self.meta
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The parameters, parsed as `T`; a mismatch is fatal (parameters are checked when a job
    /// is created).
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, JobFailure> {
        serde_json::from_value(self.params.clone())
            .map_err(|e| JobFailure::Fatal(format!("invalid parameters: {e}")))
    }

    /// The last checkpoint saved by any attempt, on any node.
    pub fn checkpoint<T: DeserializeOwned>(&self) -> Option<T> {
        self.job
            .checkpoint
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
    }

    /// Saves a checkpoint: an attempt that takes the job over starts from it. Fails with
    /// [`JobFailure::LeaseLost`] when this node no longer holds the job.
    pub async fn save_checkpoint<T: Serialize>(&mut self, value: &T) -> Result<(), JobFailure> {
        let json = serde_json::to_string(value)
            .map_err(|e| JobFailure::Fatal(format!("checkpoint: {e}")))?;
        let now = self.clock.unix_millis();
        if self
            .meta
            .checkpoint_job(self.job.id, self.job.fence, &json, now)
            .await?
        {
            self.job.checkpoint = Some(json);
            Ok(())
        } else {
            self.signal.lost();
            Err(JobFailure::LeaseLost)
        }
    }

    /// Appends a line to the job's log (kept in the database, bounded).
    pub async fn log(&self, level: &str, message: &str) {
        let now = self.clock.unix_millis();
        match self
            .meta
            .log_job(self.job.id, self.job.fence, level, message, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => self.signal.lost(),
            Err(error) => {
                tracing::warn!(job = self.job.id, %error, "could not write a job log line")
            }
        }
    }

    /// `Err` once the job should stop (asked to, lease lost, node stopping): a long job calls
    /// it between steps and returns the error.
    pub fn check_stop(&self) -> Result<(), JobFailure> {
        match self.signal.failure() {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// Waits `duration`, or less if the job should stop meanwhile (then `Err`).
    pub async fn sleep(&self, duration: std::time::Duration) -> Result<(), JobFailure> {
        self.check_stop()?;
        let notified = self.signal.notify.notified();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            () = notified => {}
        }
        self.check_stop()
    }
}
