//! Work for the job system: the kinds the registry starts, their parameters and their rules,
//! and the administrator's operations on jobs (start, stop, pause a kind). The job system
//! itself (workers, leases, schedules) is `berth-jobs`.

use berth_meta::{JobState, MetaError, NewExecution, NewJob};
use serde::{Deserialize, Serialize};

use crate::{Initiator, Registry};

/// The kind that purges abandoned uploads.
pub const UPLOAD_PURGE: &str = "upload-purge";
/// The kind that purges old audit log entries.
pub const AUDIT_PURGE: &str = "audit-purge";
/// A self-test of the job system: counts steps, checkpointing after each.
pub const COUNT: &str = "count";

/// Audit operations a purge may name.
pub const AUDIT_OPERATIONS: [&str; 6] = ["create", "update", "delete", "pull", "login", "logout"];

/// Parameters of the audit log purge (Harbor's `audit_retention_hour`, `include_event_types`,
/// `dry_run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPurgeParams {
    /// Entries older than this many hours go.
    pub retention_hours: u64,
    /// Only entries with these operations (all when empty).
    #[serde(default)]
    pub operations: Vec<String>,
    /// Count what would go, delete nothing.
    #[serde(default)]
    pub dry_run: bool,
}

impl AuditPurgeParams {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.retention_hours == 0 || self.retention_hours > 24 * 365 * 100 {
            return Err(format!(
                "retention must be 1 to {} hours, not {}",
                24 * 365 * 100,
                self.retention_hours
            ));
        }
        if let Some(bad) = self
            .operations
            .iter()
            .find(|o| !AUDIT_OPERATIONS.contains(&o.as_str()))
        {
            return Err(format!(
                "unknown operation {bad:?}: use {}",
                AUDIT_OPERATIONS.join(", ")
            ));
        }
        Ok(())
    }
}

/// Parameters of the upload purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadPurgeParams {
    /// Uploads nobody wrote to for this many hours go.
    pub max_age_hours: u64,
}

/// Parameters of the `count` self-test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountParams {
    /// Steps to count.
    pub steps: u32,
    /// Milliseconds each step takes.
    #[serde(default)]
    pub step_ms: u64,
}

impl CountParams {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.steps == 0 || self.steps > 100_000 || self.step_ms > 60_000 {
            return Err("count takes 1 to 100000 steps of at most 60000 ms".into());
        }
        Ok(())
    }
}

/// Checks `params` for a job of `kind`. Unknown kinds are refused.
pub fn check_params(kind: &str, params: &serde_json::Value) -> Result<(), String> {
    let parse_error = |e: serde_json::Error| format!("invalid parameters for {kind}: {e}");
    match kind {
        AUDIT_PURGE => serde_json::from_value::<AuditPurgeParams>(params.clone())
            .map_err(parse_error)?
            .validate(),
        UPLOAD_PURGE => serde_json::from_value::<UploadPurgeParams>(params.clone())
            .map_err(parse_error)
            .and_then(|p| {
                if p.max_age_hours == 0 {
                    Err("max_age_hours must be at least 1".into())
                } else {
                    Ok(())
                }
            }),
        COUNT => serde_json::from_value::<CountParams>(params.clone())
            .map_err(parse_error)?
            .validate(),
        other => Err(format!(
            "unknown job kind {other:?}: use {AUDIT_PURGE}, {UPLOAD_PURGE} or {COUNT}"
        )),
    }
}

/// Attempts a job of `kind` gets before it counts as failed.
pub fn max_attempts(kind: &str) -> u32 {
    match kind {
        COUNT => 5,
        _ => 3,
    }
}

/// Why a job operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// Bad kind or parameters.
    #[error("{0}")]
    Invalid(String),
    /// No such job or execution.
    #[error("{0} not found")]
    NotFound(String),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl Registry {
    /// Starts one job of `kind` now, in a new execution started by `initiator`. Returns the
    /// execution's id.
    pub async fn start_job(
        &self,
        initiator: &Initiator,
        kind: &str,
        params: &serde_json::Value,
    ) -> Result<i64, JobsError> {
        check_params(kind, params).map_err(JobsError::Invalid)?;
        let now = self.clock.unix_millis();
        let execution = NewExecution {
            kind: kind.to_owned(),
            trigger: "manual".into(),
            schedule: None,
            created_by: initiator.who.name().to_owned(),
        };
        let job = NewJob {
            kind: kind.to_owned(),
            params: params.to_string(),
            max_attempts: max_attempts(kind),
            run_at: now,
        };
        Ok(self
            .meta
            .create_execution(&execution, std::slice::from_ref(&job), now)
            .await?)
    }

    /// Asks a job to stop (pending: at once; running: within a heartbeat). Returns its state.
    pub async fn stop_job(&self, id: i64) -> Result<JobState, JobsError> {
        self.meta
            .stop_job(id, self.clock.unix_millis())
            .await?
            .ok_or_else(|| JobsError::NotFound(format!("job {id}")))
    }

    /// Asks every unfinished job of an execution to stop. Returns how many were asked.
    pub async fn stop_execution(&self, id: i64) -> Result<u64, JobsError> {
        if self.meta.execution(id).await?.is_none() {
            return Err(JobsError::NotFound(format!("execution {id}")));
        }
        Ok(self
            .meta
            .stop_jobs_where(Some(id), None, self.clock.unix_millis())
            .await?)
    }

    /// Asks every unfinished job of a kind to stop. Returns how many were asked.
    pub async fn stop_kind(&self, kind: &str) -> Result<u64, JobsError> {
        known_kind(kind)?;
        Ok(self
            .meta
            .stop_jobs_where(None, Some(kind), self.clock.unix_millis())
            .await?)
    }

    /// Pauses or resumes the claiming of a kind's jobs on every node.
    pub async fn pause_kind(&self, kind: &str, paused: bool) -> Result<(), JobsError> {
        known_kind(kind)?;
        Ok(self.meta.pause_kind(kind, paused).await?)
    }
}

/// The kinds the registry knows.
pub const KINDS: [&str; 3] = [AUDIT_PURGE, UPLOAD_PURGE, COUNT];

fn known_kind(kind: &str) -> Result<(), JobsError> {
    if KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(JobsError::Invalid(format!(
            "unknown job kind {kind:?}: use {}",
            KINDS.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_are_checked_by_kind() {
        assert!(check_params(AUDIT_PURGE, &json!({"retention_hours": 24})).is_ok());
        assert!(
            check_params(
                AUDIT_PURGE,
                &json!({"retention_hours": 24, "operations": ["pull"], "dry_run": true})
            )
            .is_ok()
        );
        for bad in [
            json!({"retention_hours": 0}),
            json!({"retention_hours": 24, "operations": ["drop"]}),
            json!({"retention_hours": "x"}),
            json!({"retention_hours": 1, "extra": 1}),
            json!([]),
        ] {
            assert!(check_params(AUDIT_PURGE, &bad).is_err(), "{bad}");
        }
        assert!(check_params(COUNT, &json!({"steps": 3, "step_ms": 10})).is_ok());
        assert!(check_params(COUNT, &json!({"steps": 0})).is_err());
        assert!(check_params(UPLOAD_PURGE, &json!({"max_age_hours": 0})).is_err());
        assert!(check_params("gc", &json!({})).is_err());
    }
}
