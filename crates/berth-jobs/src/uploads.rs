//! Background jobs. Every job is idempotent and safe to run on several nodes at once: the work
//! it claims is claimed through the same exclusion the request path uses.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_meta::{MetaError, MetadataStore};
use berth_storage::{BlobStore, StorageError};
use tokio::sync::watch;

/// A job failure.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The blob store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What one purge of abandoned uploads did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Uploads deleted (data and session).
    pub purged: usize,
    /// Abandoned-looking uploads skipped because a request was writing them.
    pub busy: usize,
    /// Session rows deleted whose data was already gone.
    pub orphan_rows: usize,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Deletes uploads that nobody has written to for `max_age`: sessions a client abandoned, and
/// data a single-request upload left when its node died. An upload a request is writing is
/// never touched (its writer lock is taken first).
pub async fn purge_abandoned_uploads(
    meta: &MetadataStore,
    blobs: &dyn BlobStore,
    max_age: Duration,
    now: SystemTime,
) -> Result<PurgeReport, JobError> {
    let cutoff = now.checked_sub(max_age).unwrap_or(UNIX_EPOCH);
    let mut report = PurgeReport::default();
    let stored = blobs.list_uploads().await?;
    for (id, modified) in &stored {
        if *modified >= cutoff {
            continue;
        }
        if meta
            .upload_updated_at(id)
            .await?
            .is_some_and(|t| t >= unix(cutoff))
        {
            continue;
        }
        let writer = match blobs.upload_writer(id).await {
            Ok(w) => w,
            Err(StorageError::Busy { .. }) => {
                report.busy += 1;
                continue;
            }
            Err(StorageError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        meta.forget_upload(id).await?;
        blobs.cancel_upload(id).await?;
        drop(writer);
        report.purged += 1;
    }
    for id in meta.uploads_idle_since(unix(cutoff)).await? {
        if !stored.iter().any(|(s, _)| *s == id) && meta.forget_upload(&id).await? {
            report.orphan_rows += 1;
        }
    }
    Ok(report)
}

/// The lease name of the upload purge.
pub const UPLOAD_PURGE_JOB: &str = "purge-abandoned-uploads";

/// Runs [`purge_abandoned_uploads`] every `interval` until `shutdown` turns true, on one node
/// of the cluster at a time: the node `node` purges while it holds the job's lease (renewed
/// each round, for two intervals), and another takes over if it stops.
pub async fn run_upload_purge(
    meta: MetadataStore,
    blobs: Arc<dyn BlobStore>,
    max_age: Duration,
    interval: Duration,
    node: String,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {
                let _ = meta.release_lease(UPLOAD_PURGE_JOB, &node).await;
                return;
            }
        }
        match meta
            .acquire_lease(UPLOAD_PURGE_JOB, &node, interval.saturating_mul(2))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!("another node purges abandoned uploads");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the upload purge lease; will retry");
                continue;
            }
        }
        match purge_abandoned_uploads(&meta, blobs.as_ref(), max_age, SystemTime::now()).await {
            Ok(r) if r == PurgeReport::default() => tracing::debug!("no abandoned uploads"),
            Ok(r) => tracing::info!(
                purged = r.purged,
                busy = r.busy,
                orphan_rows = r.orphan_rows,
                "purged abandoned uploads"
            ),
            Err(e) => tracing::warn!(error = %e, "purging abandoned uploads failed; will retry"),
        }
    }
}
