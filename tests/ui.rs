//! The web UI in a real browser: Debian's Chromium, driven by playwright-core (from npm, with
//! `executablePath`: no browser is downloaded) through `tests/browser/ui.mjs`, against a real
//! berth. The script walks the flows (an administrator creates a project, adds a
//! developer and a guest and a robot account; the robot pushes; the developer finds the image
//! and its pull commands; the guest sees no controls and a forged form is refused; the
//! administrator reaches the audit log, users, system robots and jobs under Administration),
//! and screenshots every page in English and Simplified Chinese under
//! `<target dir>/ui-screenshots/`. Any console error, page error, failed request or
//! unexpected error status fails the test.
//!
//! The same script runs a second time against two nodes sharing MariaDB, Redis and one blob
//! directory behind HAProxy (round robin, no stickiness): the nodes' request logs show that
//! both served the browser's pages, signed-in pages included (the session is in Redis).

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_testkit::{Haproxy, MariaDb, Redis, ensure_debian, ensure_debian_files};
use support::{ADMIN_PASSWORD, Berth, basic_client, free_port};

const USER_PASSWORD: &str = "User-pass-123";

/// The screenshots every run must take, in each language (the script may add pages still
/// being built, such as `configuration`, and names them all on its output).
const SCREENSHOTS: [&str; 15] = [
    "login",
    "projects",
    "project",
    "repository",
    "members",
    "robots",
    "logs",
    "settings",
    "audit",
    "account",
    "users",
    "system-robots",
    "jobs",
    "artifact",
    "not-found",
];

