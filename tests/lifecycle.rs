//! The process as operators meet it: the CLI, start-up on defaults, SIGTERM, and SIGKILL in the
//! middle of uploads (no partial blob is ever visible, and the server starts cleanly after).

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use support::{Berth, berth_bin, random_bytes, sha256, status_of};

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(berth_bin())
        .args(args)
        .env_remove("BERTH_CONFIG")
        .env_remove("BERTH_LISTEN")
        .output()
        .unwrap()
}

#[test]
fn cli_help_for_every_command() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["config", "check", "--help"],
        &["config", "--help"],
    ] {
        let out = berth(args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: berth"),
            "{args:?}"
        );
    }
    let out = berth(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_check_reports_problems_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:5999\"\n[storage]\nfsync = false\n",
    )
    .unwrap();
    let out = berth(&["config", "check", "--config", good.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("configuration OK") && stdout.contains("127.0.0.1:5999"),
        "{stdout}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"localhost\"\ncolour = \"blue\"\n[log]\nformat = \"yaml\"\n",
    )
    .unwrap();
    let out = berth(&["config", "check", "--config", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in [
        "unknown key `colour`",
        "listen = \"localhost\"",
        "log.format = \"yaml\"",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in {stderr}"
        );
    }
    let out = berth(&["config", "check", "--config", "/nonexistent/berth.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/berth.toml"));
    // The example configuration in deploy/ is valid.
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/berth.example.toml"
    );
    assert!(
        berth(&["config", "check", "--config", example])
            .status
            .success()
    );
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(berth_bin())
        .arg("migrate")
        .env("BERTH_DATA_DIR", dir.path())
        .env_remove("BERTH_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("berth.db").exists());
    // Unusable database URL: a one-line reason naming the setting.
    let out = Command::new(berth_bin())
        .arg("migrate")
        .env("BERTH_DATABASE_URL", "sqlite:///nonexistent-dir/x/berth.db")
        .env("BERTH_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("database.url"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn admin_create_reset_and_list() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let admin = |args: &[&str], stdin: &str| {
        let mut child = Command::new(berth_bin())
            .arg("admin")
            .args(args)
            .env("BERTH_DATA_DIR", dir.path())
            .env_remove("BERTH_DATABASE_URL")
            .env_remove("BERTH_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = admin(&["create", "--username", "root"], "first-pass\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("created administrator root"));
    let (code, _, err) = admin(&["create", "--username", "root"], "again\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("exists already"), "{err}");
    let (code, _, err) = admin(&["create", "--username", "other"], "");
    assert_eq!(code, Some(1));
    assert!(err.contains("no password"), "{err}");
    assert_eq!(admin(&["list"], "").1, "root\n");
    assert_eq!(
        admin(&["reset-password", "--username", "root"], "second-pass\n").0,
        Some(0)
    );
    let (code, _, err) = admin(&["reset-password", "--username", "ghost"], "x\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("no user ghost"), "{err}");
}

#[test]
fn keys_list_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let keys = |args: &[&str]| {
        let out = Command::new(berth_bin())
            .arg("keys")
            .args(args)
            .env("BERTH_DATA_DIR", dir.path())
            .env_remove("BERTH_DATABASE_URL")
            .env_remove("BERTH_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = keys(&["rotate", "--grace-secs", "0"]);
    assert_eq!(code, Some(0), "{err}");
    let first = out
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    let (_, out, _) = keys(&["rotate", "--grace-secs", "3600"]);
    let second = out
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    let (code, list, _) = keys(&["list"]);
    assert_eq!(code, Some(0));
    let line = |kid: &str| {
        list.lines()
            .find(|l| l.starts_with(kid))
            .unwrap_or_else(|| panic!("{kid} not in {list}"))
            .to_owned()
    };
    assert!(line(&first).contains(" signs "), "{list}");
    assert!(line(&second).contains(" pending "), "{list}");
    assert!(
        !line(&first).trim_end().ends_with('-'),
        "the old key is scheduled to retire: {list}"
    );
    // A key file without its certificate is refused by the CLI.
    let (code, _, err) = keys(&["rotate", "--key-file", "/nonexistent"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = keys(&[
        "rotate",
        "--key-file",
        "/nonexistent/k",
        "--cert-file",
        "/nonexistent/c",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot read /nonexistent/k"), "{err}");
}

#[tokio::test]
async fn readyz_reports_a_broken_blob_store() {
    let b = Berth::start().await;
    let c = reqwest::Client::new();
    assert_eq!(status_of(c.get(b.url("/readyz"))).await, 200);
    // The store's probe directory replaced by a file: writes fail, as on a full or lost mount.
    let tmp = b.data_dir.join("storage/tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let r = c.get(b.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["database"]["ok"], true);
    assert_eq!(v["storage"]["ok"], false);
    assert!(
        v["storage"]["error"]
            .as_str()
            .unwrap()
            .contains("readiness probe"),
        "{v}"
    );
    // The management API's health says the same, in Harbor's shape.
    let v: serde_json::Value = c
        .get(b.url("/api/v2.0/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "unhealthy");
    assert_eq!(v["components"][1]["name"], "storage");
    assert_eq!(v["components"][1]["status"], "unhealthy");
    assert_eq!(v["components"][0]["status"], "healthy");
    // Liveness is unaffected, and readiness comes back with the storage.
    assert_eq!(status_of(c.get(b.url("/healthz"))).await, 200);
    std::fs::remove_file(&tmp).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    assert_eq!(status_of(c.get(b.url("/readyz"))).await, 200);
}

#[tokio::test]
async fn sigterm_stops_cleanly() {
    let mut b = Berth::start().await;
    let status = b.terminate();
    assert!(status.success(), "{status}: {}", b.log());
    assert!(b.log().contains("berth stopped"));
}

/// Streams `head` then stalls forever: the upload is in flight when the server is killed.
fn stalled_body(head: Vec<u8>) -> reqwest::Body {
    let stream = futures_util::stream::unfold(Some(head), |state| async move {
        match state {
            Some(bytes) => Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), None)),
            None => {
                futures_util::future::pending::<()>().await;
                None
            }
        }
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn sigkill_during_uploads_leaves_nothing_partial_and_restarts_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Berth::start_in(dir.path(), &[]).await;
    let c = reqwest::Client::new();
    let data = random_bytes(8 << 20, 42);
    let d = sha256(&data);

    // A session whose PATCH is cut off, and a single-request upload that is cut off.
    let r = c.post(b.url("/v2/k/blobs/uploads/")).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let patch = tokio::spawn(
        c.patch(b.url(&loc))
            .body(stalled_body(data[..5 << 20].to_vec()))
            .send(),
    );
    let post = tokio::spawn(
        c.post(b.url(&format!("/v2/k/blobs/uploads/?digest={d}")))
            .body(stalled_body(data[..3 << 20].to_vec()))
            .send(),
    );
    // Wait until the server has most of the bytes on disk (each writer buffers up to 1 MiB).
    let uploads = dir.path().join("storage/uploads");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let written: u64 = std::fs::read_dir(&uploads)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        if written >= 6 << 20 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the uploads never reached the server ({written} bytes on disk)"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    b.kill();
    assert!(patch.await.unwrap().is_err());
    assert!(post.await.unwrap().is_err());

    // Restart on the same data: healthy, ready, and the blob is not visible.
    let b = Berth::start_in(dir.path(), &[]).await;
    assert_eq!(status_of(c.get(b.url("/readyz"))).await, 200);
    let r = c
        .get(b.url(&format!("/v2/k/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .head(b.url(&format!("/v2/k/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        !dir.path()
            .join("storage/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .exists()
    );
    // The interrupted session recorded nothing of the PATCH that never finished.
    let r = c.get(b.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-0");
    // The client resumes from the recorded offset; the stale bytes are discarded.
    let r = c
        .patch(b.url(&loc))
        .header("content-range", format!("0-{}", data.len() - 1))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let r = c
        .put(b.url(&format!("{loc}?digest={d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let got = c
        .get(b.url(&format!("/v2/k/blobs/{d}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(got == data, "blob differs after resume");
}

#[tokio::test]
async fn a_fresh_start_requires_login_and_writes_a_generated_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    // An empty BERTH_AUTH_ENABLED leaves the default (on) in place.
    let b = Berth::start_in(dir.path(), &[("BERTH_AUTH_ENABLED", "")]).await;
    let c = reqwest::Client::new();
    let r = c.get(b.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=")
    );
    let file = dir.path().join("initial-admin-password");
    let password = std::fs::read_to_string(&file).unwrap();
    let password = password.trim();
    assert_eq!(password.len(), 32);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!b.log().contains(password), "the password is never logged");
    assert!(b.log().contains("initial-admin-password"));
    let r = c
        .get(b.url("/api/v2.0/users/current"))
        .basic_auth("admin", Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["sysadmin_flag"], true);
    // A restart keeps the account and does not write a new password.
    drop(b);
    std::fs::remove_file(&file).unwrap();
    let b = Berth::start_in(dir.path(), &[("BERTH_AUTH_ENABLED", "")]).await;
    assert!(!file.exists());
    let r = c
        .get(b.url("/api/v2.0/users/current"))
        .basic_auth("admin", Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn sessions_need_authentication_to_be_on() {
    let b = Berth::start().await;
    let c = reqwest::Client::new();
    let r = c
        .post(b.url("/c/login"))
        .form(&[("principal", "admin"), ("password", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("set-cookie").is_none());
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("authentication is disabled"),
        "{body}"
    );
    // Logging out without a session is harmless and clears the cookies.
    let r = c.get(b.url("/c/log_out")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}
