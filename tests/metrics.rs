//! `GET /metrics` through the real binary: the text parses with the Prometheus client's own
//! OpenMetrics parser, a push moves the expected counters, routes are templates (never raw
//! paths), and `metrics.listen` moves the endpoint to a listener of its own.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};
use support::api::{ADMIN, Api, Backend};

/// Parses OpenMetrics text with Python's prometheus_client: every sample as
/// `name{label="value",…}` → value, in a stable order.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let venv = support::python_venv(&["prometheus_client==0.21.1"]);
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the text:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    parsed
        .into_iter()
        .map(|(k, v)| (k, v.as_f64().unwrap()))
        .collect()
}

async fn scrape(url: String) -> BTreeMap<String, f64> {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        r.headers()
    );
    parse(&r.text().await.unwrap())
}

fn value(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

const PUT_MANIFEST: &str = r#"berth_http_requests_total{method="PUT",route="/v2/{name}/manifests/{reference}",status="201"}"#;
const POST_BLOB: &str =
    r#"berth_http_requests_total{method="POST",route="/v2/{name}/blobs/uploads/",status="201"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_and_a_push_moves_the_counters() {
    let api = Api::start().await;
    api.post("/projects", ADMIN, json!({"project_name": "team"}))
        .await
        .ok(201);
    let before = scrape(api.b.url("/metrics")).await;
    assert_eq!(value(&before, PUT_MANIFEST), 0.0);
    api.push(ADMIN, "team/deep/app", "v1", "metrics").await;
    api.push(ADMIN, "team/other", "v1", "metrics-2").await;
    let pulled = support::basic_client(ADMIN.0, ADMIN.1)
        .get(api.b.url("/v2/team/other/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    // The web UI's pages count too, by their templates.
    for path in ["/login", "/projects/team/repositories/deep/app"] {
        reqwest::get(api.b.url(path)).await.unwrap();
    }
    let after = scrape(api.b.url("/metrics")).await;
    assert_eq!(
        value(
            &after,
            r#"berth_http_requests_total{method="GET",route="/login",status="200"}"#
        ),
        2.0,
        "once asked, once sent there: {after:#?}"
    );
    assert_eq!(
        value(
            &after,
            r#"berth_http_requests_total{method="GET",route="/projects/{name}/repositories/{*repository}",status="3xx"}"#
        ),
        1.0,
        "an anonymous visitor is sent to sign in: {after:#?}"
    );
    // Two manifests and four blobs pushed, across two repositories: one series each.
    assert_eq!(value(&after, PUT_MANIFEST), 2.0, "{after:#?}");
    assert_eq!(value(&after, POST_BLOB), 4.0, "{after:#?}");
    assert_eq!(
        value(
            &after,
            r#"berth_http_requests_total{method="POST",route="/api/v2.0/projects",status="201"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"berth_http_request_duration_seconds_count{route="/v2/{name}/manifests/{reference}"}"#
        ),
        3.0,
        "two pushes and a pull"
    );
    assert!(
        value(
            &after,
            r#"berth_http_received_bytes_total{route="/v2/{name}/blobs/uploads/"}"#
        ) > 1000.0
    );
    assert!(
        value(
            &after,
            r#"berth_http_sent_bytes_total{route="/v2/{name}/manifests/{reference}"}"#
        ) > 100.0
    );
    // Bounded label sets: no raw path, name or digest in any label.
    for key in after.keys() {
        assert!(
            !key.contains("team/") && !key.contains("sha256:"),
            "a raw path in a label: {key}"
        );
    }
    // Scrape-time values.
    assert!(after.contains_key("berth_upload_sessions{}"), "{after:#?}");
    assert!(value(&after, "berth_db_pool_connections{}") >= 1.0);
    assert!(
        value(&after, "berth_cache_hits_total{}") + value(&after, "berth_cache_misses_total{}")
            >= 1.0
    );
    assert_eq!(value(&after, r#"berth_jobs_pending{kind="count"}"#), 0.0);
    assert!(after.contains_key(r#"berth_jobs_pending{kind="audit-purge"}"#));
    assert!(after.contains_key("berth_audit_pull_lag_seconds{}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_can_have_a_listener_of_their_own() {
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let api = Api::start_with(
        Backend::Sqlite,
        &[("BERTH_METRICS_LISTEN", listen.as_str())],
    )
    .await;
    let main = reqwest::get(api.b.url("/metrics")).await.unwrap();
    assert_eq!(main.status(), 404, "not on the main listener");
    api.get("/ping", ADMIN).await;
    let own = scrape(format!("http://{listen}/metrics")).await;
    assert_eq!(
        value(
            &own,
            r#"berth_http_requests_total{method="GET",route="/api/v2.0/ping",status="200"}"#
        ),
        1.0,
        "{own:#?}"
    );
    // Off: nothing kept, nothing served.
    let off = Api::start_with(Backend::Sqlite, &[("BERTH_METRICS_ENABLED", "false")]).await;
    assert_eq!(
        reqwest::get(off.b.url("/metrics")).await.unwrap().status(),
        404
    );
}