/// `playwright-core` installed from npm under /var/tmp (once per machine).
fn playwright() -> PathBuf {
    ensure_debian(&[("node", "nodejs"), ("npm", "npm")]);
    let dir = PathBuf::from("/var/tmp/berth-tests-node");
    let stamp = dir.join("installed-playwright-core-1.64");
    if !stamp.exists() {
        let script = format!(
            "set -e; mkdir -p {d}; cd {d}; [ -f package.json ] || echo '{{\"private\":true}}' > package.json; \
             npm install --no-audit --no-fund --silent playwright-core@1.64; touch {s}",
            d = dir.display(),
            s = stamp.display()
        );
        let out = Command::new("flock")
            .arg("/var/tmp/berth-tests-node.lock")
            .arg("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "npm install playwright-core failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// Chromium, the CJK fonts, node and playwright-core; returns playwright's directory.
fn browser() -> PathBuf {
    ensure_debian(&[("chromium", "chromium")]);
    ensure_debian_files(&[(
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "fonts-noto-cjk",
    )]);
    playwright()
}

/// Where the screenshots go: the cargo target directory.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("ui-screenshots")
}

/// Creates the users the script signs in as (`dev`, `guest`) through `base`, then runs
/// `ui.mjs` against `base`, expecting `nodes` nodes on the jobs page and saving screenshots in
/// `shots` (none when `None`). Asserts that every flow passed; returns the names of the
/// screenshots the script took in each language.
async fn run_flows(base: &str, shots: Option<&Path>, nodes: usize) -> Vec<String> {
    let node_dir = browser();
    let admin = basic_client("admin", ADMIN_PASSWORD);
    for name in ["dev", "guest"] {
        let r = admin
            .post(format!("{base}/api/v2.0/users"))
            .json(&serde_json::json!({"username": name, "password": USER_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}");
    }
    // ESM resolves `playwright-core` next to the script: run a copy in the npm directory, named
    // for this run (the two tests run at once).
    let script = node_dir.join(format!("ui-{}-{nodes}.mjs", std::process::id()));
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/ui.mjs"),
        &script,
    )
    .unwrap();
    if let Some(dir) = shots {
        let _ = std::fs::remove_dir_all(dir);
    }
    let shots = shots.map_or_else(String::new, |d| d.display().to_string());
    let base = base.to_owned();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking({
        let script = script.clone();
        move || {
            Command::new("node")
                .arg(&script)
                .current_dir(script.parent().unwrap())
                .env("BERTH_URL", base)
                .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("USER_PASSWORD", USER_PASSWORD)
                .env("NODES", nodes.to_string())
                .env("SHOTS", shots)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser flows failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "ui.mjs against {nodes} node(s): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let listed: Vec<String> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("screenshots: "))
        .unwrap_or_else(|| panic!("the script named no screenshots:\n{stdout}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    listed
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_in_chromium_in_both_languages() {
    let b = Berth::start_with_auth().await;
    let shots = screenshot_dir();
    let listed = run_flows(b.url("").trim_end_matches('/'), Some(&shots), 1).await;
    eprintln!("screenshots: {listed:?}");
    let mut names: Vec<&str> = SCREENSHOTS.to_vec();
    names.extend(listed.iter().map(String::as_str));
    for locale in ["en", "zh-CN"] {
        for page in &names {
            let png = shots.join(locale).join(format!("{page}.png"));
            let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
            assert!(
                bytes.starts_with(b"\x89PNG") && bytes.len() > 5_000,
                "{}",
                png.display()
            );
        }
    }
}

/// One request a node logged (its JSON log's `served` lines).
struct Served {
    method: String,
    path: String,
    status: u64,
}

/// The requests `node` served, from its JSON log.
fn served(node: &Berth) -> Vec<Served> {
    node.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "served")
        .map(|v| Served {
            method: v["span"]["method"].as_str().unwrap_or_default().to_owned(),
            path: v["span"]["path"].as_str().unwrap_or_default().to_owned(),
            status: v["fields"]["status"].as_u64().unwrap_or_default(),
        })
        .collect()
}

/// A page of the UI (not an asset, the API, the registry or a probe).
fn is_page(path: &str) -> bool {
    ![
        "/static/",
        "/v2",
        "/api/",
        "/service/",
        "/c/",
        "/healthz",
        "/readyz",
        "/metrics",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// `berth_http_requests_total` of `node` summed over the `/v2` routes.
async fn v2_requests(node: &Berth) -> u64 {
    let text = reqwest::get(node.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("berth_http_requests_total{") && l.contains("route=\"/v2"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_flows_on_two_nodes_behind_haproxy() {
    let db = tokio::task::spawn_blocking(MariaDb::start);
    let redis = tokio::task::spawn_blocking(Redis::start);
    let (db, redis) = (db.await.unwrap(), redis.await.unwrap());
    let database = db.database("berth");
    let redis_url = redis.url();
    let dirs = tempfile::tempdir().unwrap();
    let shared = dirs.path().join("blobs");
    std::fs::create_dir_all(&shared).unwrap();
    let addrs: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    // Round robin over both, every request on its own: no cookie, no stickiness.
    let lb = Haproxy::start(&addrs);
    let base = format!("http://{}", lb.addr);
    let mut nodes = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let dir = dirs.path().join(format!("node{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let host = format!("node{i}");
        let env = [
            ("BERTH_AUTH_ENABLED", "true"),
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_DATABASE_URL", database.as_str()),
            ("BERTH_REDIS_URL", redis_url.as_str()),
            ("BERTH_STORAGE_PATH", shared.to_str().unwrap()),
            ("BERTH_EXTERNAL_URL", base.as_str()),
            ("BERTH_LISTEN", addr.as_str()),
            ("BERTH_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("BERTH_LOG_FORMAT", "json"),
            ("HOSTNAME", host.as_str()),
        ];
        nodes.push(Berth::start_in(&dir, &env).await);
    }
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shared_state = nodes
            .iter()
            .all(|n| n.log().contains("shared through redis"));
        let mut ready = 0;
        for _ in 0..4 {
            if c.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                ready += 1;
            }
        }
        if shared_state && ready == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes never all became ready through HAProxy with Redis"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    run_flows(&base, None, nodes.len()).await;

    // Both nodes served the browser's pages, about half each; signed-in pages (a project's,
    // the administration's) on both, so a session opened on one node held on the other.
    let mut pages = BTreeMap::new();
    let mut signed_in = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let log = served(node);
        let got = log
            .iter()
            .filter(|s| s.method == "GET" && is_page(&s.path))
            .count();
        let private = log
            .iter()
            .filter(|s| {
                s.method == "GET"
                    && s.status == 200
                    && (s.path.starts_with("/projects/team") || s.path.starts_with("/admin/"))
            })
            .count();
        pages.insert(i, got);
        signed_in.insert(i, private);
    }
    let total: usize = pages.values().sum();
    let v2 = [v2_requests(&nodes[0]).await, v2_requests(&nodes[1]).await];
    eprintln!(
        "page GETs by node: {pages:?} of {total}; signed-in pages (200) by node: {signed_in:?}; \
         /v2 requests by node: {v2:?}"
    );
    assert!(total >= 40, "only {total} page GETs were logged");
    for (i, n) in &pages {
        assert!(
            n * 10 >= total * 3,
            "node {i} served {n} of {total} page GETs: not round robin"
        );
        assert!(
            signed_in[i] >= 10,
            "node {i} served {} signed-in pages",
            signed_in[i]
        );
    }
    // The robot's pushes and the system robot's pull went through HAProxy to both nodes.
    assert!(v2.iter().all(|n| *n >= 2), "/v2 requests by node: {v2:?}");
    drop(lb);
}
