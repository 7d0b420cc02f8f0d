//! Caches and limits that keep credential checks cheap and brute force expensive.
//!
//! - `CredentialCache`: a successful password check is remembered for a short time under a keyed
//!   hash of the credentials, so the cache holds nothing an attacker could test passwords
//!   against without the key. A hit is honoured only while the user's stored hash is still the
//!   one that was checked, so a password change, disable or delete on any node ends it. In
//!   process, under a per-process key; with Redis, also shared by every node under the
//!   cluster's key (kept in the metadata database), so that an argon2 check done on one node
//!   serves the next login on any other.
//! - `TokenCache`: bearer tokens that verified, until they expire (ECDSA verification costs
//!   tens of microseconds; a lookup, a few). Per node: a Redis round trip would cost more.
//! - `FailureLimiter`: failed logins per account and per client address in a sliding window;
//!   past the limit, attempts are refused without checking the password. Per node; `limits`
//!   shares the counts through Redis.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::token::Claims;

/// Most entries each cache holds before it starts over.
const MAX_ENTRIES: usize = 100_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A keyed hash of a user name and a password (the name's length first, so that no two
/// pairs run together into the same input).
fn keyed(key: &[u8; 32], username: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(key);
    h.update((username.len() as u64).to_le_bytes());
    h.update(username.as_bytes());
    h.update(password.as_bytes());
    h.finalize().into()
}

/// What Redis holds for a check: a digest of the stamp (never the stored hash itself) and the
/// value.
#[derive(Serialize, Deserialize)]
struct SharedEntry<V> {
    stamp: String,
    value: V,
}

/// The Redis side of a credential cache.
struct SharedCredentials {
    redis: berth_shared::Shared,
    /// The cluster's key for entry names.
    key: [u8; 32],
    /// Redis key prefix: `berth:login:<kind>:`.
    prefix: String,
}

impl SharedCredentials {
    /// The Redis key of a check of these credentials.
    fn name(&self, username: &str, password: &str) -> String {
        format!(
            "{}{}",
            self.prefix,
            hex::encode(keyed(&self.key, username, password))
        )
    }
}

/// Remembers successful password checks, with what they established (`V`).
pub struct CredentialCache<V = ()> {
    key: [u8; 32],
    ttl: Duration,
    /// Entries by keyed hash: the stamp checked, the value, and when the entry ends.
    entries: Mutex<HashMap<[u8; 32], (String, V, Instant)>>,
    kind: &'static str,
    shared: OnceLock<SharedCredentials>,
}

impl<V: Clone + Serialize + DeserializeOwned> CredentialCache<V> {
    /// A cache whose entries live `ttl`; `kind` names its entries in Redis (local accounts and
    /// robots, directory users).
    pub fn new(kind: &'static str, ttl: Duration) -> Self {
        Self {
            key: crate::password::random_bytes(),
            ttl,
            entries: Mutex::new(HashMap::new()),
            kind,
            shared: OnceLock::new(),
        }
    }

    /// Shares the cache with every node through `redis`, naming entries with `cluster_key`
    /// (the same on every node).
    pub fn share(&self, redis: berth_shared::Shared, cluster_key: [u8; 32]) {
        let _ = self.shared.set(SharedCredentials {
            redis,
            key: cluster_key,
            prefix: format!("berth:login:{}:", self.kind),
        });
    }

    fn local_hit(&self, username: &str, password: &str, stamp: &str) -> Option<V> {
        let id = keyed(&self.key, username, password);
        let mut entries = lock(&self.entries);
        match entries.get(&id) {
            Some((s, value, until)) if s == stamp && Instant::now() < *until => Some(value.clone()),
            Some(_) => {
                entries.remove(&id);
                None
            }
            None => None,
        }
    }

    fn local_remember(&self, username: &str, password: &str, stamp: &str, value: V, ttl: Duration) {
        let id = keyed(&self.key, username, password);
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(id, (stamp.to_owned(), value, Instant::now() + ttl));
    }

    /// What a recent check of these credentials against `stamp` (the stored password hash,
    /// or a fixed mark for directory logins), on this node or any other, established.
    pub async fn hit(&self, username: &str, password: &str, stamp: &str) -> Option<V> {
        if let Some(value) = self.local_hit(username, password, stamp) {
            return Some(value);
        }
        let shared = self.shared.get()?;
        match shared.redis.get(&shared.name(username, password)).await {
            Ok(Some((bytes, left))) => {
                let entry: SharedEntry<V> = serde_json::from_slice(&bytes).ok()?;
                if entry.stamp != crate::sessions::stamp(Some(stamp)) || left.is_zero() {
                    return None;
                }
                // Kept here for what is left of its life, not a new one.
                self.local_remember(username, password, stamp, entry.value.clone(), left);
                Some(entry.value)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::debug!(%error, "redis unreachable: credential checks of this node only");
                None
            }
        }
    }

    /// Records a successful check against `stamp`, for every node when shared.
    pub async fn remember(&self, username: &str, password: &str, stamp: &str, value: V) {
        if let Some(shared) = self.shared.get() {
            let name = shared.name(username, password);
            let entry = SharedEntry {
                stamp: crate::sessions::stamp(Some(stamp)),
                value: value.clone(),
            };
            let bytes = serde_json::to_vec(&entry).unwrap_or_default();
            if let Err(error) = shared.redis.put(&name, &bytes, self.ttl).await {
                tracing::debug!(%error, "redis unreachable: this check is remembered here only");
            }
        }
        self.local_remember(username, password, stamp, value, self.ttl);
    }
}

/// Remembers verified bearer tokens until they expire.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], Claims>>,
}

