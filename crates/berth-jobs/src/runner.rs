//! The worker pool of one node: claims due jobs, runs them with heartbeats, records how each
//! attempt ended.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_core::Clock;
use berth_meta::{Heartbeat, Job as JobRow, JobEnd, MetadataStore};
use tokio::sync::{Semaphore, watch};

use crate::context::{JobContext, StopSignal};
use crate::{Job, JobFailure};

/// How a node runs jobs.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// This node's id (unique in the cluster).
    pub node: String,
    /// The host name shown in the job service's pools.
    pub host: String,
    /// Jobs run at once on this node.
    pub workers: u32,
    /// How long a claim holds without a heartbeat; heartbeats come every third of it.
    pub lease: Duration,
    /// How often the node looks for due jobs.
    pub poll: Duration,
    /// The first retry's delay; each further one doubles it (with ±20 % jitter), up to
    /// `max_backoff`.
    pub backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            node: "node".into(),
            host: "localhost".into(),
            workers: 2,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

/// The worker pool of one node.
pub struct Runner {
    meta: MetadataStore,
    clock: Arc<dyn Clock>,
    kinds: HashMap<&'static str, Arc<dyn Job>>,
    settings: RunnerSettings,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("node", &self.settings.node)
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A number in `[0, 1)` from the system's randomness.
fn unit_random() -> f64 {
    // The low 53 bits: random in a v4 UUID (the version and variant bits are in the others).
    (uuid::Uuid::new_v4().as_u64_pair().1 & ((1u64 << 53) - 1)) as f64 / (1u64 << 53) as f64
}

impl Runner {
    /// A pool running `jobs` (one per kind).
    pub fn new(
        meta: MetadataStore,
        clock: Arc<dyn Clock>,
        jobs: Vec<Arc<dyn Job>>,
        settings: RunnerSettings,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(settings.workers.max(1) as usize));
        Self {
            meta,
            clock,
            kinds: jobs.into_iter().map(|j| (j.kind(), j)).collect(),
            settings,
            slots,
        }
    }

