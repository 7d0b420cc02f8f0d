//! Browser sessions: a login (`POST /c/login`) opens one, and its id, in a cookie, then stands
//! for the user on the management API until it is idle for the session timeout or closed.
//!
//! Sessions live in Redis when one is configured, so that every node knows every session;
//! otherwise (and while Redis cannot be reached) in this process, which suits one node or a
//! load balancer with sticky sessions. Only a hash of the session id is stored: whoever reads
//! Redis cannot use what is there.
//!
//! A session remembers who logged in, not what they may do: each request looks the user up
//! again, so a disabled or deleted user, a changed password, or revoked administrator rights
//! take effect at once on every session.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Redis keys of sessions.
const PREFIX: &str = "berth:session:";
/// Most sessions kept in process.
const MAX_LOCAL: usize = 100_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a session records about its login.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    /// The user's id.
    pub user_id: i64,
    /// The user's name.
    pub username: String,
    /// Directory groups at login (LDAP users).
    pub groups: Vec<String>,
    /// Administrator through a directory group at login (not through the account's flag).
    pub admin_by_group: bool,
    /// A hash of the password hash at login: a password change ends the session.
    pub stamp: String,
    /// The token unsafe requests must echo in `X-Harbor-CSRF-Token`.
    pub csrf: String,
}

/// The session store.
pub(crate) struct Sessions {
    idle: Duration,
    /// Most sessions kept in process.
    capacity: usize,
    local: Mutex<HashMap<String, (SessionRecord, Instant)>>,
    shared: OnceLock<berth_shared::Shared>,
}

/// The stored form of a session id.
fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// A random 256-bit identifier, hex.
pub(crate) fn random_id() -> String {
    hex::encode(crate::password::random_bytes())
}

/// The stamp of a password hash (`None` for directory users).
pub(crate) fn stamp(password_hash: Option<&str>) -> String {
    password_hash.map_or_else(String::new, |h| {
        hex::encode(&Sha256::digest(h.as_bytes())[..16])
    })
}

impl Sessions {
    pub(crate) fn new(idle: Duration) -> Self {
        Self::with_capacity(idle, MAX_LOCAL)
    }

    fn with_capacity(idle: Duration, capacity: usize) -> Self {
        Self {
            idle,
            capacity: capacity.max(1),
            local: Mutex::new(HashMap::new()),
            shared: OnceLock::new(),
        }
    }

    pub(crate) fn share(&self, shared: berth_shared::Shared) {
        let _ = self.shared.set(shared);
    }

    /// Stores a new session under `id`.
    pub(crate) async fn open(&self, id: &str, record: &SessionRecord) {
        let key = key(id);
        if let Some(shared) = self.shared.get() {
            let value = serde_json::to_vec(record).unwrap_or_default();
            match shared
                .put(&format!("{PREFIX}{key}"), &value, self.idle)
                .await
            {
                Ok(()) => return,
                Err(error) => tracing::warn!(
                    %error,
                    "redis unreachable: this session is known to this node only"
                ),
            }
        }
        let mut local = lock(&self.local);
        if local.len() >= self.capacity {
            self.make_room(&mut local);
        }
        local.insert(key, (record.clone(), Instant::now()));
    }

    /// Frees room in a full in-process store: expired sessions go, and if all are live, the
    /// sixteenth used least recently (a bound on memory whatever the logins; the work is
    /// spread over the next sixteenth of logins).
    fn make_room(&self, local: &mut HashMap<String, (SessionRecord, Instant)>) {
        let idle = self.idle;
        local.retain(|_, (_, at)| at.elapsed() < idle);
        if local.len() < self.capacity {
            return;
        }
        let mut used: Vec<Instant> = local.values().map(|(_, at)| *at).collect();
        let evict = (self.capacity / 16).clamp(1, used.len());
        let (_, cutoff, _) = used.select_nth_unstable(evict - 1);
        let cutoff = *cutoff;
        local.retain(|_, (_, at)| *at > cutoff);
    }

    /// The session under `id`, if it exists and was used within the idle timeout (which
    /// starts again).
    pub(crate) async fn get(&self, id: &str) -> Option<SessionRecord> {
        let key = key(id);
        if let Some(shared) = self.shared.get() {
            match shared.touch(&format!("{PREFIX}{key}"), self.idle).await {
                Ok(Some(value)) => return serde_json::from_slice(&value).ok(),
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%error, "redis unreachable: sessions of this node only");
                }
            }
        }
        let mut local = lock(&self.local);
        match local.get_mut(&key) {
            Some((record, at)) if at.elapsed() < self.idle => {
                *at = Instant::now();
                Some(record.clone())
            }
            Some(_) => {
                local.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session under `id`.
    pub(crate) async fn close(&self, id: &str) {
        let key = key(id);
        if let Some(shared) = self.shared.get()
            && let Err(error) = shared.clear(&format!("{PREFIX}{key}")).await
        {
            tracing::warn!(%error, "redis unreachable: the session ends on this node only");
        }
        lock(&self.local).remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SessionRecord {
        SessionRecord {
            user_id: 1,
            username: "alice".into(),
            groups: Vec::new(),
            admin_by_group: false,
            stamp: stamp(Some("$argon2id$…")),
            csrf: random_id(),
        }
    }

    #[tokio::test]
    async fn in_process_sessions_slide_and_close() {
        let s = Sessions::new(Duration::from_millis(100));
        let id = random_id();
        assert_eq!(id.len(), 64);
        assert_ne!(id, random_id());
        assert!(s.get(&id).await.is_none());
        let r = record();
        s.open(&id, &r).await;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(60)).await;
            assert_eq!(s.get(&id).await.as_ref(), Some(&r), "use keeps it alive");
        }
        assert!(!lock(&s.local).contains_key(&id), "only the hash is kept");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(s.get(&id).await.is_none(), "idle too long");
        s.open(&id, &r).await;
        s.close(&id).await;
        assert!(s.get(&id).await.is_none());
        assert_eq!(stamp(None), "");
        assert_ne!(stamp(Some("a")), stamp(Some("b")));
    }

    #[tokio::test]
    async fn the_in_process_store_is_bounded_and_keeps_the_sessions_used_last() {
        let s = Sessions::with_capacity(Duration::from_secs(3600), 32);
        let ids: Vec<String> = (0..200).map(|_| random_id()).collect();
        for id in &ids {
            s.open(id, &record()).await;
            assert!(lock(&s.local).len() <= 32, "never more than the capacity");
            // Distinct use times, as between real logins.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            s.get(&ids[199]).await.is_some(),
            "the newest session is kept"
        );
        assert!(s.get(&ids[0]).await.is_none(), "the oldest made room");
        // Expired sessions go first, before any live one.
        let s = Sessions::with_capacity(Duration::from_millis(50), 4);
        for id in &ids[..3] {
            s.open(id, &record()).await;
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
        let live = random_id();
        s.open(&live, &record()).await;
        for id in &ids[3..6] {
            s.open(id, &record()).await;
        }
        assert_eq!(lock(&s.local).len(), 4);
        assert!(
            s.get(&live).await.is_some(),
            "a live session outlives expired ones"
        );
    }
}
