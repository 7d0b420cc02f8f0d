//! `berth-bench`: Berth against the reference registry (Debian's docker-registry, CNCF
//! Distribution 2.8.2), side by side in one run on this machine. It starts the reference,
//! Berth with authentication off and Berth with token authentication on, each on its own
//! port and data directory with filesystem storage, runs the same workloads against each,
//! and prints a table with both results and their ratio. Server CPU comes from
//! /proc/<pid>/stat (user + system), peak RSS from /proc/<pid>/status (reset per workload).
//!
//! With `--baseline <berth binary>` (e.g. the previous release) it also starts that binary
//! twice, set up exactly as the two Berth servers, runs every Berth workload on it too, and
//! adds its columns and a "berth vs baseline" ratio (server CPU as a change in percent).
//!
//! The `pages` workload (module `pages`) measures the web UI instead, on a Berth of its own
//! seeded to the issue's sizes (10,000 projects and repositories, 100,000 artifacts in one
//! repository): there is no reference counterpart, so its rows state the 50 ms target.
//!
//! `scripts/bench [--quick]` builds release binaries and runs it; docs/benchmarks.md has the
//! latest table.

mod load;
mod pages;
mod registry;
mod report;
mod servers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use reqwest::Method;

use registry::{Flow, Registry, digest, random_bytes};
use report::{Better, Report, Target};
use servers::{Kind, Server};

/// Benchmarks Berth against the reference registry, side by side.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// A reduced run (smaller blobs, fewer images and tags, shorter loads): under two minutes.
    #[arg(long)]
    quick: bool,
    /// A tiny run that only checks every workload works (the tool's own test).
    #[arg(long, hide = true)]
    smoke: bool,
    /// The berth binary (default: `berth` next to this program).
    #[arg(long)]
    berth: Option<PathBuf>,
    /// A second berth binary (e.g. the previous release) to run side by side: started twice
    /// like the Berth servers (auth off: "baseline", token auth: "baseline+token"), with
    /// the same configuration and every workload; adds a "berth vs baseline" column.
    #[arg(long, value_name = "PATH")]
    baseline: Option<PathBuf>,
    /// A configuration file for both Berth servers (`berth serve --config`), to measure
    /// settings other than the defaults; the baseline servers get it too.
    #[arg(long)]
    berth_config: Option<PathBuf>,
    /// Run only these workloads (comma-separated): small, blob, image, token, list, pages.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The pages workload's sizes instead of the run's: projects, repositories, artifacts
    /// in the big repository (e.g. `10000,10000,100000`, the full run's).
    #[arg(long, value_delimiter = ',', value_name = "P,R,A")]
    pages_sizes: Vec<usize>,
    /// Keep the pages workload's data directory (SQLite database and logs) and say where.
    #[arg(long)]
    keep_pages_data: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// How much of each workload to do.
struct Plan {
    small: Duration,
    connections: usize,
    blob_bytes: usize,
    /// (image size, images per task at concurrency 1, images per task at concurrency 16).
    images: Vec<(usize, u64, u64)>,
    token: Duration,
    list_entries: usize,
    list: Duration,
    pages: pages::Sizes,
}

impl Plan {
    fn new(quick: bool, smoke: bool) -> Self {
        const MB: usize = 1_000_000;
        if smoke {
            Self {
                small: Duration::from_millis(200),
                connections: 8,
                blob_bytes: 12 << 20,
                images: vec![(MB / 10, 2, 1)],
                token: Duration::from_millis(200),
                list_entries: 30,
                list: Duration::from_millis(200),
                pages: pages::Sizes::new(quick, smoke),
            }
        } else if quick {
            Self {
                small: Duration::from_secs(2),
                connections: 64,
                blob_bytes: 256 << 20,
                images: vec![(MB, 16, 2), (10 * MB, 4, 1)],
                token: Duration::from_secs(2),
                list_entries: 1000,
                list: Duration::from_secs(2),
                pages: pages::Sizes::new(quick, smoke),
            }
        } else {
            Self {
                small: Duration::from_secs(10),
                connections: 64,
                blob_bytes: 1 << 30,
                images: vec![(MB, 50, 8), (10 * MB, 20, 2), (100 * MB, 4, 1)],
                token: Duration::from_secs(10),
                list_entries: 10_000,
                list: Duration::from_secs(5),
                pages: pages::Sizes::new(quick, smoke),
            }
        }
    }
}