impl TokenCache {
    fn id(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of a token that verified, if it is still within `exp + leeway` at `now`.
    pub fn get(&self, token: &str, now: u64, leeway: u64) -> Option<Claims> {
        let id = Self::id(token);
        let mut entries = lock(&self.entries);
        match entries.get(&id) {
            Some(c) if c.exp + leeway > now => Some(c.clone()),
            Some(_) => {
                entries.remove(&id);
                None
            }
            None => None,
        }
    }

    /// Records a token that verified.
    pub fn put(&self, token: &str, claims: &Claims) {
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(Self::id(token), claims.clone());
    }
}

/// Counts failed logins per key (an account, an address) in a sliding window.
pub struct FailureLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl FailureLimiter {
    /// At most `max` failures per key within `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// If `key` is over its limit, how long until it may try again.
    pub fn blocked(&self, key: &str) -> Option<Duration> {
        let mut failures = lock(&self.failures);
        let list = failures.get_mut(key)?;
        list.retain(|t| t.elapsed() < self.window);
        if list.len() < self.max {
            return None;
        }
        list.first().map(|oldest| {
            self.window
                .saturating_sub(oldest.elapsed())
                .max(Duration::from_secs(1))
        })
    }

    /// Records a failure for `key`.
    pub fn fail(&self, key: &str) {
        let mut failures = lock(&self.failures);
        if failures.len() >= MAX_ENTRIES {
            failures.retain(|_, v| v.last().is_some_and(|t| t.elapsed() < self.window));
        }
        let list = failures.entry(key.to_owned()).or_default();
        list.retain(|t| t.elapsed() < self.window);
        list.push(Instant::now());
    }

    /// Forgets the failures of `key` (after a success).
    pub fn clear(&self, key: &str) {
        lock(&self.failures).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credential_cache_follows_the_stored_hash() {
        let c = CredentialCache::new("test", Duration::from_secs(60));
        assert!(c.hit("alice", "pw", "h1").await.is_none());
        c.remember("alice", "pw", "h1", 7).await;
        assert_eq!(c.hit("alice", "pw", "h1").await, Some(7));
        assert!(c.hit("alice", "other", "h1").await.is_none());
        assert!(
            c.hit("alicepw", "", "h1").await.is_none(),
            "user and password are not concatenated ambiguously"
        );
        // The password changed: the entry no longer counts, and is gone.
        assert!(c.hit("alice", "pw", "h2").await.is_none());
        assert!(c.hit("alice", "pw", "h1").await.is_none());
        let short = CredentialCache::new("test", Duration::ZERO);
        short.remember("a", "b", "h", ()).await;
        assert!(short.hit("a", "b", "h").await.is_none());
    }

    #[test]
    fn limiter_blocks_after_max_failures_and_clears() {
        let l = FailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..2 {
            l.fail("user:alice");
        }
        assert!(l.blocked("user:alice").is_none());
        l.fail("user:alice");
        let wait = l.blocked("user:alice").unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(l.blocked("user:bob").is_none());
        l.clear("user:alice");
        assert!(l.blocked("user:alice").is_none());
        let quick = FailureLimiter::new(1, Duration::from_millis(1));
        quick.fail("k");
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            quick.blocked("k").is_none(),
            "failures age out of the window"
        );
    }
}
