//! The job service through the real binary: Harbor's `/jobservice` shapes (pools, workers,
//! queues with pause and resume, stopping a job, its log), executions and tasks, the audit log
//! purge under `/system/purgeaudit` (a dry run counts what the real run deletes), the
//! `berth jobs` CLI, and every bad input answered with a 4xx.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::api::{ADMIN, Api, Reply};

const DEV: (&str, &str) = ("dev", "Dev-pass-123");

/// `berth jobs …` on the node's database: (success, stdout + stderr).
fn cli(api: &Api, args: &[&str]) -> (bool, String) {
    let out = Command::new(support::berth_bin())
        .arg("jobs")
        .args(args)
        .env_remove("BERTH_CONFIG")
        .env_remove("BERTH_DATABASE_URL")
        .env("BERTH_DATA_DIR", api.b.data_dir())
        .env("BERTH_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Starts a job with the CLI; returns its id.
async fn run(api: &Api, kind: &str, params: Value) -> i64 {
    let (ok, out) = cli(api, &["run", kind, "--params", &params.to_string()]);
    assert!(ok, "{out}");
    let execution: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("execution "))
        .and_then(|r| r.strip_suffix(" started"))
        .unwrap()
        .parse()
        .unwrap();
    let tasks = api
        .get(&format!("/jobservice/executions/{execution}/tasks"), ADMIN)
        .await;
    tasks.body[0]["id"].as_i64().unwrap()
}

async fn until(api: &Api, job: i64, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let j = api.get(&format!("/jobservice/jobs/{job}"), ADMIN).await;
        assert_eq!(j.status, 200, "{}", j.body);
        if done(&j.body) {
            return j.body;
        }
        assert!(
            start.elapsed() < within,
            "job {job} after {within:?}: {}",
            j.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_final(j: &Value) -> bool {
    ["succeeded", "failed", "stopped"].contains(&j["status"].as_str().unwrap())
}

fn text(r: &Reply) -> &str {
    r.body.as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_job_service_in_harbors_shapes() {
    let api = Api::start().await;
    api.user(DEV.0, DEV.1).await;

    // Pools: this node, with its workers.
    let pools = api.get("/jobservice/pools", ADMIN).await;
    let pools = pools.ok(200).as_array().unwrap().clone();
    assert_eq!(pools.len(), 1, "{pools:?}");
    assert_eq!(pools[0]["concurrency"], 2);
    let pool = pools[0]["worker_pool_id"].as_str().unwrap().to_owned();

    // A kind paused: its jobs wait; resumed: they run.
    api.put(
        "/jobservice/queues/count",
        ADMIN,
        json!({"action": "pause"}),
    )
    .await
    .ok(200);
    let job = run(&api, "count", json!({"steps": 2, "step_ms": 10})).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let queues = api.get("/jobservice/queues", ADMIN).await;
    let count = queues
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["job_type"] == "count")
        .unwrap()
        .clone();
    assert_eq!(
        (&count["count"], &count["paused"]),
        (&json!(1), &json!(true)),
        "{count}"
    );
    assert!(count["latency"].as_i64().unwrap() >= 2, "{count}");
    assert_eq!(
        api.get(&format!("/jobservice/jobs/{job}"), ADMIN)
            .await
            .body["status"],
        "pending"
    );
    api.put(
        "/jobservice/queues/count",
        ADMIN,
        json!({"action": "resume"}),
    )
    .await
    .ok(200);
    let done = until(&api, job, Duration::from_secs(10), is_final).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["steps"], 2);

    // A running job: seen among the pool's workers, stopped within a heartbeat, its log kept.
    let long = run(&api, "count", json!({"steps": 600, "step_ms": 100})).await;
    until(&api, long, Duration::from_secs(10), |j| {
        j["status"] == "running"
    })
    .await;
    let workers = api
        .get(&format!("/jobservice/pools/{pool}/workers"), ADMIN)
        .await;
    assert_eq!(workers.ok(200)[0]["job_id"], long.to_string());
    api.put(
        &format!("/jobservice/jobs/{long}"),
        ADMIN,
        json!({"action": "stop"}),
    )
    .await
    .ok(200);
    let stopped = until(&api, long, Duration::from_secs(15), is_final).await;
    assert_eq!(stopped["status"], "stopped", "{stopped}");
    let log = api
        .get(&format!("/jobservice/jobs/{long}/log"), ADMIN)
        .await;
    assert_eq!(log.status, 200);
    assert!(
        text(&log).contains("[ERROR] attempt 1 ended: stopped"),
        "{}",
        text(&log)
    );

    // Executions and their tasks.
    let executions = api
        .get("/jobservice/executions?q=vendor_type%3Dcount", ADMIN)
        .await;
    let list = executions.ok(200).as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["status"], "Stopped");
    assert_eq!(list[1]["status"], "Success");
    assert_eq!(list[1]["metrics"]["success_task_count"], 1);
    assert_eq!(executions.header("x-total-count"), "2");
    let id = list[0]["id"].as_i64().unwrap();
    let log = api
        .get(
            &format!("/jobservice/executions/{id}/tasks/{long}/log"),
            ADMIN,
        )
        .await;
    assert!(text(&log).contains("stopped"), "{}", text(&log));
    api.get(
        &format!("/jobservice/executions/{id}/tasks/{job}/log"),
        ADMIN,
    )
    .await
    .error(404, "NOT_FOUND");

    // The CLI sees the same jobs.
    let (ok, out) = cli(&api, &["list", "--kind", "count"]);
    assert!(ok, "{out}");
    assert!(out.contains("2 of 2 jobs"), "{out}");
    assert!(
        out.contains("stopped") && out.contains("succeeded"),
        "{out}"
    );
    let (ok, out) = cli(&api, &["show", &job.to_string()]);
    assert!(ok && out.contains("status       succeeded"), "{out}");
    let (ok, out) = cli(&api, &["stop", "99999"]);
    assert!(!ok && out.contains("job 99999 not found"), "{out}");
    let (ok, out) = cli(&api, &["run", "count", "--params", "{\"steps\": 0}"]);
    assert!(
        !ok && out.contains("count takes 1 to 100000 steps"),
        "{out}"
    );
    let (ok, out) = cli(&api, &["run", "gc"]);
    assert!(!ok && out.contains("unknown job kind"), "{out}");
    let (ok, out) = cli(&api, &["list", "--status", "lost"]);
    assert!(!ok && out.contains("--status"), "{out}");

    // Bad input: 4xx in Harbor's envelope; administrators only.
    for (path, body) in [
        ("/jobservice/queues/nope", json!({"action": "pause"})),
        ("/jobservice/queues/count", json!({"action": "explode"})),
        ("/jobservice/queues/count", json!({"verb": "pause"})),
        ("/jobservice/jobs/abc", json!({"action": "stop"})),
        (
            &format!("/jobservice/jobs/{job}"),
            json!({"action": "restart"}),
        ),
    ] {
        api.put(path, ADMIN, body).await.error(400, "BAD_REQUEST");
    }
    api.put("/jobservice/jobs/424242", ADMIN, json!({"action": "stop"}))
        .await
        .error(404, "NOT_FOUND");
    api.get("/jobservice/jobs/424242/log", ADMIN)
        .await
        .error(404, "NOT_FOUND");
    api.get("/jobservice/executions/424242", ADMIN)
        .await
        .error(404, "NOT_FOUND");
    api.get("/jobservice/jobs?q=status%3Dlost", ADMIN)
        .await
        .error(400, "BAD_REQUEST");
    for path in [
        "/jobservice/pools",
        "/jobservice/queues",
        "/jobservice/jobs",
        "/jobservice/executions",
        "/jobservice/schedules",
        "/system/purgeaudit",
    ] {
        api.get(path, DEV).await.error(403, "FORBIDDEN");
    }
    api.put("/jobservice/queues/count", DEV, json!({"action": "pause"}))
        .await
        .error(403, "FORBIDDEN");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_purge_deletes_what_its_dry_run_counts() {
    let api = Api::start().await;
    // Old entries, as a year of use would leave (written straight into the node's database).
    let meta = api.b.meta().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let old: Vec<berth_meta::AuditEntry> = (0..2500)
        .map(|i| berth_meta::AuditEntry {
            op_time: now - 48 * 3_600_000 - i,
            project_id: None,
            user_id: None,
            principal: "user".into(),
            username: "old".into(),
            operation: if i % 5 == 0 { "create" } else { "pull" }.into(),
            resource_type: "artifact".into(),
            resource: format!("p/app:{i}"),
            client_address: "192.0.2.1".into(),
            outcome: "success".into(),
            detail: None,
        })
        .collect();
    meta.write_audit(&old).await.unwrap();
    api.post("/projects", ADMIN, json!({"project_name": "fresh"}))
        .await
        .ok(201);

    let purge = |params: Value| {
        let api = &api;
        async move {
            let r = api
                .post("/system/purgeaudit", ADMIN, json!({"parameters": params}))
                .await;
            assert_eq!(r.status, 201, "{}", r.body);
            let id: i64 = r
                .header("location")
                .rsplit('/')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let start = Instant::now();
            loop {
                let e = api.get(&format!("/system/purgeaudit/{id}"), ADMIN).await;
                if e.body["job_status"] != "Running" {
                    assert_eq!(e.body["job_status"], "Success", "{}", e.body);
                    return (id, e.body);
                }
                assert!(start.elapsed() < Duration::from_secs(20), "{}", e.body);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (dry_id, dry) =
        purge(json!({"audit_retention_hour": 24, "include_event_types": "pull", "dry_run": true}))
            .await;
    assert_eq!(dry["result"], json!({"dry_run": true, "count": 2000}));
    let log = api
        .get(&format!("/system/purgeaudit/{dry_id}/log"), ADMIN)
        .await;
    assert!(
        text(&log).contains("dry run: 2000 entries would be deleted"),
        "{}",
        text(&log)
    );
    assert_eq!(total(&api).await, 2501, "a dry run deletes nothing");
    let (_, real) = purge(json!({"audit_retention_hour": 24, "include_event_types": "pull"})).await;
    assert_eq!(real["result"], json!({"dry_run": false, "count": 2000}));
    assert_eq!(total(&api).await, 501);
    let (_, rest) = purge(json!({"audit_retention_hour": 24})).await;
    assert_eq!(rest["result"]["count"], 500);
    let left = api.get("/audit-logs", ADMIN).await;
    assert_eq!(
        left.header("x-total-count"),
        "1",
        "the fresh entry stays: {}",
        left.body
    );
    let history = api.get("/system/purgeaudit", ADMIN).await;
    let history = history.ok(200).as_array().unwrap().clone();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0]["job_name"], "PURGE_AUDIT_LOG");
    assert_eq!(history[0]["job_kind"], "MANUAL");

    for bad in [
        json!({}),
        json!({"parameters": {"audit_retention_hour": 0}}),
        json!({"parameters": {"audit_retention_hour": 1, "include_event_types": "drop"}}),
        json!({"parameters": {"audit_retention_hour": "x"}}),
        json!({"parameters": {"audit_retention_hour": 1, "bogus": true}}),
    ] {
        api.post("/system/purgeaudit", ADMIN, bad)
            .await
            .error(400, "BAD_REQUEST");
    }
    api.get("/system/purgeaudit/999", ADMIN)
        .await
        .error(404, "NOT_FOUND");
    api.get("/system/purgeaudit/x", ADMIN)
        .await
        .error(400, "BAD_REQUEST");
}

/// Entries in the audit log.
async fn total(api: &Api) -> u64 {
    api.get("/audit-logs?page_size=1", ADMIN)
        .await
        .header("x-total-count")
        .parse()
        .unwrap()
}
