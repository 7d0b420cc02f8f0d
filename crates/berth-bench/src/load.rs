//! The load generator: `n` tasks, each sending one request after another until the time is
//! up, recording every latency.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a run measured.
#[derive(Debug, Default)]
pub struct Load {
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed (wrong status, connection error).
    pub errors: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latencies of the successful requests, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Load {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile latency in milliseconds (0 < p < 100).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        f64::from(self.latencies_us[i.min(self.latencies_us.len() - 1)]) / 1000.0
    }
}

/// Runs `request(task, iteration)` from `tasks` tasks at once for `duration` (or, with
/// `per_task`, exactly that many times per task). A request answers whether it succeeded.
pub async fn run<F, Fut>(
    tasks: usize,
    duration: Duration,
    per_task: Option<u64>,
    request: F,
) -> Load
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::new();
    for task in 0..tasks {
        let request = request.clone();
        handles.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut latencies) = (0u64, 0u64, Vec::new());
            let mut i = 0u64;
            loop {
                match per_task {
                    Some(n) if i >= n => break,
                    None if Instant::now() >= deadline => break,
                    _ => {}
                }
                let t = Instant::now();
                if request(task, i).await {
                    ok += 1;
                    latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (ok, errors, latencies)
        }));
    }
    let mut load = Load::default();
    for h in handles {
        if let Ok((ok, errors, latencies)) = h.await {
            load.ok += ok;
            load.errors += errors;
            load.latencies_us.extend(latencies);
        }
    }
    load.elapsed = start.elapsed();
    load.latencies_us.sort_unstable();
    load
}
