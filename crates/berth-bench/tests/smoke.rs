//! The benchmark tool itself works: a tiny run (`--smoke`) against the real reference registry
//! and the real berth binary completes every workload and reports every column, the baseline's
//! too (`--baseline` with the same binary: every workload runs on a baseline as well), the web
//! UI's pages included (Berth with authentication only, and a table of their own).

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
    let berth = berth();
    let out = Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .arg("--smoke")
        .arg("--berth")
        .arg(&berth)
        .arg("--baseline")
        .arg(&berth)
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
        "UI seed: 60 artifacts",
        "UI /projects (admin)",
        "UI /projects/bench-big/repositories/app (admin)",
        "UI /projects/bench-big/repositories/app?page=3 (developer)",
        "UI /admin/audit (admin)",
        "Web UI pages on berth+token",
        "Web UI pages on baseline+token",
    ] {
        assert!(
            stdout.contains(workload),
            "{workload} missing from:\n{stdout}"
        );
    }
    assert!(stdout.contains(
        "| workload | metric | reference | berth | berth+token | baseline | baseline+token | berth vs reference | berth vs baseline | target |"
    ));
    assert!(
        stdout.contains("; baseline: "),
        "the run says what the baseline is:\n{stdout}"
    );
    assert!(
        stderr.contains("[") && stderr.contains("done"),
        "progress: {stderr}"
    );
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    // Every registry answered every workload it takes part in, the baseline as Berth.
    for row in rows {
        assert!(
            row["berth_token"].is_number() && row["baseline_token"].is_number(),
            "{row}"
        );
        let workload = row["workload"].as_str().unwrap();
        // Tokens and the UI's pages are measured with authentication only.
        if !workload.starts_with("token") && !workload.starts_with("UI ") {
            assert!(
                row["reference"].is_number()
                    && row["berth"].is_number()
                    && row["baseline"].is_number(),
                "{row}"
            );
        }
    }
    // Every row of the table has its baseline columns and a comparison with the baseline;
    // server CPU as a change in percent.
    // The main table: from its head to the first line that is not a row (the pages' own
    // tables follow it).
    let table: Vec<Vec<&str>> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("| workload"))
        .skip(2)
        .take_while(|l| l.starts_with("| "))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    assert_eq!(table.len(), rows.len(), "{stdout}");
    for cells in &table {
        assert_eq!(cells.len(), 10, "{cells:?}");
        let (berth, baseline, versus) = (cells[3], cells[5], cells[8]);
        assert!(
            baseline != "–" || berth == "–",
            "baseline missing: {cells:?}"
        );
        assert!(cells[6] != "–", "baseline+token missing: {cells:?}");
        if cells[1].starts_with("server CPU") {
            // CPU can round to zero ticks in so short a run; then there is nothing to compare.
            assert!(
                versus.ends_with(" % CPU") || versus == "–",
                "CPU against the baseline: {cells:?}"
            );
        } else if !cells[1].ends_with("ms") {
            assert!(
                versus.ends_with("× better") || versus.ends_with("× worse"),
                "against the baseline: {cells:?}"
            );
        }
    }
    assert!(
        table.iter().any(|c| c[8].ends_with(" % CPU")),
        "no CPU row compared with the baseline:\n{stdout}"
    );
    // Every page was checked and timed, and its queries counted.
    let queries = rows
        .iter()
        .filter(|r| r["metric"] == "DB queries/req")
        .collect::<Vec<_>>();
    assert!(queries.len() >= 14, "{queries:?}");
    for row in queries {
        assert!(row["berth_token"].as_f64().unwrap() >= 1.0, "{row}");
    }
    assert!(
        rows.iter()
            .any(|r| r["metric"] == "p99 ms" && r["target"] == "≤ 50.0"),
        "the pages' target: {rows:?}"
    );
    let small = rows
        .iter()
        .find(|r| r["workload"].as_str().unwrap().starts_with("GET /v2/") && r["metric"] == "req/s")
        .unwrap();
    assert!(small["berth"].as_f64().unwrap() > 0.0);
}
