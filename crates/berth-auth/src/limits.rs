//! Failed-login limits per account and per client address: in Redis when one is configured,
//! so that every node counts the same failures; in process otherwise, and whenever Redis
//! cannot be reached (logins go on; a guesser then meets per-node limits until it returns).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::guard::FailureLimiter;
use crate::service::{FAILURE_WINDOW, MAX_ACCOUNT_FAILURES, MAX_ADDRESS_FAILURES};

/// Redis keys of the counters.
const PREFIX: &str = "berth:login-failures:";

/// The two limits, and where they are counted.
pub struct LoginLimits {
    account: FailureLimiter,
    address: FailureLimiter,
    shared: OnceLock<berth_shared::Shared>,
    expected: AtomicBool,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            account: FailureLimiter::new(MAX_ACCOUNT_FAILURES, FAILURE_WINDOW),
            address: FailureLimiter::new(MAX_ADDRESS_FAILURES, FAILURE_WINDOW),
            shared: OnceLock::new(),
            expected: AtomicBool::new(false),
        }
    }
}

fn limit_of(key: &str) -> u64 {
    if key.starts_with("user:") {
        MAX_ACCOUNT_FAILURES as u64
    } else {
        MAX_ADDRESS_FAILURES as u64
    }
}

fn unshared(error: &berth_shared::SharedError) {
    tracing::warn!(%error, "redis unreachable: failed logins are counted on this node only");
}

impl LoginLimits {
    /// Counts in Redis from now on.
    pub fn share(&self, shared: berth_shared::Shared) {
        self.expected.store(true, Ordering::Relaxed);
        let _ = self.shared.set(shared);
    }

    /// Redis is configured, even if not connected yet.
    pub fn expect_shared(&self) {
        self.expected.store(true, Ordering::Relaxed);
    }

    /// `None` when Redis is not configured; otherwise whether it answers.
    pub async fn shared_status(&self) -> Option<Result<(), String>> {
        if !self.expected.load(Ordering::Relaxed) {
            return None;
        }
        Some(match self.shared.get() {
            Some(shared) => shared.ping().await.map_err(|e| e.to_string()),
            None => Err("not connected yet".to_owned()),
        })
    }

    /// If the account or the address is over its limit, how long until it may try again.
    pub async fn blocked(&self, account: &str, address: &str) -> Option<Duration> {
        if let Some(shared) = self.shared.get() {
            let mut failed = false;
            for key in [account, address] {
                match shared.peek(&format!("{PREFIX}{key}")).await {
                    Ok((n, left)) if n >= limit_of(key) => {
                        return Some(left.max(Duration::from_secs(1)));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        unshared(&e);
                        failed = true;
                        break;
                    }
                }
            }
            if !failed {
                return None;
            }
        }
        self.account
            .blocked(account)
            .or_else(|| self.address.blocked(address))
    }

    /// Counts a failure of the account and of the address.
    pub async fn failed(&self, account: &str, address: &str) {
        if let Some(shared) = self.shared.get() {
            let mut ok = true;
            for key in [account, address] {
                if let Err(e) = shared.hit(&format!("{PREFIX}{key}"), FAILURE_WINDOW).await {
                    unshared(&e);
                    ok = false;
                    break;
                }
            }
            if ok {
                return;
            }
        }
        self.account.fail(account);
        self.address.fail(address);
    }

    /// Forgets the account's failures after a success (the address keeps its count).
    pub async fn succeeded(&self, account: &str) {
        if let Some(shared) = self.shared.get()
            && let Err(e) = shared.clear(&format!("{PREFIX}{account}")).await
        {
            unshared(&e);
        }
        self.account.clear(account);
    }
}