    /// The kinds this pool runs.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<_> = self.kinds.keys().copied().collect();
        k.sort_unstable();
        k
    }

    /// The delay before attempt `attempt + 1`, after `attempt` failed.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.settings.backoff.as_secs_f64()
            * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
        let capped = base.min(self.settings.max_backoff.as_secs_f64());
        Duration::from_secs_f64(capped * (0.8 + 0.4 * unit_random()))
    }

    /// Claims and runs jobs until `shutdown` turns true; then asks running jobs to stop and
    /// hands them back to the queue, waiting for them at most `lease`.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut running = tokio::task::JoinSet::new();
        let signals: Arc<std::sync::Mutex<HashMap<i64, Arc<StopSignal>>>> = Arc::default();
        let mut poll = tokio::time::interval(self.settings.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = poll.tick() => {}
                _ = shutdown.changed() => break,
                Some(_) = running.join_next(), if !running.is_empty() => continue,
            }
            let now = self.clock.unix_millis();
            if let Err(error) = self
                .meta
                .job_node_heartbeat(
                    &self.settings.node,
                    &self.settings.host,
                    self.settings.workers,
                    now,
                )
                .await
            {
                tracing::warn!(%error, "job system: cannot report this node");
                continue;
            }
            let free = self.slots.available_permits();
            if free == 0 {
                continue;
            }
            let kinds = self.kinds();
            let claimed = match self
                .meta
                .claim_jobs(
                    &self.settings.node,
                    &kinds,
                    now,
                    now + ms(self.settings.lease),
                    u32::try_from(free).unwrap_or(u32::MAX),
                )
                .await
            {
                Ok(c) => c,
                Err(error) => {
                    tracing::warn!(%error, "job system: cannot claim jobs");
                    continue;
                }
            };
            for job in claimed {
                let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                    break;
                };
                let signal = Arc::new(StopSignal::default());
                signals
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(job.id, signal.clone());
                let runner = self.clone();
                let signals = signals.clone();
                running.spawn(async move {
                    let id = job.id;
                    runner.run_one(job, signal).await;
                    signals
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    drop(permit);
                });
            }
        }
        for signal in signals.lock().unwrap_or_else(|p| p.into_inner()).values() {
            signal.release();
        }
        let drained = tokio::time::timeout(self.settings.lease, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("job system: jobs still running at shutdown; their leases will expire");
        }
    }

    /// Runs one claimed job with heartbeats, and records how the attempt ended.
    async fn run_one(self: &Arc<Self>, job: JobRow, signal: Arc<StopSignal>) {
        let Some(kind) = self.kinds.get(job.kind.as_str()).cloned() else {
            return;
        };
        let (id, fence, attempts, max_attempts) =
            (job.id, job.fence, job.attempts, job.max_attempts);
        tracing::info!(job = id, kind = %job.kind, attempt = attempts, "job started");
        let params = serde_json::from_str(&job.params).unwrap_or(serde_json::Value::Null);
        let mut ctx = JobContext {
            meta: self.meta.clone(),
            clock: self.clock.clone(),
            job,
            params,
            node: self.settings.node.clone(),
            signal: signal.clone(),
        };
        let heartbeat = {
            let (meta, clock, signal) = (self.meta.clone(), self.clock.clone(), signal.clone());
            let lease = self.settings.lease;
            AbortOnDrop(tokio::spawn(async move {
                let mut tick = tokio::time::interval(lease / 3);
                tick.tick().await;
                // Until when the lease is surely ours: past it (less a third, for clocks)
                // without a renewal, another node may have the job, so this run stops.
                let mut held_until = clock.unix_millis() + ms(lease);
                loop {
                    tick.tick().await;
                    let now = clock.unix_millis();
                    match meta.heartbeat_job(id, fence, now, now + ms(lease)).await {
                        Ok(Heartbeat::Held { stop }) => {
                            held_until = now + ms(lease);
                            if stop {
                                signal.stop();
                            }
                        }
                        Ok(Heartbeat::Lost) => {
                            signal.lost();
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(job = id, %error, "job heartbeat failed");
                            if clock.unix_millis() >= held_until - ms(lease / 3) {
                                signal.lost();
                                return;
                            }
                        }
                    }
                }
            }))
        };
        // A panicking job is a failed attempt, not a dead worker.
        let outcome = {
            let kind = kind.clone();
            let mut task = AbortOnDrop(tokio::spawn(async move {
                let r = kind.run(&mut ctx).await;
                (r, ctx)
            }));
            match (&mut task.0).await {
                Ok((r, ctx)) => {
                    if let Err(e) = &r
                        && !matches!(e, JobFailure::LeaseLost)
                    {
                        ctx.log("error", &format!("attempt {attempts} ended: {e}"))
                            .await;
                    }
                    r
                }
                Err(e) => Err(JobFailure::Fatal(format!("the job panicked: {e}"))),
            }
        };
        drop(heartbeat);
        let now = self.clock.unix_millis();
        let end = match outcome {
            Ok(result) => JobEnd::Succeeded(result.to_string()),
            Err(JobFailure::Retry(e)) if attempts < max_attempts => JobEnd::Failed {
                error: e,
                retry_at: Some(now + ms(self.backoff(attempts))),
            },
            Err(JobFailure::Retry(e) | JobFailure::Fatal(e)) => JobEnd::Failed {
                error: e,
                retry_at: None,
            },
            Err(JobFailure::Stopped) => JobEnd::Stopped,
            Err(JobFailure::Released) => JobEnd::Released,
            Err(JobFailure::LeaseLost) => {
                tracing::warn!(job = id, "job lease lost; another node has it");
                return;
            }
        };
        match self.meta.finish_job(id, fence, &end, now).await {
            Ok(true) => tracing::info!(job = id, end = ?end_name(&end), "job attempt ended"),
            Ok(false) => tracing::warn!(job = id, "job lease lost before its end was written"),
            Err(error) => tracing::warn!(job = id, %error, "could not record a job's end"),
        }
    }
}

fn end_name(end: &JobEnd) -> &'static str {
    match end {
        JobEnd::Succeeded(_) => "succeeded",
        JobEnd::Failed {
            retry_at: Some(_), ..
        } => "retry",
        JobEnd::Failed { retry_at: None, .. } => "failed",
        JobEnd::Stopped => "stopped",
        JobEnd::Released => "released",
    }
}

/// A task that ends when its handle is dropped: a run aborted with its node (or its test)
/// leaves no heartbeat renewing a lease behind.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
