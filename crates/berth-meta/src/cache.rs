//! The lookup cache: what the registry's hot path reads (a manifest by tag or digest, the size
//! of a blob linked to a repository), kept per repository so that a write to a repository
//! drops everything cached about it at once.
//!
//! Where it lives is the deployment's choice, made by the binary:
//! - **in process** for a single node (SQLite): every write passes through this process, so the
//!   cache is never stale;
//! - **in Redis** for several nodes: a write on any node invalidates the repository for all of
//!   them. Each repository's entries form one hash stamped with a generation; a writer replaces
//!   the generation after its transaction commits, and a reader stores what it read from the
//!   database only if the generation is still the one it saw before reading. A reader that
//!   raced a writer therefore stores nothing rather than something stale;
//! - **nowhere** when several nodes share a database without Redis.
//!
//! Only what exists is cached, never an absence: a push that adds a blob or a manifest needs no
//! invalidation, and no write path can leave a "not found" behind. If Redis cannot be reached
//! for an invalidation, the node retries it in the background and reads that repository from
//! the database until it succeeds; other nodes may serve the old entry until the hash expires
//! (`ttl`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Most bytes the in-process cache holds before it starts over.
const LOCAL_BUDGET: usize = 64 << 20;
/// Largest value cached (a bigger manifest is read from the database each time).
const MAX_VALUE: usize = 256 << 10;
/// Most fields per repository in process (Redis applies its own bound in the script).
const MAX_FIELDS: usize = 4096;
/// Redis keys of the per-repository hashes.
const PREFIX: &str = "berth:lookups:";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where lookups are cached.
enum Place {
    Nowhere,
    Process(Mutex<Local>),
    Redis {
        shared: OnceLock<berth_shared::Shared>,
        /// Repositories whose invalidation has not reached Redis yet.
        pending: Mutex<HashSet<String>>,
    },
}

#[derive(Default)]
struct Local {
    /// Changes when everything is dropped, so that no earlier read fills the new cache.
    epoch: u64,
    next_generation: u64,
    bytes: usize,
    repositories: HashMap<String, LocalRepository>,
}

struct LocalRepository {
    generation: u64,
    born: Instant,
    fields: HashMap<String, Arc<[u8]>>,
}