/// A registry under test: its process and a client for it.
struct Subject {
    server: Server,
    registry: Registry,
}

/// Progress on standard error, with the time since the start.
struct Progress(Instant);

impl Progress {
    fn say(&self, what: impl std::fmt::Display) {
        eprintln!("[{:>6.1} s] {what}", self.0.elapsed().as_secs_f64());
    }
}

/// Server CPU seconds and peak RSS (MiB) while `work` runs.
async fn measured<T>(server: &Server, work: impl std::future::Future<Output = T>) -> (T, f64, f64) {
    server.reset_peak_rss();
    let cpu = server.cpu_seconds();
    let out = work.await;
    // The kernel accounts CPU time at tick granularity; let the last tick land.
    tokio::time::sleep(Duration::from_millis(20)).await;
    (out, server.cpu_seconds() - cpu, server.peak_rss_mib())
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

fn size_label(bytes: usize) -> String {
    if bytes >= 1 << 30 {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1_000_000 {
        format!("{} MB", bytes / 1_000_000)
    } else {
        format!("{} kB", bytes / 1000)
    }
}

/// The path of the `i`-th request of task `t`.
type PathFor = Box<dyn Fn(usize, u64) -> String + Send + Sync>;

/// A pseudo-random index below `n` for `(task, i)`.
fn pick(task: usize, i: u64, n: usize) -> usize {
    let bytes = random_bytes(8, (task as u64) << 32 ^ i);
    let v = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
    (v % n.max(1) as u64) as usize
}

/// An image's config and layer, made before the clock starts.
struct Image {
    config: (Bytes, String),
    layer: (Bytes, String),
}

impl Image {
    fn new(size: usize, seed: u64) -> Self {
        let config = Bytes::from(format!(
            r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#
        ));
        let layer = Bytes::from(random_bytes(size, seed));
        Self {
            config: (config.clone(), digest(&config)),
            layer: (layer.clone(), digest(&layer)),
        }
    }

    async fn push(&self, r: &Registry, repo: &str, tag: &str) -> anyhow::Result<()> {
        r.push_blob(repo, &self.config.0, &self.config.1, Flow::Monolithic)
            .await?;
        r.push_blob(repo, &self.layer.0, &self.layer.1, Flow::Monolithic)
            .await?;
        let m = registry::image_manifest(
            (&self.config.1, self.config.0.len()),
            &[(&self.layer.1, self.layer.0.len())],
        );
        r.push_manifest(repo, tag, &m).await
    }
}

/// Records a request load's rate, median and p99 latency and server CPU per request.
fn add_requests(
    report: &mut Report,
    workload: &str,
    kind: Kind,
    l: &load::Load,
    cpu_us: f64,
    p99_target: Option<Target>,
    cpu_target: Option<Target>,
) {
    report.add(workload, "req/s", Better::Higher, kind, l.rate(), None);
    report.add(
        workload,
        "p50 ms",
        Better::Lower,
        kind,
        l.percentile_ms(50.0),
        None,
    );
    report.add(
        workload,
        "p99 ms",
        Better::Lower,
        kind,
        l.percentile_ms(99.0),
        p99_target,
    );
    report.add(
        workload,
        "server CPU-µs/req",
        Better::Lower,
        kind,
        cpu_us,
        cpu_target,
    );
}

/// GET /v2/, HEAD blob, GET manifest by tag and by digest, at `connections` connections.
async fn small_requests(
    subjects: &[Subject],
    plan: &Plan,
    report: &mut Report,
    progress: &Progress,
) -> anyhow::Result<()> {
    let image = Image::new(1 << 20, 1);
    let manifest = registry::image_manifest(
        (&image.config.1, image.config.0.len()),
        &[(&image.layer.1, image.layer.0.len())],
    );
    let manifest_digest = digest(&manifest);
    let endpoints = [
        ("GET /v2/", Method::GET, "/v2/".to_owned()),
        (
            "HEAD blob",
            Method::HEAD,
            format!("/v2/bench/small/blobs/{}", image.layer.1),
        ),
        (
            "GET manifest by tag",
            Method::GET,
            "/v2/bench/small/manifests/v1".to_owned(),
        ),
        (
            "GET manifest by digest",
            Method::GET,
            format!("/v2/bench/small/manifests/{manifest_digest}"),
        ),
    ];
    for s in subjects {
        image.push(&s.registry, "bench/small", "v1").await?;
        let r = s
            .registry
            .with_token(&["repository:bench/small:pull".to_owned()])
            .await?;
        let mut peak = 0f64;
        for (name, method, path) in &endpoints {
            let call = {
                let (r, method, path) = (r.clone(), method.clone(), path.clone());
                move |_: usize, _: u64| {
                    let request = r
                        .request(method.clone(), &path)
                        .header("accept", registry::MANIFEST_TYPE);
                    async move {
                        match request.send().await {
                            Ok(resp) => resp.status() == 200 && resp.bytes().await.is_ok(),
                            Err(_) => false,
                        }
                    }
                }
            };
            let call = Arc::new(call);
            // Connections up first, outside the measurement.
            let warm = call.clone();
            load::run(
                plan.connections,
                Duration::from_millis(300),
                None,
                move |t, i| warm(t, i),
            )
            .await;
            let run = call.clone();
            let (l, cpu, rss) = measured(
                &s.server,
                load::run(plan.connections, plan.small, None, move |t, i| run(t, i)),
            )
            .await;
            peak = peak.max(rss);
            let workload = format!("{name} (c={})", plan.connections);
            let cpu_us = cpu * 1e6 / l.ok.max(1) as f64;
            progress.say(format_args!(
                "{workload} on {}: {:.0} req/s, p99 {:.2} ms, {cpu_us:.1} CPU-µs/req, {} errors",
                s.server.kind.label(),
                l.rate(),
                l.percentile_ms(99.0),
                l.errors
            ));
            anyhow::ensure!(
                l.ok > 0,
                "{workload} on {}: every request failed",
                s.server.kind.label()
            );
            let token = |t: Target| Some(t.for_kinds(&[Kind::BerthToken]));
            add_requests(
                report,
                &workload,
                s.server.kind,
                &l,
                cpu_us,
                token(Target::AtMost(5.0)),
                token(Target::AtMost(30.0)),
            );
        }
        report.add(
            "small requests",
            "peak RSS MiB",
            Better::Lower,
            s.server.kind,
            peak,
            None,
        );
    }
    Ok(())
}

/// Records one stream's MiB/s, server CPU-s per GiB and peak RSS, with Berth's targets for
/// each, and says them.
fn add_stream(
    report: &mut Report,
    workload: &str,
    kind: Kind,
    (rate, per_gib, rss): (f64, f64, f64),
    targets: [Option<Target>; 3],
    progress: &Progress,
) {
    progress.say(format_args!(
        "{workload} on {}: {rate:.0} MiB/s, {per_gib:.2} CPU-s/GiB, {rss:.0} MiB RSS",
        kind.label()
    ));
    let berth = [Kind::Berth, Kind::BerthToken];
    let [rate_target, cpu_target, rss_target] = targets.map(|t| t.map(|t| t.for_kinds(&berth)));
    report.add(workload, "MiB/s", Better::Higher, kind, rate, rate_target);
    report.add(
        workload,
        "server CPU-s/GiB",
        Better::Lower,
        kind,
        per_gib,
        cpu_target,
    );
    report.add(
        workload,
        "peak RSS MiB",
        Better::Lower,
        kind,
        rss,
        rss_target,
    );
}

/// One stream: a blob pushed each way, then pulled.
async fn blobs(
    subjects: &[Subject],
    plan: &Plan,
    report: &mut Report,
    progress: &Progress,
) -> anyhow::Result<()> {
    let mut data = random_bytes(plan.blob_bytes, 2);
    let size = size_label(plan.blob_bytes);
    let flows = [
        ("monolithic (POST, PUT)", Flow::Monolithic),
        ("docker (POST, streamed PATCH, PUT)", Flow::Docker),
        ("chunked (10 MiB PATCHes)", Flow::Chunked(10 << 20)),
    ];
    let reference_rate =
        |report: &Report, workload: &str| report.value(workload, "MiB/s", Kind::Reference);
    for (k, s) in subjects.iter().enumerate() {
        let r = s
            .registry
            .with_token(&["repository:bench/big:pull,push".to_owned()])
            .await?;
        let mut last = String::new();
        for (f, (name, flow)) in flows.iter().enumerate() {
            // A different blob each time: nothing is deduplicated.
            data[..8].copy_from_slice(&((k * 16 + f) as u64).to_le_bytes());
            let blob = Bytes::copy_from_slice(&data);
            let d = digest(&blob);
            let start = Instant::now();
            let (pushed, cpu, rss) =
                measured(&s.server, r.push_blob("bench/big", &blob, &d, *flow)).await;
            pushed.with_context(|| format!("push {name} to {}", s.server.kind.label()))?;
            let secs = start.elapsed().as_secs_f64();
            let rate = mib(blob.len()) / secs;
            let per_gib = cpu / (blob.len() as f64 / f64::from(1u32 << 30));
            let workload = format!("push {size} {name}");
            let relative = reference_rate(report, &workload).map(|v| v * 3.5);
            add_stream(
                report,
                &workload,
                s.server.kind,
                (rate, per_gib, rss),
                [
                    Some(Target::AtLeast(relative.map_or(600.0, |r| r.max(600.0)))),
                    Some(Target::AtMost(1.5)),
                    Some(Target::AtMost(100.0)),
                ],
                progress,
            );
            last = d;
        }
        // Pulled right after its push (from the disk when Berth wrote it with direct writes),
        // then again (from the page cache).
        for workload in [
            format!("pull {size} just pushed"),
            format!("pull {size} again"),
        ] {
            let start = Instant::now();
            let (pulled, cpu, rss) = measured(&s.server, r.pull_blob("bench/big", &last)).await;
            let n = pulled?;
            anyhow::ensure!(
                n == plan.blob_bytes as u64,
                "pull from {}: {n} bytes of {}",
                s.server.kind.label(),
                plan.blob_bytes
            );
            let rate = mib(plan.blob_bytes) / start.elapsed().as_secs_f64();
            let per_gib = cpu / (plan.blob_bytes as f64 / f64::from(1u32 << 30));
            add_stream(
                report,
                &workload,
                s.server.kind,
                (rate, per_gib, rss),
                [
                    Some(Target::AtLeast(1.8 * 1024.0)),
                    Some(Target::AtMost(0.5)),
                    None,
                ],
                progress,
            );
        }
    }
    Ok(())
}

/// Whole images (config, layer, manifest) pushed and then pulled, at concurrency 1 and 16.
async fn images(
    subjects: &[Subject],
    plan: &Plan,
    report: &mut Report,
    progress: &Progress,
) -> anyhow::Result<()> {
    for &(size, per_task_1, per_task_16) in &plan.images {
        for (concurrency, per_task) in [(1usize, per_task_1), (16, per_task_16)] {
            let images: Arc<Vec<Image>> = Arc::new(
                (0..concurrency as u64 * per_task)
                    .map(|i| Image::new(size, 1000 + i))
                    .collect(),
            );
            let total: usize = images
                .iter()
                .map(|i| i.layer.0.len() + i.config.0.len())
                .sum();
            let repo = format!("bench/image-{size}-{concurrency}");
            for s in subjects {
                let r = s
                    .registry
                    .with_token(&[format!("repository:{repo}:pull,push")])
                    .await?;
                let push = {
                    let (r, images, repo) = (r.clone(), images.clone(), repo.clone());
                    move |task: usize, i: u64| {
                        let (r, images, repo) = (r.clone(), images.clone(), repo.clone());
                        async move {
                            let n = task * per_task as usize + i as usize;
                            images[n].push(&r, &repo, &format!("t{n}")).await.is_ok()
                        }
                    }
                };
                let pull = {
                    let (r, repo) = (r.clone(), repo.clone());
                    move |task: usize, i: u64| {
                        let (r, repo) = (r.clone(), repo.clone());
                        async move {
                            let n = task * per_task as usize + i as usize;
                            r.pull_image(&repo, &format!("t{n}")).await.is_ok()
                        }
                    }
                };
                let label = size_label(size);
                for (what, l, cpu) in [
                    {
                        let (l, cpu, _) = measured(
                            &s.server,
                            load::run(concurrency, Duration::ZERO, Some(per_task), push),
                        )
                        .await;
                        ("push", l, cpu)
                    },
                    {
                        let (l, cpu, _) = measured(
                            &s.server,
                            load::run(concurrency, Duration::ZERO, Some(per_task), pull),
                        )
                        .await;
                        ("pull", l, cpu)
                    },
                ] {
                    anyhow::ensure!(
                        l.errors == 0,
                        "{what} {label} images at c={concurrency} on {}: {} failed",
                        s.server.kind.label(),
                        l.errors
                    );
                    let workload = format!("{what} {label} images (c={concurrency})");
                    let rate = mib(total) / l.elapsed.as_secs_f64();
                    let per_gib = cpu / (total as f64 / f64::from(1u32 << 30));
                    progress.say(format_args!(
                        "{workload} on {}: {:.1} images/s, {rate:.0} MiB/s, {per_gib:.2} CPU-s/GiB",
                        s.server.kind.label(),
                        l.rate()
                    ));
                    report.add(
                        &workload,
                        "images/s",
                        Better::Higher,
                        s.server.kind,
                        l.rate(),
                        None,
                    );
                    report.add(
                        &workload,
                        "MiB/s",
                        Better::Higher,
                        s.server.kind,
                        rate,
                        None,
                    );
                    report.add(
                        &workload,
                        "server CPU-s/GiB",
                        Better::Lower,
                        s.server.kind,
                        per_gib,
                        None,
                    );
                }
            }
        }
    }
    Ok(())
}

/// Tokens from `/service/token` with Basic credentials (Berth and the baseline with
/// authentication only).
async fn tokens(
    subjects: &[Subject],
    plan: &Plan,
    report: &mut Report,
    progress: &Progress,
) -> anyhow::Result<()> {
    for s in subjects.iter().filter(|s| s.server.kind.token()) {
        let r = s.registry.clone();
        let call = move |_: usize, _: u64| {
            let r = r.clone();
            async move {
                r.token(&["repository:bench/small:pull".to_owned()])
                    .await
                    .is_ok()
            }
        };
        let (l, cpu, rss) = measured(
            &s.server,
            load::run(plan.connections, plan.token, None, call),
        )
        .await;
        let workload = format!("token with Basic credentials (c={})", plan.connections);
        anyhow::ensure!(
            l.ok > 0,
            "{workload} on {}: every request failed",
            s.server.kind.label()
        );
        let cpu_us = cpu * 1e6 / l.ok.max(1) as f64;
        progress.say(format_args!(
            "{workload} on {}: {:.0} tokens/s, p99 {:.2} ms, {cpu_us:.0} CPU-µs/token, {} errors",
            s.server.kind.label(),
            l.rate(),
            l.percentile_ms(99.0),
            l.errors
        ));
        let kind = s.server.kind;
        report.add(
            &workload,
            "tokens/s",
            Better::Higher,
            kind,
            l.rate(),
            Some(Target::AtLeast(5000.0).for_kinds(&[Kind::BerthToken])),
        );
        report.add(
            &workload,
            "p99 ms",
            Better::Lower,
            kind,
            l.percentile_ms(99.0),
            None,
        );
        report.add(
            &workload,
            "server CPU-µs/token",
            Better::Lower,
            kind,
            cpu_us,
            None,
        );
        report.add(&workload, "peak RSS MiB", Better::Lower, kind, rss, None);
    }
    Ok(())
}

/// A tags list and a catalog of `list_entries` each: pages, and the whole tags list.
async fn listings(
    subjects: &[Subject],
    plan: &Plan,
    report: &mut Report,
    progress: &Progress,
) -> anyhow::Result<()> {
    let n = plan.list_entries;
    let image = Image::new(1000, 3);
    let manifest = Arc::new(registry::image_manifest(
        (&image.config.1, image.config.0.len()),
        &[(&image.layer.1, image.layer.0.len())],
    ));
    for s in subjects {
        let label = s.server.kind.label();
        image.push(&s.registry, "bench/tags", "t00000").await?;
        // Seeding: n tags, and n repositories (mounts and a manifest each), 32 at a time.
        let seed_tags = {
            let (r, m) = (s.registry.clone(), manifest.clone());
            move |task: usize, i: u64| {
                let (r, m) = (r.clone(), m.clone());
                async move {
                    let k = i as usize * 32 + task;
                    k >= n
                        || r.push_manifest("bench/tags", &format!("t{k:05}"), &m)
                            .await
                            .is_ok()
                }
            }
        };
        let per_task = n.div_ceil(32) as u64;
        let l = load::run(32, Duration::ZERO, Some(per_task), seed_tags).await;
        anyhow::ensure!(l.errors == 0, "tagging on {label}: {} failed", l.errors);
        let seed_repos = {
            let (r, m) = (s.registry.clone(), manifest.clone());
            let (cd, ld) = (image.config.1.clone(), image.layer.1.clone());
            move |task: usize, i: u64| {
                let (r, m, cd, ld) = (r.clone(), m.clone(), cd.clone(), ld.clone());
                async move {
                    let k = i as usize * 32 + task;
                    if k >= n {
                        return true;
                    }
                    let repo = format!("bench/r{k:05}");
                    r.mount(&repo, &cd, "bench/tags").await.is_ok()
                        && r.mount(&repo, &ld, "bench/tags").await.is_ok()
                        && r.push_manifest(&repo, "v1", &m).await.is_ok()
                }
            }
        };
        let l = load::run(32, Duration::ZERO, Some(per_task), seed_repos).await;
        anyhow::ensure!(
            l.errors == 0,
            "repositories on {label}: {} failed",
            l.errors
        );
        progress.say(format_args!("{label}: {n} tags and {n} repositories made"));

        let r = s
            .registry
            .with_token(&[
                "repository:bench/tags:pull".to_owned(),
                "registry:catalog:*".to_owned(),
            ])
            .await?;
        let cases: [(String, usize, PathFor); 3] = [
            (
                format!("tags list, a page of 100 of {n} (c={})", plan.connections),
                plan.connections,
                Box::new(move |t, i| {
                    format!("/v2/bench/tags/tags/list?n=100&last=t{:05}", pick(t, i, n))
                }),
            ),
            (
                format!("tags list, all {n} (c=4)"),
                4,
                Box::new(|_, _| "/v2/bench/tags/tags/list".to_owned()),
            ),
            (
                format!("catalog, a page of 100 of {n} (c={})", plan.connections),
                plan.connections,
                Box::new(move |t, i| {
                    format!("/v2/_catalog?n=100&last=bench/r{:05}", pick(t, i, n))
                }),
            ),
        ];
        for (workload, connections, path) in cases {
            let path = Arc::new(path);
            let call = {
                let r = r.clone();
                move |t: usize, i: u64| {
                    let request = r.request(Method::GET, &path(t, i));
                    async move {
                        match request.send().await {
                            Ok(resp) => resp.status() == 200 && resp.bytes().await.is_ok(),
                            Err(_) => false,
                        }
                    }
                }
            };
            let (l, cpu, _) =
                measured(&s.server, load::run(connections, plan.list, None, call)).await;
            anyhow::ensure!(l.ok > 0, "{workload} on {label}: every request failed");
            let cpu_us = cpu * 1e6 / l.ok.max(1) as f64;
            progress.say(format_args!(
                "{workload} on {label}: {:.0} req/s, p99 {:.2} ms, {cpu_us:.0} CPU-µs/req",
                l.rate(),
                l.percentile_ms(99.0)
            ));
            let page_target = workload
                .starts_with("tags list, a page")
                .then(|| Target::AtMost(10.0).for_kinds(&[Kind::Berth, Kind::BerthToken]));
            add_requests(
                report,
                &workload,
                s.server.kind,
                &l,
                cpu_us,
                page_target,
                None,
            );
        }
    }
    Ok(())
}

/// What `bin --version` says, or that it said nothing.
fn version(bin: &std::path::Path) -> String {
    std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "version unknown".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let plan = Plan::new(cli.quick, cli.smoke);
    let berth = match cli.berth {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("no directory")?
            .join("berth"),
    };
    anyhow::ensure!(
        berth.exists(),
        "{} does not exist: build it (cargo build --release -p berth) or pass --berth",
        berth.display()
    );
    if let Some(baseline) = &cli.baseline {
        anyhow::ensure!(
            baseline.exists(),
            "the baseline {} does not exist",
            baseline.display()
        );
    }
    const WORKLOADS: [&str; 6] = ["small", "token", "blob", "image", "list", "pages"];
    if let Some(unknown) = cli.only.iter().find(|o| !WORKLOADS.contains(&o.as_str())) {
        anyhow::bail!(
            "--only {unknown}: no such workload (there are {})",
            WORKLOADS.join(", ")
        );
    }
    let wanted = |w: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == w);
    let page_sizes = plan.pages.clone().with(&cli.pages_sizes)?;
    let progress = Progress(Instant::now());
    let config = cli.berth_config.as_deref();
    let mut servers = Vec::new();
    // The registry workloads' servers (the pages workload starts its own).
    if WORKLOADS[..5].iter().any(|w| wanted(w)) {
        progress.say(format_args!(
            "starting the reference registry and {} ({}) twice",
            berth.display(),
            version(&berth)
        ));
        servers.push(Server::reference()?);
        servers.push(Server::berth(&berth, Kind::Berth, config)?);
        // Each baseline server right after its Berth counterpart: the workloads visit them
        // in this order, so the pairs compared run as close together in time as they can.
        if let Some(baseline) = &cli.baseline {
            progress.say(format_args!(
                "starting the baseline {} ({}) twice",
                baseline.display(),
                version(baseline)
            ));
            servers.push(Server::berth(baseline, Kind::Baseline, config)?);
        }
        servers.push(Server::berth(&berth, Kind::BerthToken, config)?);
        if let Some(baseline) = &cli.baseline {
            servers.push(Server::berth(baseline, Kind::BaselineToken, config)?);
        }
    }
    let mut subjects = Vec::new();
    for server in servers {
        let registry = Registry::new(server.kind, &server.url)?;
        registry.create_project("bench").await?;
        subjects.push(Subject { server, registry });
    }
    let mut report = Report::new(cli.baseline.is_some());
    if wanted("small") {
        small_requests(&subjects, &plan, &mut report, &progress).await?;
    }
    if wanted("token") {
        tokens(&subjects, &plan, &mut report, &progress).await?;
    }
    if wanted("blob") {
        blobs(&subjects, &plan, &mut report, &progress).await?;
    }
    if wanted("image") {
        images(&subjects, &plan, &mut report, &progress).await?;
    }
    if wanted("list") {
        listings(&subjects, &plan, &mut report, &progress).await?;
    }
    // The registry servers are done with; the pages workload has the machine to itself.
    drop(subjects);
    let mut page_tables = Vec::new();
    if wanted("pages") {
        let mut binaries = vec![(berth.as_path(), Kind::BerthToken)];
        if let Some(baseline) = &cli.baseline {
            binaries.push((baseline.as_path(), Kind::BaselineToken));
        }
        for (bin, kind) in binaries {
            let table = pages::run(
                bin,
                kind,
                config,
                &page_sizes,
                cli.keep_pages_data,
                &mut report,
                &progress,
            )
            .await?;
            page_tables.extend(table);
        }
    }
    progress.say("done");
    println!("{}", report::machine());
    println!(
        "{} run, {} connections for small requests; ratio: Berth (auth off) against the reference, \"better\" in the metric's direction.",
        if cli.smoke {
            "smoke"
        } else if cli.quick {
            "quick"
        } else {
            "full"
        },
        plan.connections
    );
    if let Some(baseline) = &cli.baseline {
        println!(
            "berth: {} ({}); baseline: {} ({}); berth vs baseline: Berth against the baseline, both with auth off (tokens: both with auth on), server CPU as Berth's change in percent.",
            berth.display(),
            version(&berth),
            baseline.display(),
            version(baseline)
        );
    }
    println!();
    println!("{}", report.table());
    for table in &page_tables {
        println!("{table}");
    }
    if let Some(path) = cli.json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report.json())?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let missed = report.missed();
    if missed > 0 {
        eprintln!("{missed} target(s) missed (marked ✗)");
    }
    Ok(())
}
