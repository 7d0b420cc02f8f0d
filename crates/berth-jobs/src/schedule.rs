//! Schedules: when they fire, and the loop that fires them once per occurrence across nodes.
//!
//! **Missed occurrences.** When every node was down across one or more occurrences, the first
//! node back fires the schedule once for all of them and moves on to the next occurrence in
//! the future: a purge that missed three nights runs once, not three times in a row.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use berth_core::Clock;
use berth_meta::{MetadataStore, NewJob, Schedule};
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// When a schedule fires: a cron expression (six fields, seconds first, as Harbor's; or
/// five, minutes first), or `@every <n>s|m|h` (occurrences at whole multiples of the
/// interval since the Unix epoch, so that every node agrees on them).
#[derive(Debug, Clone)]
pub enum Timing {
    /// A cron expression, in UTC.
    Cron(Box<cron::Schedule>),
    /// A fixed interval, in milliseconds.
    Every(i64),
}

/// A schedule that could not be set.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The timing is invalid.
    #[error(transparent)]
    Timing(TimingError),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] berth_meta::MetaError),
}

/// A timing that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TimingError(String);

impl FromStr for Timing {
    type Err = TimingError;

    fn from_str(s: &str) -> Result<Self, TimingError> {
        let s = s.trim();
        if let Some(every) = s.strip_prefix("@every ") {
            let every = every.trim();
            let (n, ms) = [("s", 1_000), ("m", 60_000), ("h", 3_600_000)]
                .iter()
                .find_map(|(unit, ms)| every.strip_suffix(unit).map(|n| (n, *ms)))
                .ok_or_else(|| TimingError(format!("{s:?}: the unit is s, m or h")))?;
            let n: i64 = n
                .parse()
                .map_err(|_| TimingError(format!("{s:?}: expected @every <n>s, <n>m or <n>h")))?;
            if !(1..=24 * 366 * 3600).contains(&n) {
                return Err(TimingError(format!("{s:?}: the interval must be positive")));
            }
            return Ok(Self::Every(n * ms));
        }
        let fields = s.split_whitespace().count();
        let expression = match fields {
            5 => format!("0 {s}"),
            6 | 7 => s.to_owned(),
            _ => {
                return Err(TimingError(format!(
                    "{s:?}: a cron expression has 6 fields (second minute hour day month weekday), or 5 without seconds"
                )));
            }
        };
        let schedule = cron::Schedule::from_str(&expression)
            .map_err(|e| TimingError(format!("{s:?}: {e}")))?;
        Ok(Self::Cron(Box::new(schedule)))
    }
}

impl Timing {
    /// The first occurrence strictly after `after` (Unix ms), if there is one.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        match self {
            Self::Every(interval) => Some((after.div_euclid(*interval) + 1) * interval),
            Self::Cron(schedule) => {
                let at = DateTime::<Utc>::from_timestamp_millis(after)?;
                schedule.after(&at).next().map(|t| t.timestamp_millis())
            }
        }
    }
}

/// Fires due schedules: every node runs one; each occurrence fires on one of them.
#[derive(Debug)]
pub struct Scheduler {
    meta: MetadataStore,
    clock: Arc<dyn Clock>,
    tick: Duration,
}

impl Scheduler {
    /// A scheduler looking at the schedules every `tick`.
    pub fn new(meta: MetadataStore, clock: Arc<dyn Clock>, tick: Duration) -> Self {
        Self { meta, clock, tick }
    }

    /// Creates `name`, or updates its kind, parameters and timing (the next occurrence moves
    /// only when the timing changed).
    pub async fn ensure(
        &self,
        name: &str,
        kind: &str,
        params: &serde_json::Value,
        timing: &str,
    ) -> Result<(), ScheduleError> {
        let parsed: Timing = timing.parse().map_err(ScheduleError::Timing)?;
        let now = self.clock.unix_millis();
        let next = parsed
            .next_after(now)
            .ok_or_else(|| ScheduleError::Timing(TimingError(format!("{timing:?} never fires"))))?;
        self.meta
            .put_schedule(name, kind, &params.to_string(), timing, next, now)
            .await?;
        Ok(())
    }

    /// Fires every due schedule once. Returns the executions this node created.
    pub async fn fire_due(&self) -> Result<Vec<i64>, berth_meta::MetaError> {
        let now = self.clock.unix_millis();
        let mut fired = Vec::new();
        for schedule in self.meta.schedules().await? {
            if schedule.next_at > now {
                continue;
            }
            if let Some(id) = self.fire(&schedule, now).await? {
                fired.push(id);
            }
        }
        Ok(fired)
    }

    async fn fire(&self, s: &Schedule, now: i64) -> Result<Option<i64>, berth_meta::MetaError> {
        let Ok(timing) = s.cron.parse::<Timing>() else {
            tracing::warn!(schedule = %s.name, cron = %s.cron, "schedule has an invalid timing; skipped");
            return Ok(None);
        };
        // Missed occurrences are coalesced: the next one is the first after now.
        let Some(next) = timing.next_after(now) else {
            return Ok(None);
        };
        let job = NewJob {
            kind: s.kind.clone(),
            params: s.params.clone(),
            max_attempts: berth_registry::jobs::max_attempts(&s.kind),
            run_at: now,
        };
        let fired = self
            .meta
            .fire_schedule(s, s.next_at, next, &job, now)
            .await?;
        if let Some(id) = fired {
            tracing::info!(schedule = %s.name, execution = id, "schedule fired");
        }
        Ok(fired)
    }

    /// Fires due schedules every tick until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Err(error) = self.fire_due().await {
                tracing::warn!(%error, "scheduler: cannot fire schedules");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings() {
        let every: Timing = "@every 5s".parse().unwrap();
        assert_eq!(every.next_after(12_345), Some(15_000));
        assert_eq!(every.next_after(15_000), Some(20_000));
        let hourly: Timing = "0 0 * * * *".parse().unwrap();
        // 2023-11-14T22:13:20Z → 23:00.
        assert_eq!(
            hourly.next_after(1_700_000_000_000),
            Some(1_700_002_800_000)
        );
        let five: Timing = "*/15 * * * *".parse().unwrap();
        assert_eq!(five.next_after(1_700_000_000_000), Some(1_700_000_100_000));
        for bad in [
            "",
            "@every",
            "@every 0s",
            "@every 5d",
            "@every 5é",
            "@every s",
            "* * *",
            "61 * * * * *",
            "nonsense",
        ] {
            assert!(bad.parse::<Timing>().is_err(), "{bad}");
        }
    }
}
