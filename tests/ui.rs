//! The web UI in a real browser: Debian's Chromium, driven by playwright-core (from npm, with
//! `executablePath`: no browser is downloaded) through `tests/browser/ui.mjs`, against a real
//! berth. The script walks the flows (an administrator creates a project, adds a
//! developer and a guest and a robot account; the robot pushes; the developer finds the image
//! and its pull commands; the guest sees no controls and a forged form is refused), and
//! screenshots every page in English and Simplified Chinese under
//! `<target dir>/ui-screenshots/`. Any console error, page error, failed request or
//! unexpected error status fails the test.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;

use berth_testkit::{ensure_debian, ensure_debian_files};
use support::{ADMIN_PASSWORD, Berth, basic_client};

const USER_PASSWORD: &str = "User-pass-123";

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

/// Where the screenshots go: the cargo target directory.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("ui-screenshots")
}

#[tokio::test]
async fn the_web_ui_in_chromium_in_both_languages() {
    ensure_debian(&[("chromium", "chromium")]);
    ensure_debian_files(&[(
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "fonts-noto-cjk",
    )]);
    let node = playwright();
    let b = Berth::start_with_auth().await;
    let admin = basic_client("admin", ADMIN_PASSWORD);
    for name in ["dev", "guest"] {
        let r = admin
            .post(b.url("/api/v2.0/users"))
            .json(&serde_json::json!({"username": name, "password": USER_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}");
    }
    // ESM resolves `playwright-core` next to the script: run a copy in the npm directory.
    let script = node.join("ui.mjs");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/ui.mjs"),
        &script,
    )
    .unwrap();
    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .current_dir(script.parent().unwrap())
            .env("BERTH_URL", b.url("").trim_end_matches('/'))
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("USER_PASSWORD", USER_PASSWORD)
            .env("SHOTS", &shots)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the browser flows failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let shots = screenshot_dir();
    for locale in ["en", "zh-CN"] {
        for page in [
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
            "not-found",
        ] {
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
