//! Pulls are the hot path: their audit entries are queued in memory and written in batches
//! (at most a second behind). Entries still queued when a node dies are lost; a node that
//! stops cleanly writes them first.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_meta::{AuditEntry, MetaError, MetadataStore};

use crate::event::Event;

/// Most entries queued while the database cannot take them; later pulls are not recorded
/// (and counted in [`PullLog::dropped`]) until it can.
pub const MAX_QUEUED: usize = 100_000;

/// How often queued pulls are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The queue of pull entries.
#[derive(Debug, Default)]
pub struct PullLog {
    queue: Mutex<Vec<Event>>,
    dropped: AtomicU64,
}

impl PullLog {
    /// Queues one pull. Costs a lock and a push.
    pub fn push(&self, event: Event) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= MAX_QUEUED {
            drop(q);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.push(event);
    }

    /// Pulls not recorded because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Entries waiting, and the time (Unix ms) of the oldest.
    pub fn backlog(&self) -> (usize, Option<i64>) {
        let q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        (q.len(), q.first().map(|e| e.at))
    }

    /// Writes every queued entry in one transaction, each with its repository's project.
    /// On failure the entries go back to the front of the queue, for the next flush.
    pub async fn flush(&self, meta: &MetadataStore) -> Result<usize, MetaError> {
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return Ok(0);
        }
        match write(meta, &batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                let newer = std::mem::replace(&mut *q, batch);
                let room = MAX_QUEUED.saturating_sub(q.len());
                let kept = newer.len().min(room);
                self.dropped
                    .fetch_add((newer.len() - kept) as u64, Ordering::Relaxed);
                q.extend(newer.into_iter().take(kept));
                Err(e)
            }
        }
    }
}

async fn write(meta: &MetadataStore, batch: &[Event]) -> Result<(), MetaError> {
    let mut projects: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for event in batch {
        if let crate::EventKind::ArtifactPulled { repository, .. } = &event.kind {
            projects.insert(berth_core::name::project_of(repository).to_owned(), None);
        }
    }
    let names: Vec<String> = projects.keys().cloned().collect();
    for (name, id) in meta.project_ids(&names).await? {
        projects.insert(name, Some(id));
    }
    let entries: Vec<AuditEntry> = batch
        .iter()
        .map(|event| {
            let mut entry = event.audit_entry();
            if let crate::EventKind::ArtifactPulled { repository, .. } = &event.kind {
                entry.project_id = projects
                    .get(berth_core::name::project_of(repository))
                    .copied()
                    .flatten();
            }
            entry
        })
        .collect();
    meta.write_audit(&entries).await
}
