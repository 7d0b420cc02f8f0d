//! Exclusive writers of uploads for stores without file locks (S3): a lease per upload, held by
//! one writer at a time, renewed while it writes and given up when it ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::StorageError;

/// Leases on uploads. Within one process [`LocalLocks`]; across nodes an implementation over a
/// store every node shares (the binary provides one over the metadata database).
#[async_trait]
pub trait UploadLocks: Send + Sync + 'static {
    /// Takes the lease of upload `id` for `holder` until `ttl` from now, or renews it: whether
    /// `holder` has it. A lease its holder let expire is taken over.
    async fn lock(&self, id: &str, holder: &str, ttl: Duration) -> Result<bool, StorageError>;

    /// Gives the lease up (nothing if `holder` does not have it).
    async fn unlock(&self, id: &str, holder: &str);
}

/// Leases within this process: enough for a single node.
#[derive(Default)]
pub struct LocalLocks {
    held: Mutex<HashMap<String, (String, Instant)>>,
}

#[async_trait]
impl UploadLocks for LocalLocks {
    async fn lock(&self, id: &str, holder: &str, ttl: Duration) -> Result<bool, StorageError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match held.get(id) {
            Some((h, until)) if h != holder && *until > now => Ok(false),
            _ => {
                held.insert(id.to_owned(), (holder.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn unlock(&self, id: &str, holder: &str) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.get(id).is_some_and(|(h, _)| h == holder) {
            held.remove(id);
        }
    }
}
