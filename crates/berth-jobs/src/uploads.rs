//! Purging abandoned uploads: sessions a client gave up on, and data a single-request upload
//! left when its node died. Safe on several nodes at once: each upload is claimed through the
//! writer lock the request path uses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_meta::{MetaError, MetadataStore};
use berth_storage::{BlobStore, StorageError};

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
