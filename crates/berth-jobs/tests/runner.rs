//! The job system with real runners on a real database: retries with backoff, stops within a
//! heartbeat, a job taken over from a dead node resumes from its checkpoint and has its effect
//! once, several nodes never run one job twice, schedules fire once per occurrence.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use berth_core::{Clock, SystemClock};
use berth_jobs::{Count, Job, JobContext, JobFailure, Runner, RunnerSettings, Scheduler};
use berth_meta::{JobState, MetadataStore, NewExecution, NewJob, Page, PoolSettings};
use serde_json::{Value, json};
use tokio::sync::watch;

async fn sqlite() -> (tempfile::TempDir, MetadataStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/meta.db", dir.path().display());
    let store = MetadataStore::connect(&url, &PoolSettings::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

async fn mariadb() -> (berth_testkit::MariaDb, MetadataStore) {
    let db = tokio::task::spawn_blocking(berth_testkit::MariaDb::start)
        .await
        .unwrap();
    let store = MetadataStore::connect(&db.database("jobs"), &PoolSettings::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (db, store)
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

fn settings(node: &str, workers: u32, lease_ms: u64) -> RunnerSettings {
    RunnerSettings {
        node: node.into(),
        host: "test".into(),
        workers,
        lease: Duration::from_millis(lease_ms),
        poll: Duration::from_millis(50),
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
    }
}

/// Starts a runner; dropping the returned sender stops it cleanly, aborting the handle kills
/// it as a dead node would.
fn start(
    meta: &MetadataStore,
    jobs: Vec<Arc<dyn Job>>,
    s: RunnerSettings,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let runner = Arc::new(Runner::new(meta.clone(), clock(), jobs, s));
    (tx, tokio::spawn(runner.run(rx)))
}

async fn enqueue(meta: &MetadataStore, kind: &str, params: Value, max_attempts: u32) -> i64 {
    let now = SystemClock.unix_millis();
    let execution = meta
        .create_execution(
            &NewExecution {
                kind: kind.into(),
                trigger: "manual".into(),
                schedule: None,
                created_by: "test".into(),
            },
            &[NewJob {
                kind: kind.into(),
                params: params.to_string(),
                max_attempts,
                run_at: now,
            }],
            now,
        )
        .await
        .unwrap();
    meta.list_jobs(
        &berth_meta::JobFilter {
            execution_id: Some(execution),
            ..Default::default()
        },
        Page {
            offset: 0,
            limit: 1,
        },
    )
    .await
    .unwrap()
    .items[0]
        .id
}

async fn until(
    meta: &MetadataStore,
    id: i64,
    within: Duration,
    done: impl Fn(&berth_meta::Job) -> bool,
) -> berth_meta::Job {
    let start = Instant::now();
    loop {
        let j = meta.job(id).await.unwrap().unwrap();
        if done(&j) {
            return j;
        }
        assert!(
            start.elapsed() < within,
            "job {id} still {:?} after {within:?}: {j:?}",
            j.state
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Fails its first `fail` attempts, then succeeds.
struct Flaky {
    fail: u32,
    fatal: bool,
}

#[async_trait]
impl Job for Flaky {
    fn kind(&self) -> &'static str {
        "flaky"
    }

    async fn run(&self, ctx: &mut JobContext) -> Result<Value, JobFailure> {
        ctx.log("info", &format!("attempt {}", ctx.attempt())).await;
        if ctx.attempt() <= self.fail {
            return Err(if self.fatal {
                JobFailure::Fatal("broken for good".into())
            } else {
                JobFailure::Retry(format!("failure {}", ctx.attempt()))
            });
        }
        Ok(json!({"attempt": ctx.attempt()}))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_attempts_are_retried_with_backoff_until_they_succeed_or_run_out() {
    let (_dir, meta) = sqlite().await;
    let (_stop, _h) = start(
        &meta,
        vec![Arc::new(Flaky {
            fail: 2,
            fatal: false,
        })],
        settings("a", 2, 3000),
    );
    let id = enqueue(&meta, "flaky", json!({}), 3).await;
    let started = Instant::now();
    let j = until(&meta, id, Duration::from_secs(10), |j| j.state.is_final()).await;
    assert_eq!(
        (j.state, j.attempts, j.result.as_deref()),
        (JobState::Succeeded, 3, Some("{\"attempt\":3}"))
    );
    // Two backoffs of at least 80 ms and 160 ms (100 and 200 with -20 % jitter).
    assert!(
        started.elapsed() >= Duration::from_millis(240),
        "{:?}",
        started.elapsed()
    );
    let log = meta
        .job_log(
            id,
            Page {
                offset: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let lines: Vec<&str> = log.items.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        lines,
        [
            "attempt 1",
            "attempt 1 ended: failure 1",
            "attempt 2",
            "attempt 2 ended: failure 2",
            "attempt 3"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fatal_failures_and_exhausted_attempts_end_as_failed() {
    let (_dir, meta) = sqlite().await;
    let (_stop, _h) = start(
        &meta,
        vec![Arc::new(Flaky {
            fail: 5,
            fatal: false,
        })],
        settings("a", 1, 3000),
    );
    let id = enqueue(&meta, "flaky", json!({}), 2).await;
    let j = until(&meta, id, Duration::from_secs(10), |j| j.state.is_final()).await;
    assert_eq!(
        (j.state, j.attempts, j.error.as_deref()),
        (JobState::Failed, 2, Some("failure 2"))
    );
    let (_dir, meta) = sqlite().await;
    let (_stop, _h) = start(
        &meta,
        vec![Arc::new(Flaky {
            fail: 5,
            fatal: true,
        })],
        settings("a", 1, 3000),
    );
    let id = enqueue(&meta, "flaky", json!({}), 5).await;
    let j = until(&meta, id, Duration::from_secs(10), |j| j.state.is_final()).await;
    assert_eq!(
        (j.state, j.attempts, j.error.as_deref()),
        (JobState::Failed, 1, Some("broken for good"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_takes_effect_within_a_heartbeat() {
    let (_dir, meta) = sqlite().await;
    let (_stop, _h) = start(&meta, vec![Arc::new(Count)], settings("a", 1, 1500));
    let id = enqueue(&meta, "count", json!({"steps": 1000, "step_ms": 50}), 3).await;
    until(&meta, id, Duration::from_secs(5), |j| {
        j.state == JobState::Running
    })
    .await;
    let asked = Instant::now();
    assert_eq!(
        meta.stop_job(id, SystemClock.unix_millis()).await.unwrap(),
        Some(JobState::Running)
    );
    let j = until(&meta, id, Duration::from_secs(5), |j| j.state.is_final()).await;
    assert_eq!(j.state, JobState::Stopped);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_taken_over_from_a_dead_node_resumes_from_its_checkpoint() {
    let (_dir, meta) = sqlite().await;
    let (_stop_a, a) = start(&meta, vec![Arc::new(Count)], settings("a", 1, 1000));
    let id = enqueue(&meta, "count", json!({"steps": 20, "step_ms": 50}), 3).await;
    until(&meta, id, Duration::from_secs(5), |j| {
        j.checkpoint.as_deref().is_some_and(|c| {
            !c.contains("\"done\":0") && !c.contains("\"done\":1,") && !c.contains("\"done\":2,")
        })
    })
    .await;
    // Node a dies: its tasks end, its lease is no longer renewed.
    a.abort();
    let _ = a.await;
    let died_at = meta.job(id).await.unwrap().unwrap();
    let (_stop_b, _b) = start(&meta, vec![Arc::new(Count)], settings("b", 1, 1000));
    let j = until(&meta, id, Duration::from_secs(10), |j| j.state.is_final()).await;
    assert_eq!(j.state, JobState::Succeeded, "{j:?}");
    let result: Value = serde_json::from_str(j.result.as_deref().unwrap()).unwrap();
    assert_eq!(result["steps"], 20);
    let runs = result["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{result}");
    assert_eq!(runs[0][0], "a");
    assert_eq!(runs[1][0], "b");
    // b started where a's last checkpoint left off: every step counted once.
    let a_steps = runs[0][2].as_u64().unwrap();
    assert!(a_steps >= 3, "{result}");
    assert_eq!(runs[1][1].as_u64().unwrap(), a_steps);
    assert_eq!(a_steps + runs[1][2].as_u64().unwrap(), 20);
    assert_eq!((j.attempts, j.fence), (2, died_at.fence + 1));
    let log = meta
        .job_log(
            id,
            Page {
                offset: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert!(
        log.items
            .iter()
            .any(|l| l.message == format!("resuming at step {a_steps} on b")),
        "{:?}",
        log.items
    );
}

/// Records each run, to count effects.
struct Mark(Arc<Mutex<BTreeMap<i64, Vec<String>>>>);

#[async_trait]
impl Job for Mark {
    fn kind(&self) -> &'static str {
        "mark"
    }

    async fn run(&self, ctx: &mut JobContext) -> Result<Value, JobFailure> {
        ctx.sleep(Duration::from_millis(20)).await?;
        self.0
            .lock()
            .unwrap()
            .entry(ctx.id())
            .or_default()
            .push(ctx.node().to_owned());
        Ok(json!({"node": ctx.node()}))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_on_mariadb_never_run_one_job_twice() {
    let (_db, meta) = mariadb().await;
    let runs = Arc::new(Mutex::new(BTreeMap::new()));
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(enqueue(&meta, "mark", json!({}), 3).await);
    }
    let nodes: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            start(
                &meta,
                vec![Arc::new(Mark(runs.clone()))],
                settings(n, 4, 5000),
            )
        })
        .collect();
    for id in &ids {
        let j = until(&meta, *id, Duration::from_secs(30), |j| j.state.is_final()).await;
        assert_eq!((j.state, j.attempts), (JobState::Succeeded, 1));
    }
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 60);
    assert!(runs.values().all(|r| r.len() == 1), "{runs:?}");
    let by_node: std::collections::BTreeSet<&String> = runs.values().flatten().collect();
    assert!(
        by_node.len() >= 2,
        "the work spread over the nodes: {by_node:?}"
    );
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_fire_once_per_occurrence_across_three_nodes() {
    let (_db, meta) = mariadb().await;
    let schedulers: Vec<Scheduler> = (0..3)
        .map(|_| Scheduler::new(meta.clone(), clock(), Duration::from_millis(50)))
        .collect();
    schedulers[0]
        .ensure("tick", "count", &json!({"steps": 1}), "@every 1s")
        .await
        .unwrap();
    // The same schedule set again by another node (as every node does at start-up).
    schedulers[1]
        .ensure("tick", "count", &json!({"steps": 1}), "@every 1s")
        .await
        .unwrap();
    let started = SystemClock.unix_millis();
    let (tx, rx) = watch::channel(false);
    let tasks: Vec<_> = schedulers
        .into_iter()
        .map(|s| tokio::spawn(s.run(rx.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    tx.send(true).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let ended = SystemClock.unix_millis();
    let occurrences = (started / 1000 + 1..=ended / 1000).count() as u64;
    let executions = meta
        .list_executions(
            Some("count"),
            Page {
                offset: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert!(
        executions.total == occurrences || executions.total + 1 == occurrences,
        "{} executions for {occurrences} occurrences",
        executions.total
    );
    let mut times: Vec<i64> = executions.items.iter().map(|e| e.created_at).collect();
    times.sort_unstable();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= 500,
            "two firings {} ms apart: {times:?}",
            pair[1] - pair[0]
        );
    }
    // Missed occurrences are coalesced: a schedule whose next occurrence is long past fires
    // once, and moves on to the future.
    assert!(meta.delete_schedule("tick").await.unwrap());
    meta.put_schedule("late", "count", "{}", "@every 1h", 1_000, 0)
        .await
        .unwrap();
    let s = Scheduler::new(meta.clone(), clock(), Duration::from_millis(50));
    let fired = s.fire_due().await.unwrap();
    assert_eq!(fired.len(), 1);
    assert!(s.fire_due().await.unwrap().is_empty());
    let late = meta
        .schedules()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "late")
        .unwrap();
    assert!(late.next_at > SystemClock.unix_millis() - 1000);
    assert_eq!(late.last_at, Some(1_000));
}
