//! Time as the registry sees it: one injectable clock instead of "now" read in many places,
//! so that tests can set the time and every layer agrees on it.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time as Unix seconds.
    fn unix_seconds(&self) -> i64 {
        unix_millis(self.now()).div_euclid(1000)
    }

    /// The current time as Unix milliseconds.
    fn unix_millis(&self) -> i64 {
        unix_millis(self.now())
    }
}

/// `t` as Unix milliseconds (negative before 1970).
pub fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that shows a set time until moved (tests).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `unix_millis`.
    pub fn at(unix_millis: i64) -> Self {
        Self(Arc::new(AtomicI64::new(unix_millis)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        let ms = self.0.load(Ordering::SeqCst);
        if ms >= 0 {
            UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1_700_000_000_123);
        assert_eq!(c.unix_millis(), 1_700_000_000_123);
        assert_eq!(c.unix_seconds(), 1_700_000_000);
        c.advance(Duration::from_millis(900));
        assert_eq!(c.unix_seconds(), 1_700_000_001);
        assert_eq!(ManualClock::at(-1500).unix_seconds(), -2);
        let now = SystemClock.unix_seconds();
        assert!(now > 1_700_000_000, "{now}");
    }
}
