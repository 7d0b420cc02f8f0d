//! The job kinds Berth runs.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use berth_registry::jobs::{
    AUDIT_PURGE, AuditPurgeParams, COUNT, CountParams, UPLOAD_PURGE, UploadPurgeParams,
};
use berth_storage::BlobStore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::uploads::purge_abandoned_uploads;
use crate::{Job, JobContext, JobFailure};

/// Every kind, as the binary registers them.
pub fn standard_jobs(blobs: Arc<dyn BlobStore>) -> Vec<Arc<dyn Job>> {
    vec![
        Arc::new(UploadPurge { blobs }),
        Arc::new(AuditPurge),
        Arc::new(Count),
    ]
}

/// Deletes uploads nobody wrote to for `max_age_hours`.
pub struct UploadPurge {
    /// The blob store holding the uploads.
    pub blobs: Arc<dyn BlobStore>,
}

#[async_trait]
impl Job for UploadPurge {
    fn kind(&self) -> &'static str {
        UPLOAD_PURGE
    }

    async fn run(&self, ctx: &mut JobContext) -> Result<serde_json::Value, JobFailure> {
        let p: UploadPurgeParams = ctx.params()?;
        let now = UNIX_EPOCH
            + Duration::from_millis(u64::try_from(ctx.clock().unix_millis()).unwrap_or(0));
        let report = purge_abandoned_uploads(
            ctx.meta(),
            self.blobs.as_ref(),
            Duration::from_secs(p.max_age_hours.saturating_mul(3600)),
            now,
        )
        .await
        .map_err(|e| JobFailure::Retry(e.to_string()))?;
        ctx.log(
            "info",
            &format!(
                "purged {} uploads ({} busy, {} rows without data)",
                report.purged, report.busy, report.orphan_rows
            ),
        )
        .await;
        Ok(json!({"purged": report.purged, "busy": report.busy, "orphan_rows": report.orphan_rows}))
    }
}

/// Deletes audit log entries older than the retention, in batches (each its own short
/// statement); a dry run counts them instead.
pub struct AuditPurge;

#[derive(Debug, Default, Serialize, Deserialize)]
struct PurgeProgress {
    deleted: u64,
    /// The cutoff the first attempt computed: an attempt that resumes keeps it.
    before: i64,
}

#[async_trait]
impl Job for AuditPurge {
    fn kind(&self) -> &'static str {
        AUDIT_PURGE
    }

    async fn run(&self, ctx: &mut JobContext) -> Result<serde_json::Value, JobFailure> {
        let p: AuditPurgeParams = ctx.params()?;
        p.validate().map_err(JobFailure::Fatal)?;
        let mut progress: PurgeProgress = ctx.checkpoint().unwrap_or_else(|| PurgeProgress {
            deleted: 0,
            before: ctx.clock().unix_millis()
                - i64::try_from(p.retention_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX),
        });
        let matching = ctx
            .meta()
            .count_audit_before(progress.before, &p.operations)
            .await?;
        if p.dry_run {
            ctx.log(
                "info",
                &format!("dry run: {matching} entries would be deleted"),
            )
            .await;
            return Ok(json!({"dry_run": true, "count": matching}));
        }
        ctx.log(
            "info",
            &format!(
                "deleting {matching} entries older than {} ms",
                progress.before
            ),
        )
        .await;
        loop {
            ctx.check_stop()?;
            let n = ctx
                .meta()
                .purge_audit_batch(progress.before, &p.operations)
                .await?;
            if n == 0 {
                break;
            }
            progress.deleted += n;
            ctx.save_checkpoint(&progress).await?;
        }
        ctx.log("info", &format!("deleted {} entries", progress.deleted))
            .await;
        Ok(json!({"dry_run": false, "count": progress.deleted}))
    }
}

/// The job system's self-test: counts `steps`, each taking `step_ms`, checkpointing after
/// each, so that a run taken over from a dead node resumes where it stopped. Its result names
/// every step once and the nodes that ran them.
pub struct Count;

#[derive(Debug, Default, Serialize, Deserialize)]
struct CountProgress {
    done: u32,
    /// Which node counted each run of steps: `(node, first step, steps)`.
    runs: Vec<(String, u32, u32)>,
}

#[async_trait]
impl Job for Count {
    fn kind(&self) -> &'static str {
        COUNT
    }

    async fn run(&self, ctx: &mut JobContext) -> Result<serde_json::Value, JobFailure> {
        let p: CountParams = ctx.params()?;
        p.validate().map_err(JobFailure::Fatal)?;
        let mut progress: CountProgress = ctx.checkpoint().unwrap_or_default();
        if progress.done > 0 {
            ctx.log(
                "info",
                &format!("resuming at step {} on {}", progress.done, ctx.node()),
            )
            .await;
        }
        progress
            .runs
            .push((ctx.node().to_owned(), progress.done, 0));
        while progress.done < p.steps {
            ctx.sleep(Duration::from_millis(p.step_ms)).await?;
            progress.done += 1;
            if let Some(run) = progress.runs.last_mut() {
                run.2 += 1;
            }
            ctx.save_checkpoint(&progress).await?;
        }
        Ok(json!({"steps": progress.done, "runs": progress.runs}))
    }
}