impl LocalRepository {
    fn bytes(&self) -> usize {
        self.fields.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

/// What a read that missed saw, to be handed back when filling.
pub(crate) enum Ticket {
    /// Do not fill.
    None,
    Local {
        epoch: u64,
        generation: Option<u64>,
    },
    Redis(Vec<u8>),
}

/// The outcome of a cache read.
pub(crate) enum Lookup {
    Hit(Arc<[u8]>),
    Miss(Ticket),
}

/// The lookup cache of a metadata store (shared by its clones).
pub(crate) struct LookupCache {
    place: Place,
    ttl: Duration,
    last_warning: AtomicU64,
    started: Instant,
    /// Fills in progress on this node, by repository and field (see [`LookupCache::gate`]).
    gates: Mutex<HashMap<GateKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Lookups answered from the cache, and not, on this node.
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A repository and one of its fields.
type GateKey = (String, &'static str);

/// The right to fill one field of one repository on this node; others asking wait until it
/// is dropped.
pub(crate) struct FillGate<'a> {
    cache: &'a LookupCache,
    key: GateKey,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for FillGate<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut gates = lock(&self.cache.gates);
        // Only the map holds it: nobody is waiting, so forget it.
        if gates
            .get(&self.key)
            .is_some_and(|g| Arc::strong_count(g) == 1)
        {
            gates.remove(&self.key);
        }
    }
}

impl std::fmt::Debug for LookupCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match &self.place {
            Place::Nowhere => "nowhere",
            Place::Process(_) => "process",
            Place::Redis { .. } => "redis",
        };
        f.debug_struct("LookupCache")
            .field("place", &place)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl LookupCache {
    fn new(place: Place, ttl: Duration) -> Self {
        Self {
            place,
            ttl,
            last_warning: AtomicU64::new(0),
            started: Instant::now(),
            gates: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Lookups answered from the cache, and not, since this node started.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Reads `field` of `repository`'s entries, counting hits and misses.
    pub(crate) async fn read(&self, repository: &str, field: &str) -> Lookup {
        let found = self.lookup(repository, field).await;
        let counter = match found {
            Lookup::Hit(_) => &self.hits,
            Lookup::Miss(_) => &self.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Waits until no other fill of `field` of `repository` is running on this node, and
    /// holds off the next until the gate is dropped. A fill that reads a lot (a whole tag list)
    /// takes the gate and reads the cache again first: concurrent misses then make one
    /// database read, not one each.
    pub(crate) async fn gate(&self, repository: &str, field: &'static str) -> FillGate<'_> {
        let key = (repository.to_owned(), field);
        let gate = {
            let mut gates = lock(&self.gates);
            // Forget gates nobody holds or awaits: a request dropped while waiting leaves its
            // gate behind.
            gates.retain(|_, g| Arc::strong_count(g) > 1);
            gates.entry(key.clone()).or_default().clone()
        };
        let held = gate.lock_owned().await;
        FillGate {
            cache: self,
            key,
            held: Some(held),
        }
    }

    /// No caching.
    pub(crate) fn nowhere() -> Self {
        Self::new(Place::Nowhere, Duration::ZERO)
    }

    /// In this process.
    pub(crate) fn in_process(ttl: Duration) -> Self {
        Self::new(Place::Process(Mutex::new(Local::default())), ttl)
    }

    /// In Redis, once `share` hands it over; until then, no caching.
    pub(crate) fn in_redis(ttl: Duration) -> Self {
        Self::new(
            Place::Redis {
                shared: OnceLock::new(),
                pending: Mutex::new(HashSet::new()),
            },
            ttl,
        )
    }

    /// Where the cache lives, for logs and health reports.
    pub(crate) fn place(&self) -> &'static str {
        match &self.place {
            Place::Nowhere => "none",
            Place::Process(_) => "in process",
            Place::Redis { shared, .. } if shared.get().is_some() => "redis",
            Place::Redis { .. } => "redis (not connected: none meanwhile)",
        }
    }

    /// Hands Redis over (the binary connects in the background), and starts retrying
    /// invalidations that could not be sent.
    pub(crate) fn share(self: &Arc<Self>, shared: berth_shared::Shared) {
        let Place::Redis { shared: slot, .. } = &self.place else {
            return;
        };
        if slot.set(shared).is_ok() {
            let weak = Arc::downgrade(self);
            tokio::spawn(retry_invalidations(weak));
        }
    }

    /// Warns at most every 10 s (a Redis outage would otherwise log every request).
    fn warn(&self, what: &str, error: &berth_shared::SharedError) {
        let now = self.started.elapsed().as_secs() + 10;
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%error, "lookup cache: {what} failed; reading from the database");
        }
    }

    async fn lookup(&self, repository: &str, field: &str) -> Lookup {
        match &self.place {
            Place::Nowhere => Lookup::Miss(Ticket::None),
            Place::Process(local) => {
                let mut local = lock(local);
                let expired = local
                    .repositories
                    .get(repository)
                    .is_some_and(|r| r.born.elapsed() >= self.ttl);
                if expired && let Some(gone) = local.repositories.remove(repository) {
                    local.bytes = local.bytes.saturating_sub(gone.bytes());
                }
                let epoch = local.epoch;
                match local.repositories.get(repository) {
                    Some(r) => match r.fields.get(field) {
                        Some(v) => Lookup::Hit(v.clone()),
                        None => Lookup::Miss(Ticket::Local {
                            epoch,
                            generation: Some(r.generation),
                        }),
                    },
                    None => Lookup::Miss(Ticket::Local {
                        epoch,
                        generation: None,
                    }),
                }
            }
            Place::Redis { shared, pending } => {
                let Some(shared) = shared.get() else {
                    return Lookup::Miss(Ticket::None);
                };
                if lock(pending).contains(repository) {
                    return Lookup::Miss(Ticket::None);
                }
                match shared.cached(&format!("{PREFIX}{repository}"), field).await {
                    Ok((_, Some(v))) => Lookup::Hit(v.into()),
                    Ok((generation, None)) => Lookup::Miss(Ticket::Redis(generation)),
                    Err(e) => {
                        self.warn("a read", &e);
                        Lookup::Miss(Ticket::None)
                    }
                }
            }
        }
    }

    /// Stores what the database said about `field`, unless the repository was invalidated
    /// since the read that produced `ticket`.
    pub(crate) async fn fill(&self, repository: &str, ticket: Ticket, field: &str, value: &[u8]) {
        if value.len() > MAX_VALUE {
            return;
        }
        match (&self.place, ticket) {
            (Place::Process(local), Ticket::Local { epoch, generation }) => {
                let mut local = lock(local);
                let current = local.repositories.get(repository).map(|r| r.generation);
                if local.epoch != epoch || current != generation {
                    return;
                }
                let added = field.len() + value.len();
                if local.bytes + added > LOCAL_BUDGET {
                    local.repositories.clear();
                    local.bytes = 0;
                    local.epoch += 1;
                    return;
                }
                local.next_generation += 1;
                let fresh = local.next_generation;
                let entry = local
                    .repositories
                    .entry(repository.to_owned())
                    .or_insert_with(|| LocalRepository {
                        generation: fresh,
                        born: Instant::now(),
                        fields: HashMap::new(),
                    });
                if entry.fields.len() >= MAX_FIELDS {
                    return;
                }
                if entry
                    .fields
                    .insert(field.to_owned(), value.into())
                    .is_none()
                {
                    local.bytes += added;
                }
            }
            (Place::Redis { shared, .. }, Ticket::Redis(generation)) => {
                let Some(shared) = shared.get() else { return };
                let key = format!("{PREFIX}{repository}");
                if let Err(e) = shared.fill(&key, &generation, field, value, self.ttl).await {
                    self.warn("a fill", &e);
                }
            }
            _ => {}
        }
    }

    /// Drops everything cached about `repository`. Called after the write committed.
    pub(crate) async fn invalidate(&self, repository: &str) {
        match &self.place {
            Place::Nowhere => {}
            Place::Process(local) => {
                let mut local = lock(local);
                local.next_generation += 1;
                let fresh = LocalRepository {
                    generation: local.next_generation,
                    born: Instant::now(),
                    fields: HashMap::new(),
                };
                if let Some(old) = local.repositories.insert(repository.to_owned(), fresh) {
                    local.bytes = local.bytes.saturating_sub(old.bytes());
                }
            }
            Place::Redis { shared, pending } => {
                let Some(shared) = shared.get() else {
                    // Not connected yet: what Redis holds from before must not be trusted.
                    lock(pending).insert(repository.to_owned());
                    return;
                };
                if let Err(e) = send_invalidation(shared, repository, self.ttl).await {
                    self.warn("an invalidation", &e);
                    lock(pending).insert(repository.to_owned());
                }
            }
        }
    }
}

async fn send_invalidation(
    shared: &berth_shared::Shared,
    repository: &str,
    ttl: Duration,
) -> Result<(), berth_shared::SharedError> {
    let generation = uuid::Uuid::new_v4();
    shared
        .invalidate(&format!("{PREFIX}{repository}"), generation.as_bytes(), ttl)
        .await
}

/// Sends the invalidations that failed, every second, while the cache exists.
async fn retry_invalidations(cache: Weak<LookupCache>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(cache) = cache.upgrade() else { return };
        let Place::Redis { shared, pending } = &cache.place else {
            return;
        };
        let Some(shared) = shared.get() else { continue };
        let waiting: Vec<String> = lock(pending).iter().cloned().collect();
        for repository in waiting {
            if send_invalidation(shared, &repository, cache.ttl)
                .await
                .is_err()
            {
                break;
            }
            lock(pending).remove(&repository);
            tracing::info!(%repository, "lookup cache: delayed invalidation sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(l: Lookup) -> Option<Vec<u8>> {
        match l {
            Lookup::Hit(v) => Some(v.to_vec()),
            Lookup::Miss(_) => None,
        }
    }

    #[tokio::test]
    async fn in_process_entries_follow_invalidations() {
        let c = LookupCache::in_process(Duration::from_secs(60));
        let Lookup::Miss(t) = c.read("r", "f").await else {
            panic!("empty cache hit")
        };
        c.fill("r", t, "f", b"v1").await;
        assert_eq!(hit(c.read("r", "f").await).as_deref(), Some(&b"v1"[..]));
        assert!(hit(c.read("other", "f").await).is_none());

        // A read that raced a write cannot fill: its ticket predates the invalidation.
        let Lookup::Miss(stale) = c.read("r", "g").await else {
            panic!()
        };
        c.invalidate("r").await;
        c.fill("r", stale, "g", b"stale").await;
        assert!(hit(c.read("r", "g").await).is_none());
        assert!(hit(c.read("r", "f").await).is_none(), "all fields dropped");
        // A fresh read fills again.
        let Lookup::Miss(t) = c.read("r", "g").await else {
            panic!()
        };
        c.fill("r", t, "g", b"fresh").await;
        assert_eq!(hit(c.read("r", "g").await).as_deref(), Some(&b"fresh"[..]));
        // Oversized values are not cached.
        let Lookup::Miss(t) = c.read("r", "big").await else {
            panic!()
        };
        c.fill("r", t, "big", &vec![0; MAX_VALUE + 1]).await;
        assert!(hit(c.read("r", "big").await).is_none());
    }

    #[tokio::test]
    async fn in_process_entries_expire_and_nowhere_caches_nothing() {
        let c = LookupCache::in_process(Duration::from_millis(50));
        let Lookup::Miss(t) = c.read("r", "f").await else {
            panic!()
        };
        c.fill("r", t, "f", b"v").await;
        assert!(hit(c.read("r", "f").await).is_some());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(hit(c.read("r", "f").await).is_none());

        let none = LookupCache::nowhere();
        let Lookup::Miss(t) = none.read("r", "f").await else {
            panic!()
        };
        none.fill("r", t, "f", b"v").await;
        assert!(hit(none.read("r", "f").await).is_none());
        // Redis configured but not connected: no caching, and invalidations are remembered.
        let redis = LookupCache::in_redis(Duration::from_secs(60));
        assert!(hit(redis.read("r", "f").await).is_none());
        redis.invalidate("r").await;
        let Place::Redis { pending, .. } = &redis.place else {
            panic!()
        };
        assert!(lock(pending).contains("r"));
    }

    #[tokio::test]
    async fn a_fill_gate_holds_off_the_next_and_is_forgotten_when_free() {
        let c = Arc::new(LookupCache::in_process(Duration::from_secs(60)));
        let first = c.gate("r", "tags").await;
        // Another repository or field is not held up.
        drop(c.gate("other", "tags").await);
        drop(c.gate("r", "f").await);
        let waiter = tokio::spawn({
            let c = c.clone();
            async move {
                let _second = c.gate("r", "tags").await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the second fill waits for the first");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the second fill goes on once the first is done")
            .unwrap();
        assert!(
            lock(&c.gates).is_empty(),
            "no gate is kept once nobody holds or awaits it"
        );
        // A request dropped while it waits (its client went away) leaves no gate for good.
        let first = c.gate("r", "tags").await;
        let dropped = tokio::spawn({
            let c = c.clone();
            async move {
                let _never = c.gate("r", "tags").await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The holder finishes while the other still waits, which is then dropped before it
        // runs again (one thread: it cannot run before this test yields).
        drop(first);
        dropped.abort();
        assert!(dropped.await.unwrap_err().is_cancelled());
        assert_eq!(lock(&c.gates).len(), 1, "left behind by the dropped waiter");
        drop(c.gate("other", "tags").await);
        assert!(lock(&c.gates).is_empty());
    }
}
