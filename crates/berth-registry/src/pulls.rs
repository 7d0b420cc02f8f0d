//! Pulls are the hot path: their audit entries are queued in memory and written in batches
//! (at most a second behind). Pulls of the same reference by the same caller from the same
//! address within one batch are one entry, which says how many there were; a pull that adds
//! to an entry already queued allocates nothing. Entries still queued when a node dies are
//! lost; a node that stops cleanly writes them first.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_meta::{AuditEntry, MetaError, MetadataStore};

use crate::event::{Event, EventKind, Initiator, Outcome, Who};

/// Most distinct entries queued while the database cannot take them; later pulls are not
/// recorded (and counted in [`PullLog::dropped`]) until it can.
pub const MAX_QUEUED: usize = 100_000;

/// Entries written per transaction.
const FLUSH_CHUNK: usize = 1000;

/// How often queued pulls are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// A pull, as the request path knows it: nothing owned.
#[derive(Debug, Clone, Copy)]
pub struct Pull<'a> {
    /// Who: `user`, `robot` or `anonymous`.
    pub principal: &'a str,
    /// The user's or robot's name (empty for anonymous).
    pub name: &'a str,
    /// The user's id, when known.
    pub user_id: Option<i64>,
    /// The client's address.
    pub address: Option<IpAddr>,
    /// Repository.
    pub repository: &'a str,
    /// The tag or digest asked for.
    pub reference: &'a str,
}

impl Pull<'_> {
    fn same_as(&self, p: &Pending) -> bool {
        let e = &p.event;
        let EventKind::ArtifactPulled {
            repository,
            reference,
        } = &e.kind
        else {
            return false;
        };
        let (principal, name, user_id) = match &e.initiator.who {
            Who::User { id, name } => ("user", name.as_str(), *id),
            Who::Robot { name } => ("robot", name.as_str(), None),
            Who::Anonymous => ("anonymous", "", None),
            Who::System => ("system", "", None),
        };
        self.principal == principal
            && self.name == name
            && self.user_id == user_id
            && self.repository == repository
            && self.reference == reference
            && self.address == p.address
    }

    fn key(&self, hasher: &impl BuildHasher) -> u64 {
        hasher.hash_one((
            self.principal,
            self.name,
            self.user_id,
            self.address,
            self.repository,
            self.reference,
        ))
    }

    fn event(&self, at: i64) -> Event {
        let who = Who::from_parts(self.principal, self.name, self.user_id);
        Event {
            at,
            initiator: Initiator {
                who,
                address: self.address.map(|a| a.to_string()).unwrap_or_default(),
            },
            project_id: None,
            kind: EventKind::ArtifactPulled {
                repository: self.repository.to_owned(),
                reference: self.reference.to_owned(),
            },
            outcome: Outcome::Success,
        }
    }
}

/// A queued entry and how many pulls it stands for.
#[derive(Debug)]
struct Pending {
    key: u64,
    address: Option<IpAddr>,
    event: Event,
    count: u64,
}

#[derive(Debug, Default)]
struct Queue {
    /// Entries in the order their first pull came.
    entries: Vec<Pending>,
    /// Key → indexes into `entries` (several on a hash collision).
    index: HashMap<u64, Vec<usize>>,
}

/// The queue of pull entries.
#[derive(Debug, Default)]
pub struct PullLog {
    queue: Mutex<Queue>,
    hasher: std::collections::hash_map::RandomState,
    dropped: AtomicU64,
}

