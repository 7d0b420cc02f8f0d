//! The benchmark tool itself works: a tiny run (`--smoke`) against the real reference registry
//! and the real berth binary completes every workload and reports every column.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

/// The berth binary of this build, built if it is not there yet (`cargo test -p berth-bench`).
fn berth() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_berth-bench"));
    let berth = bench.with_file_name("berth");
    if !berth.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "berth", "--bin", "berth"])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the berth binary");
    }
    assert!(berth.exists(), "{} is missing", berth.display());
    berth
}

#[test]
fn a_smoke_run_measures_every_workload_on_every_registry() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    let out = Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .arg("--smoke")
        .arg("--berth")
        .arg(berth())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for workload in [
        "GET /v2/",
        "HEAD blob",
        "GET manifest by tag",
        "GET manifest by digest",
        "token with Basic credentials",
        "push 12 MiB monolithic",
        "push 12 MiB docker",
        "push 12 MiB chunked",
        "pull 12 MiB just pushed",
        "pull 12 MiB again",
        "push 100 kB images (c=1)",
        "pull 100 kB images (c=16)",
        "tags list, a page of 100 of 30",
        "catalog, a page of 100 of 30",
    ] {
        assert!(
            stdout.contains(workload),
            "{workload} missing from:\n{stdout}"
        );
    }
    assert!(stdout.contains("| workload | metric | reference | berth | berth+token |"));
    assert!(
        stderr.contains("[") && stderr.contains("done"),
        "progress: {stderr}"
    );
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    // Every registry answered every workload it takes part in.
    for row in rows {
        assert!(row["berth_token"].is_number(), "{row}");
        if !row["workload"].as_str().unwrap().starts_with("token") {
            assert!(
                row["reference"].is_number() && row["berth"].is_number(),
                "{row}"
            );
        }
    }
    let small = rows
        .iter()
        .find(|r| r["workload"].as_str().unwrap().starts_with("GET /v2/") && r["metric"] == "req/s")
        .unwrap();
    assert!(small["berth"].as_f64().unwrap() > 0.0);
}