impl PullLog {
    /// Queues one pull at `at` (Unix ms), or counts it in the entry already queued for it.
    pub fn push(&self, pull: &Pull<'_>, at: i64) {
        let key = pull.key(&self.hasher);
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let Queue { entries, index } = &mut *q;
        if let Some(slots) = index.get(&key)
            && let Some(&i) = slots.iter().find(|&&i| pull.same_as(&entries[i]))
        {
            entries[i].count += 1;
            return;
        }
        if entries.len() >= MAX_QUEUED {
            drop(q);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        index.entry(key).or_default().push(entries.len());
        entries.push(Pending {
            key,
            address: pull.address,
            event: pull.event(at),
            count: 1,
        });
    }

    /// Pulls not recorded because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Entries waiting, and the time (Unix ms) of the oldest.
    pub fn backlog(&self) -> (usize, Option<i64>) {
        let q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        (q.entries.len(), q.entries.first().map(|e| e.event.at))
    }

    /// Writes every queued entry in one transaction, each with its repository's project, and
    /// returns their events. On failure the entries go back to the front of the queue, for
    /// the next flush.
    pub async fn flush(&self, meta: &MetadataStore) -> Result<Vec<Event>, MetaError> {
        let batch = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *q).entries
        };
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // In chunks, each its own short transaction: a long backlog does not hold the
        // database's write lock for long, and what was written stays written.
        let mut written = 0;
        while written < batch.len() {
            let end = (written + FLUSH_CHUNK).min(batch.len());
            if let Err(e) = write(meta, &batch[written..end]).await {
                let mut batch = batch;
                let unwritten = batch.split_off(written);
                self.requeue(unwritten);
                return Err(e);
            }
            written = end;
        }
        Ok(batch.into_iter().map(|p| p.event).collect())
    }

    /// Puts `batch` back before what came since (merging counts), within [`MAX_QUEUED`].
    fn requeue(&self, batch: Vec<Pending>) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let newer = std::mem::take(&mut *q).entries;
        let mut entries = batch;
        let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            index.entry(e.key).or_default().push(i);
        }
        for n in newer {
            let same = index.get(&n.key).and_then(|slots| {
                slots.iter().copied().find(|&i| {
                    let e = &entries[i];
                    e.address == n.address
                        && e.event.initiator == n.event.initiator
                        && e.event.kind == n.event.kind
                })
            });
            match same {
                Some(i) => entries[i].count += n.count,
                None if entries.len() < MAX_QUEUED => {
                    index.entry(n.key).or_default().push(entries.len());
                    entries.push(n);
                }
                None => {
                    self.dropped.fetch_add(n.count, Ordering::Relaxed);
                }
            }
        }
        *q = Queue { entries, index };
    }
}

async fn write(meta: &MetadataStore, batch: &[Pending]) -> Result<(), MetaError> {
    let mut projects: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for p in batch {
        if let EventKind::ArtifactPulled { repository, .. } = &p.event.kind {
            projects.insert(berth_core::name::project_of(repository).to_owned(), None);
        }
    }
    let names: Vec<String> = projects.keys().cloned().collect();
    for (name, id) in meta.project_ids(&names).await? {
        projects.insert(name, Some(id));
    }
    let entries: Vec<AuditEntry> = batch
        .iter()
        .map(|p| {
            let mut entry = p.event.audit_entry();
            if let EventKind::ArtifactPulled { repository, .. } = &p.event.kind {
                entry.project_id = projects
                    .get(berth_core::name::project_of(repository))
                    .copied()
                    .flatten();
            }
            if p.count > 1 {
                entry.detail = Some(format!("{} pulls", p.count));
            }
            entry
        })
        .collect();
    meta.write_audit(&entries).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull<'a>(name: &'a str, reference: &'a str) -> Pull<'a> {
        Pull {
            principal: "user",
            name,
            user_id: Some(1),
            address: "192.0.2.1".parse().ok(),
            repository: "p/app",
            reference,
        }
    }

    #[test]
    fn repeated_pulls_are_one_entry_with_a_count() {
        let log = PullLog::default();
        for _ in 0..3 {
            log.push(&pull("alice", "v1"), 10);
        }
        log.push(&pull("bob", "v1"), 11);
        log.push(&pull("alice", "v2"), 12);
        let q = log.queue.lock().unwrap();
        let counts: Vec<(String, u64)> = q
            .entries
            .iter()
            .map(|e| (e.event.kind.resource(&e.event.initiator.who), e.count))
            .collect();
        assert_eq!(
            counts,
            [
                ("p/app:v1".to_owned(), 3),
                ("p/app:v1".to_owned(), 1),
                ("p/app:v2".to_owned(), 1)
            ]
        );
        assert_eq!(q.entries[0].event.at, 10, "the first pull's time");
        assert_eq!(q.entries[0].event.initiator.address, "192.0.2.1");
    }

    #[test]
    fn requeued_batches_keep_their_counts_and_order() {
        let log = PullLog::default();
        log.push(&pull("alice", "v1"), 1);
        let batch = std::mem::take(&mut *log.queue.lock().unwrap()).entries;
        log.push(&pull("alice", "v1"), 2);
        log.push(&pull("bob", "v1"), 3);
        log.requeue(batch);
        let q = log.queue.lock().unwrap();
        assert_eq!(
            q.entries
                .iter()
                .map(|e| (e.event.at, e.count))
                .collect::<Vec<_>>(),
            [(1, 2), (3, 1)]
        );
        drop(q);
        log.push(&pull("bob", "v1"), 4);
        assert_eq!(log.backlog(), (2, Some(1)));
    }
}
