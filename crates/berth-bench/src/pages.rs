//! The web UI's pages at scale (`--only pages`). One Berth with authentication on is seeded
//! through its own interfaces (the management API for projects, a user, memberships and a
//! robot account; the registry API for repositories and artifacts: small manifests sharing
//! one config and one layer, told apart by an annotation) with 10,000 projects, 10,000
//! repositories and one repository of 100,000 artifacts. Then a client signs in through the
//! login form as a browser does (the form's cookie and CSRF field, then the session cookie)
//! and requests every page one after another, as the administrator and as a developer of
//! some projects; every response must be a 200 with the page's expected content before it is
//! counted.
//!
//! Per page: the client's latency (p50, p99, max; over loopback, so an upper bound of the
//! server's time), Berth's own time to the response head (its `served … latency_us` log
//! line, found by the request id the client sends), server CPU per request, the response
//! size, and the database queries a request makes. Berth exports no query counter (its
//! metrics have the pool's open and idle connections only), so the queries are counted from
//! sqlx's statement log (`sqlx::query` at debug level, inside the request's span) on a
//! second start of the same binary over the same data, after the timings: the logging does
//! not slow the timed requests.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Client, Method, StatusCode};

use crate::Progress;
use crate::registry::{Flow, MANIFEST_TYPE, Registry, digest, random_bytes};
use crate::report::{Better, Report, Target};
use crate::servers::{ADMIN, Kind, Launch, Server};

/// The issue's target: every page's p99 within this many milliseconds of server time.
pub const P99_TARGET_MS: f64 = 50.0;

/// Requests in flight while seeding. (At 16, writers waiting for SQLite's lock were seen to
/// time out after its 10 s busy timeout on this 2-core machine: 500 "database is locked".)
const SEED_CONCURRENCY: usize = 8;
/// Attempts per seeding request: a failure is retried (and counted) before it fails the run.
const SEED_ATTEMPTS: usize = 3;

/// The project holding the big repository.
const BIG: &str = "bench-big";
/// The big repository's name in it.
const APP: &str = "app";
/// The project holding many repositories.
const MANY: &str = "bench-many";
/// The developer measured besides the administrator.
const MEMBER: (&str, &str) = ("bench-member", "Bench-member-pass-1");
/// A robot account of the big project (so that its robots page lists one).
const ROBOT: &str = "bench-robot";
/// Projects the developer is a member of, besides the two above.
const MEMBER_PROJECTS: usize = 50;
/// Rows per page of the UI's lists.
const PAGE_ROWS: usize = 25;

/// How much to seed and measure.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Projects in all (the two holding the big and the many repositories included).
    pub projects: usize,
    /// Repositories in all (the big one included).
    pub repositories: usize,
    /// Artifacts in the big repository.
    pub artifacts: usize,
    /// One artifact in this many is tagged (the others are pushed by digest).
    pub tag_every: usize,
    /// Timed requests per page, after `warmup` untimed ones.
    pub requests: usize,
    /// Untimed requests per page first.
    pub warmup: usize,
    /// Projects the registry has before seeding (`library`), counted in `projects`.
    pub existing: usize,
}

impl Sizes {
    /// The issue's sizes; `--quick` a tenth; `--smoke` a handful.
    pub fn new(quick: bool, smoke: bool) -> Self {
        if smoke {
            Self {
                projects: 12,
                repositories: 9,
                artifacts: 60,
                tag_every: 10,
                requests: 3,
                warmup: 1,
                existing: 0,
            }
        } else if quick {
            Self {
                projects: 1_000,
                repositories: 1_000,
                artifacts: 10_000,
                tag_every: 10,
                requests: 50,
                warmup: 5,
                existing: 0,
            }
        } else {
            Self {
                projects: 10_000,
                repositories: 10_000,
                artifacts: 100_000,
                tag_every: 10,
                requests: 200,
                warmup: 10,
                existing: 0,
            }
        }
    }

    /// `PROJECTS,REPOSITORIES,ARTIFACTS` instead of the plan's (`--pages-sizes`).
    pub fn with(mut self, sizes: &[usize]) -> anyhow::Result<Self> {
        match sizes {
            [] => {}
            [p, r, a] => {
                ensure!(
                    *p >= 3 && *r >= 2 && *a >= 1,
                    "--pages-sizes: at least 3 projects, 2 repositories and 1 artifact"
                );
                (self.projects, self.repositories, self.artifacts) = (*p, *r, *a);
            }
            _ => bail!("--pages-sizes takes three numbers: projects,repositories,artifacts"),
        }
        Ok(self)
    }

    /// Projects named `p00000`… (besides the big, the many and those there were).
    fn plain_projects(&self) -> usize {
        self.projects.saturating_sub(2 + self.existing).max(1)
    }

    /// Repositories one per plain project (`p00000/r`…), and in the many project.
    fn repository_split(&self) -> (usize, usize) {
        let single = self.plain_projects().min((self.repositories - 1) / 2);
        (single, self.repositories - 1 - single)
    }

    /// What is seeded, in words.
    pub fn describe(&self) -> String {
        let (single, many) = self.repository_split();
        format!(
            "{} projects; {} repositories: {BIG}/{APP} with {} artifacts (one in {} tagged), \
             {} in {MANY}, one each in {} other projects",
            thousands(self.plain_projects() + 2 + self.existing),
            thousands(self.repositories),
            thousands(self.artifacts),
            self.tag_every,
            thousands(many),
            thousands(single)
        )
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plain_project(i: usize) -> String {
    format!("p{i:05}")
}

fn many_repository(i: usize) -> String {
    format!("r{i:05}")
}

/// The `n`-th artifact's manifest: the shared config and layer, and an annotation of its own.
fn manifest(config: (&str, usize), layer: (&str, usize), n: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_TYPE}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}],"annotations":{{"org.opencontainers.image.version":"{n}"}}}}"#,
        config.0, config.1, layer.0, layer.1
    ))
}

/// Seeding requests that failed and were tried again: how many, and the first error.
#[derive(Default)]
struct Retries(std::sync::Mutex<(usize, Option<String>)>);

impl Retries {
    fn note(&self, e: &anyhow::Error) {
        if let Ok(mut r) = self.0.lock() {
            r.0 += 1;
            r.1.get_or_insert_with(|| format!("{e:#}"));
        }
    }

    fn get(&self) -> (usize, Option<String>) {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Runs `f(0..n)`, `SEED_CONCURRENCY` at a time, each up to `SEED_ATTEMPTS` times (retries
/// noted in `retries`); the first error that persists ends it.
async fn each<F, Fut>(n: usize, retries: &Retries, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let f = &f;
    futures_util::stream::iter(0..n)
        .map(|i| async move {
            let mut attempt = 1;
            loop {
                match f(i).await {
                    Ok(()) => return Ok(()),
                    Err(e) if attempt < SEED_ATTEMPTS => {
                        retries.note(&e);
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_for_each(|()| async { Ok(()) })
        .await
}

/// `POST` `body` as JSON to the management API as the administrator, expecting 201.
async fn api_create(r: &Registry, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
    let resp = r
        .request(Method::POST, &format!("/api/v2.0{path}"))
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    if status != StatusCode::CREATED {
        bail!(
            "POST /api/v2.0{path}: {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// How many projects `who` sees, from the management API's `X-Total-Count`.
async fn project_total(base: &str, (user, password): (&str, &str)) -> anyhow::Result<usize> {
    let r = Client::new()
        .get(format!("{base}/api/v2.0/projects?page_size=1"))
        .basic_auth(user, Some(password))
        .send()
        .await?;
    ensure!(
        r.status() == StatusCode::OK,
        "GET /api/v2.0/projects as {user}: {}",
        r.status()
    );
    r.headers()
        .get("x-total-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .context("GET /api/v2.0/projects: no X-Total-Count")
}

/// What seeding made, for the pages' checks.
struct Seeded {
    /// The big repository's artifacts, in push order.
    digests: Vec<String>,
    /// The same, for looking up.
    known: HashSet<String>,
    /// Seeding's rows: (what, items, seconds).
    steps: Vec<(String, usize, f64)>,
    /// Seeding requests tried again after a failure, and the first failure.
    retries: (usize, Option<String>),
}

/// Seeds `server` through its APIs as the administrator.
async fn seed(server: &Server, sizes: &Sizes, progress: &Progress) -> anyhow::Result<Seeded> {
    let label = server.kind.label();
    let r = Registry::new(server.kind, &server.url)?;
    let mut steps = Vec::new();
    let retries = Retries::default();

    let start = Instant::now();
    r.create_project(BIG).await?;
    r.create_project(MANY).await?;
    {
        let r = &r;
        each(sizes.plain_projects(), &retries, |i| async move {
            r.create_project(&plain_project(i))
                .await
                .with_context(|| format!("project {}", plain_project(i)))
        })
        .await?;
    }
    let secs = start.elapsed().as_secs_f64();
    progress.say(format_args!(
        "UI on {label}: {} projects made in {secs:.1} s ({:.0}/s)",
        sizes.projects,
        sizes.projects as f64 / secs
    ));
    steps.push(("projects".to_owned(), sizes.projects, secs));

    // The shared blobs, then one manifest in every other repository (blobs mounted from the
    // big repository).
    let config = Bytes::from_static(br#"{"architecture":"amd64","os":"linux"}"#);
    let layer = Bytes::from(random_bytes(1000, 7));
    let (config_digest, layer_digest) = (digest(&config), digest(&layer));
    let big = format!("{BIG}/{APP}");
    r.push_blob(&big, &config, &config_digest, Flow::Monolithic)
        .await?;
    r.push_blob(&big, &layer, &layer_digest, Flow::Monolithic)
        .await?;
    let described = |n| {
        manifest(
            (&config_digest, config.len()),
            (&layer_digest, layer.len()),
            n,
        )
    };
    let (single, many) = sizes.repository_split();
    let start = Instant::now();
    {
        let (r, big, m) = (&r, &big, described(usize::MAX));
        let (cd, ld) = (&config_digest, &layer_digest);
        each(single + many, &retries, |i| {
            let m = m.clone();
            async move {
                let repo = if i < single {
                    format!("{}/r", plain_project(i))
                } else {
                    format!("{MANY}/{}", many_repository(i - single))
                };
                r.mount(&repo, cd, big).await?;
                r.mount(&repo, ld, big).await?;
                r.push_manifest(&repo, "v1", &m)
                    .await
                    .with_context(|| format!("repository {repo}"))
            }
        })
        .await?;
    }
    let secs = start.elapsed().as_secs_f64();
    progress.say(format_args!(
        "UI on {label}: {} repositories made in {secs:.1} s ({:.0}/s; two mounts and a manifest each)",
        single + many,
        (single + many) as f64 / secs
    ));
    steps.push(("repositories".to_owned(), single + many + 1, secs));

    let manifests: Vec<Bytes> = (0..sizes.artifacts).map(described).collect();
    let digests: Vec<String> = manifests.iter().map(|m| digest(m)).collect();
    let start = Instant::now();
    let chunk = sizes.artifacts.div_ceil(10).max(1000);
    let mut done = 0;
    while done < sizes.artifacts {
        let n = chunk.min(sizes.artifacts - done);
        let (r, big, manifests, digests) = (&r, &big, &manifests, &digests);
        each(n, &retries, |k| async move {
            let i = done + k;
            let reference = if i % sizes.tag_every == 0 {
                format!("v{i:06}")
            } else {
                digests[i].clone()
            };
            r.push_manifest(big, &reference, &manifests[i])
                .await
                .with_context(|| format!("artifact {i}"))
        })
        .await?;
        done += n;
        let secs = start.elapsed().as_secs_f64();
        progress.say(format_args!(
            "UI on {label}: {done} of {} artifacts pushed in {secs:.1} s ({:.0}/s)",
            sizes.artifacts,
            done as f64 / secs
        ));
    }
    steps.push((
        "artifacts".to_owned(),
        sizes.artifacts,
        start.elapsed().as_secs_f64(),
    ));

    // A developer of the big, the many and some plain projects; a robot of the big one.
    api_create(
        &r,
        "/users",
        serde_json::json!({"username": MEMBER.0, "password": MEMBER.1, "email": "member@bench.example"}),
    )
    .await?;
    let member_of: Vec<String> = [BIG.to_owned(), MANY.to_owned()]
        .into_iter()
        .chain((0..MEMBER_PROJECTS.min(sizes.plain_projects())).map(plain_project))
        .collect();
    for p in &member_of {
        api_create(
            &r,
            &format!("/projects/{p}/members"),
            serde_json::json!({"role_id": 2, "member_user": {"username": MEMBER.0}}),
        )
        .await?;
    }
    api_create(
        &r,
        "/robots",
        serde_json::json!({
            "name": ROBOT, "description": "bench", "duration": -1, "level": "project",
            "permissions": [{"kind": "project", "namespace": BIG,
                "access": [{"resource": "repository", "action": "pull"}]}],
        }),
    )
    .await?;
    let known = digests.iter().cloned().collect();
    Ok(Seeded {
        digests,
        known,
        steps,
        retries: retries.get(),
    })
}

/// Cookies as a browser keeps them for one site.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    /// Takes the `Set-Cookie`s of a response (a `Max-Age=0` one deletes).
    fn take(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let mut parts = v.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            self.0.retain(|(n, _)| n != name);
            let expired = parts.any(|p| p.trim().eq_ignore_ascii_case("max-age=0"));
            if !expired {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The value of the hidden input `name` in a page.
fn hidden_input(html: &str, name: &str) -> Option<String> {
    let pattern = format!(r#"name="{name}" value=""#);
    let at = html.find(&pattern)?;
    let rest = &html[at + pattern.len()..];
    rest.split('"').next().map(str::to_owned)
}

/// A browser signed in to the UI.
struct Browser {
    client: Client,
    base: String,
    cookies: String,
    /// Who, for the table.
    viewer: &'static str,
}

impl Browser {
    /// Signs in as `user` through the login form: `GET /login` (the form's cookie and its
    /// `_csrf` field), `POST /login`, keeping the session's cookies.
    async fn sign_in(
        base: &str,
        viewer: &'static str,
        (user, password): (&str, &str),
    ) -> anyhow::Result<Self> {
        let client = Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let mut jar = Jar::default();
        let r = client.get(format!("{base}/login")).send().await?;
        ensure!(r.status() == StatusCode::OK, "GET /login: {}", r.status());
        jar.take(r.headers());
        let html = r.text().await?;
        let csrf = hidden_input(&html, "_csrf").context("the login form has no _csrf field")?;
        let r = client
            .post(format!("{base}/login"))
            .header(COOKIE, jar.header())
            .form(&[
                ("username", user),
                ("password", password),
                ("_csrf", &csrf),
                ("next", "/projects"),
            ])
            .send()
            .await?;
        let status = r.status();
        let location = r
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        jar.take(r.headers());
        ensure!(
            status == StatusCode::SEE_OTHER && location == "/projects",
            "POST /login as {user}: {status}, to {location:?}: {}",
            r.text().await.unwrap_or_default()
        );
        ensure!(
            jar.has("sid"),
            "POST /login as {user} set no session cookie (sid)"
        );
        Ok(Self {
            client,
            base: base.to_owned(),
            cookies: jar.header(),
            viewer,
        })
    }

    /// `GET path` with the session, under `request_id`: (status, body).
    async fn get(&self, path: &str, request_id: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookies)
            .header("x-request-id", request_id)
            .send()
            .await?;
        let status = r.status();
        Ok((status, r.bytes().await?))
    }
}

/// What a page must show.
enum Check {
    /// This text.
    Contains(String),
    /// This many artifact rows, each one of the big repository's digests.
    Artifacts(usize),
}

/// A page to measure.
struct Case {
    path: String,
    /// How the table names it (the path, a digest shortened).
    label: String,
    checks: Vec<Check>,
}

impl Case {
    fn new(path: impl Into<String>, checks: Vec<Check>) -> Self {
        let path = path.into();
        Self {
            label: path.clone(),
            path,
            checks,
        }
    }

    /// Why `body` is not this page, if it is not.
    fn wrong(&self, body: &str, known: &HashSet<String>) -> Option<String> {
        for check in &self.checks {
            match check {
                Check::Contains(text) if !body.contains(text.as_str()) => {
                    return Some(format!("it does not contain {text:?}"));
                }
                Check::Contains(_) => {}
                Check::Artifacts(rows) => {
                    let shown: Vec<&str> = body
                        .split(r#"<code title=""#)
                        .skip(1)
                        .filter_map(|s| s.split('"').next())
                        .collect();
                    if shown.len() != *rows {
                        return Some(format!("{} artifact rows, not {rows}", shown.len()));
                    }
                    if let Some(d) = shown.iter().find(|d| !known.contains(**d)) {
                        return Some(format!("it shows an artifact never pushed: {d}"));
                    }
                }
            }
        }
        None
    }
}

fn contains(text: impl Into<String>) -> Check {
    Check::Contains(text.into())
}

fn link(path: &str) -> Check {
    contains(format!(r#"href="{path}""#))
}

/// The pages of the administrator, and of the developer.
/// `totals`: the projects the administrator and the developer see.
fn cases(sizes: &Sizes, totals: (usize, usize)) -> (Vec<Case>, Vec<Case>) {
    let signed_in = || contains(r#"href="/account""#);
    let admin_nav = || link("/admin/users");
    let plain = sizes.plain_projects();
    let last_projects = totals.0.div_ceil(PAGE_ROWS);
    let (_, many) = sizes.repository_split();
    let last_many = many.div_ceil(PAGE_ROWS).max(1);
    let last_artifacts = sizes.artifacts.div_ceil(PAGE_ROWS);
    let rows_on = |page: usize, total: usize| (total - (page - 1) * PAGE_ROWS).min(PAGE_ROWS);
    // A fragment of a name near the end: a search that matches a few projects.
    let target = plain_project(plain.saturating_sub(3));
    let fragment = target[..target.len() - 1].to_owned();
    let big_repo = format!("/projects/{BIG}/repositories/{APP}");
    let first_many = format!("/projects/{MANY}/repositories/{}", many_repository(0));
    let last_many_repo = format!(
        "/projects/{MANY}/repositories/{}",
        many_repository(many.saturating_sub(1))
    );
    // The big repository's first and last pages and its members: the same for both viewers.
    let repository_pages = || {
        vec![
            Case::new(
                big_repo.clone(),
                vec![signed_in(), Check::Artifacts(rows_on(1, sizes.artifacts))],
            ),
            Case::new(
                format!("{big_repo}?page={last_artifacts}"),
                vec![
                    signed_in(),
                    Check::Artifacts(rows_on(last_artifacts, sizes.artifacts)),
                ],
            ),
            Case::new(
                format!("/projects/{BIG}/members"),
                vec![signed_in(), contains(format!("<td>{}</td>", MEMBER.0))],
            ),
        ]
    };
    let mut admin = vec![
        Case::new(
            "/projects",
            vec![signed_in(), admin_nav(), link(&format!("/projects/{BIG}"))],
        ),
        Case::new(
            format!("/projects?page={last_projects}"),
            vec![
                signed_in(),
                link(&format!("/projects/{}", plain_project(plain - 1))),
            ],
        ),
        Case::new(
            format!("/projects?q={fragment}"),
            vec![signed_in(), link(&format!("/projects/{target}"))],
        ),
        Case::new(
            format!("/projects/{MANY}"),
            vec![signed_in(), link(&first_many)],
        ),
        Case::new(
            format!("/projects/{MANY}?page={last_many}"),
            vec![signed_in(), link(&last_many_repo)],
        ),
        Case::new(
            format!("/projects/{BIG}"),
            vec![
                signed_in(),
                link(&big_repo),
                contains(format!("<td>{}</td>", sizes.artifacts)),
            ],
        ),
    ];
    admin.extend(repository_pages());
    admin.extend([
        Case::new(
            format!("/projects/{BIG}/robots"),
            vec![signed_in(), contains(ROBOT)],
        ),
        Case::new(
            format!("/projects/{BIG}/logs"),
            vec![
                signed_in(),
                contains("<table"),
                // An artifact push (`bench-big/app@sha256:…`, its `/` escaped).
                contains("app@sha256:"),
            ],
        ),
        Case::new(
            "/admin/audit",
            vec![signed_in(), admin_nav(), contains("<table")],
        ),
        Case::new(
            "/admin/users",
            vec![signed_in(), admin_nav(), contains(MEMBER.0)],
        ),
    ]);
    let mut member = vec![
        Case::new(
            "/projects",
            vec![signed_in(), link(&format!("/projects/{BIG}"))],
        ),
        Case::new(
            format!("/projects?page={}", totals.1.div_ceil(PAGE_ROWS)),
            vec![
                signed_in(),
                link(&format!(
                    "/projects/{}",
                    plain_project(MEMBER_PROJECTS.min(plain) - 1)
                )),
            ],
        ),
        Case::new(
            format!("/projects/{MANY}"),
            vec![signed_in(), link(&first_many)],
        ),
    ];
    member.extend(repository_pages());
    member.push(Case::new(
        format!("/projects/{BIG}/logs"),
        vec![signed_in(), contains("<table")],
    ));
    (admin, member)
}

/// One page's measurements.
struct Timed {
    viewer: &'static str,
    path: String,
    latencies_us: Vec<u32>,
    bytes: usize,
    cpu_us: f64,
    /// The request ids of the timed requests.
    ids: Vec<String>,
    server_us: Vec<u64>,
    queries: Option<(usize, f64)>,
}

impl Timed {
    fn percentile_ms(v: &[u64], p: f64) -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[i.min(v.len() - 1)] as f64 / 1000.0
    }

    fn client_ms(&self, p: f64) -> f64 {
        let v: Vec<u64> = self.latencies_us.iter().map(|&l| u64::from(l)).collect();
        Self::percentile_ms(&v, p)
    }

    fn server_ms(&self, p: f64) -> f64 {
        Self::percentile_ms(&self.server_us, p)
    }
}

/// Requests `case` `warmup` times, then `requests` times timed, checking every response.
async fn time_page(
    b: &Browser,
    server: &Server,
    case: &Case,
    sizes: &Sizes,
    known: &HashSet<String>,
    tag: &str,
) -> anyhow::Result<Timed> {
    let check = |status: StatusCode, body: &Bytes| -> anyhow::Result<()> {
        let text = String::from_utf8_lossy(body);
        if status != StatusCode::OK {
            bail!(
                "{} as {}: {status}: {}",
                case.path,
                b.viewer,
                text.chars().take(400).collect::<String>()
            );
        }
        if let Some(why) = case.wrong(&text, known) {
            bail!("{} as {}: the wrong page: {why}", case.path, b.viewer);
        }
        Ok(())
    };
    for i in 0..sizes.warmup {
        let (status, body) = b.get(&case.path, &format!("{tag}-w{i}")).await?;
        check(status, &body)?;
    }
    let mut latencies_us = Vec::with_capacity(sizes.requests);
    let mut ids = Vec::with_capacity(sizes.requests);
    let mut bytes = 0;
    let cpu = server.cpu_seconds();
    for i in 0..sizes.requests {
        let id = format!("{tag}-{i}");
        let start = Instant::now();
        let (status, body) = b.get(&case.path, &id).await?;
        let elapsed = start.elapsed();
        check(status, &body)?;
        latencies_us.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
        bytes = body.len();
        ids.push(id);
    }
    // The kernel accounts CPU time at tick granularity; let the last tick land.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cpu_us = (server.cpu_seconds() - cpu) * 1e6 / sizes.requests.max(1) as f64;
    latencies_us.sort_unstable();
    Ok(Timed {
        viewer: b.viewer,
        path: case.label.clone(),
        latencies_us,
        bytes,
        cpu_us,
        ids,
        server_us: Vec::new(),
        queries: None,
    })
}

/// The value of `key=` in a text log line, up to a space or `}`.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    let rest = &line[at..];
    let end = rest.find([' ', '}', ',']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Berth's time to the response head per request id, from its `served` log lines (text, or
/// JSON when a configuration chose that format).
fn served_latencies(log: &str) -> HashMap<String, u64> {
    log.lines()
        .filter(|l| l.contains("served"))
        .filter_map(|l| {
            if l.starts_with('{') {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                let id = v["span"]["request_id"].as_str()?;
                let us = v["fields"]["latency_us"].as_u64()?;
                return Some((id.to_owned(), us));
            }
            let id = field(l, "request_id=")?;
            let us = field(l, "latency_us=")?.parse().ok()?;
            Some((id.to_owned(), us))
        })
        .collect()
}

/// Statements sqlx logged (JSON log lines, target `sqlx::query`) per request id: how many,
/// and their time in ms.
fn logged_queries(log: &str) -> HashMap<String, (usize, f64)> {
    let mut out: HashMap<String, (usize, f64)> = HashMap::new();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        // A connection the pool opened during the request runs its set-up (`PRAGMA …`): not
        // the page's queries.
        if v["target"] != "sqlx::query"
            || v["fields"]["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("PRAGMA"))
        {
            continue;
        }
        let Some(id) = v["span"]["request_id"].as_str() else {
            continue;
        };
        let entry = out.entry(id.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += v["fields"]["elapsed_secs"].as_f64().unwrap_or(0.0) * 1000.0;
    }
    out
}

/// Requests every page a few times with sqlx's statement log on (a second start over the same
/// data), and counts each page's queries in its last request.
async fn count_queries(
    bin: &Path,
    config: Option<&Path>,
    kind: Kind,
    dir: tempfile::TempDir,
    pages: &mut [(Case, Timed)],
    progress: &Progress,
) -> anyhow::Result<tempfile::TempDir> {
    let server = Server::berth_with(
        bin,
        kind,
        config,
        Launch {
            dir: Some(dir),
            log: Some("queries.log"),
            env: vec![
                ("BERTH_LOG", "info,sqlx::query=debug".to_owned()),
                ("BERTH_LOG_FORMAT", "json".to_owned()),
            ],
        },
    )?;
    let admin = Browser::sign_in(&server.url, "admin", ADMIN).await?;
    let member = Browser::sign_in(&server.url, "developer", MEMBER).await?;
    // The first request of each page fills caches; the median of the others is counted.
    const RUNS: usize = 4;
    for (k, (case, timed)) in pages.iter_mut().enumerate() {
        let b = if timed.viewer == admin.viewer {
            &admin
        } else {
            &member
        };
        for i in 0..RUNS {
            let (status, _) = b.get(&case.path, &format!("q{k}-{i}")).await?;
            ensure!(
                status == StatusCode::OK,
                "{} as {} (query log): {status}",
                case.path,
                b.viewer
            );
        }
    }
    // Let the last lines reach the file.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(server.log_path())?;
    let counted = logged_queries(&log);
    ensure!(
        !counted.is_empty(),
        "sqlx logged no statement inside a request on {} (BERTH_LOG=info,sqlx::query=debug)",
        kind.label()
    );
    for (k, (_, timed)) in pages.iter_mut().enumerate() {
        let mut runs: Vec<(usize, f64)> = (1..RUNS)
            .map(|i| {
                counted
                    .get(&format!("q{k}-{i}"))
                    .copied()
                    .unwrap_or_default()
            })
            .collect();
        runs.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        timed.queries = runs.get(runs.len() / 2).copied();
    }
    progress.say(format_args!(
        "UI on {}: queries counted from sqlx's statement log",
        kind.label()
    ));
    server.stop()
}

/// The last errors in a server's log, to say why a request failed.
fn server_errors(server: &Server) -> String {
    let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .collect();
    format!(
        "{} failed; the last errors in its log:\n{}",
        server.kind.label(),
        errors[errors.len().saturating_sub(5)..].join("\n")
    )
}

/// The pages workload on one Berth binary, as `kind` (`BerthToken` or `BaselineToken`):
/// seeds, measures, records the rows, and returns a summary table (Markdown).
pub async fn run(
    bin: &Path,
    kind: Kind,
    config: Option<&Path>,
    sizes: &Sizes,
    keep: bool,
    report: &mut Report,
    progress: &Progress,
) -> anyhow::Result<Option<String>> {
    let server = Server::berth(bin, kind, config)?;
    let label = kind.label();
    // Those there are (`library`) count towards the projects.
    let sizes = &Sizes {
        existing: project_total(&server.url, ADMIN).await?,
        ..sizes.clone()
    };
    // A build without the web UI (an old baseline) has no login page: nothing to measure.
    let probe = reqwest::get(format!("{}/login", server.url)).await?;
    if probe.status() == StatusCode::NOT_FOUND {
        progress.say(format_args!(
            "UI on {label}: GET /login is 404 (no web UI in this build); pages skipped"
        ));
        return Ok(None);
    }
    progress.say(format_args!("UI on {label}: seeding {}", sizes.describe()));
    let started = Instant::now();
    let seeded = match seed(&server, sizes, progress).await {
        Ok(seeded) => seeded,
        Err(e) => return Err(e.context(server_errors(&server))),
    };
    let seeding = started.elapsed().as_secs_f64();
    let retried = match &seeded.retries {
        (0, _) => String::new(),
        (n, first) => format!(
            "; {n} seeding request(s) failed once and were retried, the first with: {}",
            first.as_deref().unwrap_or("?")
        ),
    };
    progress.say(format_args!(
        "UI on {label}: seeded in {seeding:.1} s{retried}"
    ));
    for (what, n, secs) in &seeded.steps {
        let workload = format!("UI seed: {} {what} (c={SEED_CONCURRENCY})", thousands(*n));
        report.add(&workload, "s", Better::Lower, kind, *secs, None);
        report.add(
            &workload,
            "per s",
            Better::Higher,
            kind,
            *n as f64 / secs.max(1e-9),
            None,
        );
    }

    let totals = (
        project_total(&server.url, ADMIN).await?,
        project_total(&server.url, MEMBER).await?,
    );
    let (admin_cases, member_cases) = cases(sizes, totals);
    let admin = Browser::sign_in(&server.url, "admin", ADMIN).await?;
    let member = Browser::sign_in(&server.url, "developer", MEMBER).await?;
    let mut pages: Vec<(Case, Timed)> = Vec::new();
    let mut all: Vec<(&Browser, Case)> = admin_cases.into_iter().map(|c| (&admin, c)).collect();
    // The artifact page, where this build has one.
    let first = &seeded.digests[0];
    let detail = format!("/projects/{BIG}/repositories/{APP}/artifacts/{first}");
    let (status, _) = admin.get(&detail, "probe-artifact").await?;
    if status == StatusCode::NOT_FOUND {
        progress.say(format_args!(
            "UI on {label}: {detail} is 404 (no artifact page in this build); skipped"
        ));
    } else {
        let mut case = Case::new(
            detail,
            vec![contains(r#"href="/account""#), contains(first.as_str())],
        );
        case.label = format!("/projects/{BIG}/repositories/{APP}/artifacts/<digest>");
        all.push((&admin, case));
    }
    all.extend(member_cases.into_iter().map(|c| (&member, c)));
    for (k, (b, case)) in all.into_iter().enumerate() {
        let timed = time_page(b, &server, &case, sizes, &seeded.known, &format!("p{k}")).await?;
        progress.say(format_args!(
            "UI {} as {} on {label}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.0} CPU-µs/req, {} bytes",
            timed.path,
            timed.viewer,
            timed.client_ms(50.0),
            timed.client_ms(99.0),
            timed.client_ms(100.0),
            timed.cpu_us,
            timed.bytes
        ));
        pages.push((case, timed));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let served = served_latencies(&std::fs::read_to_string(server.log_path())?);
    for (_, timed) in &mut pages {
        let mut us: Vec<u64> = timed
            .ids
            .iter()
            .filter_map(|id| served.get(id).copied())
            .collect();
        us.sort_unstable();
        timed.server_us = us;
    }
    drop(admin);
    drop(member);
    let dir = server.stop()?;
    let dir = count_queries(bin, config, kind, dir, &mut pages, progress).await?;
    if keep {
        let path = dir.keep();
        progress.say(format_args!(
            "UI on {label}: data kept in {} (berth.db, berth.log, queries.log)",
            path.display()
        ));
    }
    let summary = record(&pages, kind, report);
    Ok(Some(format!(
        "Web UI pages on {label} ({}; seeded in {seeding:.0} s, {SEED_CONCURRENCY} requests in flight{retried}); {} timed requests per page after {} untimed, one after another over loopback:\n\n{summary}",
        sizes.describe(),
        sizes.requests,
        sizes.warmup
    )))
}

/// Adds the pages' rows to the report; returns the summary table.
fn record(pages: &[(Case, Timed)], kind: Kind, report: &mut Report) -> String {
    let target = || Some(Target::AtMost(P99_TARGET_MS).for_kinds(&[Kind::BerthToken]));
    let mut table = String::from(
        "| page | viewer | p50 ms | p99 ms | max ms | server p99 ms | server CPU-µs/req | KiB | DB queries | DB ms | p99 ≤ 50 ms |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (_, t) in pages {
        let workload = format!("UI {} ({})", t.path, t.viewer);
        let kib = t.bytes as f64 / 1024.0;
        let (queries, db_ms) = t.queries.unwrap_or_default();
        let (p50, p99, max) = (t.client_ms(50.0), t.client_ms(99.0), t.client_ms(100.0));
        let server_p99 = t.server_ms(99.0);
        for (metric, better, value, target) in [
            ("p50 ms", Better::Lower, p50, None),
            ("p99 ms", Better::Lower, p99, target()),
            ("max ms", Better::Lower, max, None),
            ("server p99 ms", Better::Lower, server_p99, target()),
            ("server CPU-µs/req", Better::Lower, t.cpu_us, None),
            ("response KiB", Better::Lower, kib, None),
            ("DB queries/req", Better::Lower, queries as f64, None),
            ("DB time ms", Better::Lower, db_ms, None),
        ] {
            report.add(&workload, metric, better, kind, value, target);
        }
        let met = p99.max(server_p99) <= P99_TARGET_MS;
        table.push_str(&format!(
            "| {} | {} | {p50:.2} | {p99:.2} | {max:.2} | {server_p99:.2} | {:.0} | {kib:.1} | {queries} | {db_ms:.2} | {} |\n",
            t.path.replace('|', "\\|"),
            t.viewer,
            t.cpu_us,
            if met { "✓" } else { "✗" }
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_split_the_repositories() {
        let s = Sizes::new(false, false);
        assert_eq!(s.repository_split(), (4_999, 5_000));
        assert!(
            s.describe().contains("100,000 artifacts"),
            "{}",
            s.describe()
        );
        let s = Sizes::new(false, true);
        let (single, many) = s.repository_split();
        assert_eq!(single + many + 1, s.repositories);
        assert!(single <= s.plain_projects());
        assert!(Sizes::new(false, true).with(&[1, 2, 3]).is_err());
        assert!(Sizes::new(false, true).with(&[1, 2]).is_err());
        let s = Sizes::new(false, false).with(&[100, 50, 1000]).ok();
        assert_eq!(s.map(|s| s.artifacts), Some(1000));
    }

    #[test]
    fn cookies_are_kept_and_deleted_as_a_browser_does() {
        let mut h = HeaderMap::new();
        for v in [
            "berth_form=abc; Path=/; SameSite=Lax; HttpOnly",
            "sid=s1; Path=/; HttpOnly",
        ] {
            h.append(SET_COOKIE, reqwest::header::HeaderValue::from_static(v));
        }
        let mut jar = Jar::default();
        jar.take(&h);
        assert_eq!(jar.header(), "berth_form=abc; sid=s1");
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            reqwest::header::HeaderValue::from_static("berth_form=; Path=/; Max-Age=0"),
        );
        jar.take(&h);
        assert_eq!(jar.header(), "sid=s1");
        assert!(jar.has("sid") && !jar.has("berth_form"));
    }

    #[test]
    fn forms_and_logs_are_read() {
        let html =
            r#"<input type="hidden" name="_csrf" value="0123abcd"><input name="next" value="/x">"#;
        assert_eq!(hidden_input(html, "_csrf").as_deref(), Some("0123abcd"));
        assert_eq!(hidden_input(html, "other"), None);
        let log = "2026-12-01T20:00:00.000001Z  INFO request{request_id=p3-17 method=GET path=/projects}: berth_api: served status=200 latency_us=1234\n\
                   2026-12-01T20:00:00.000002Z  INFO request{request_id=p3-1 method=GET path=/projects}: berth_api: served status=200 latency_us=99\n";
        let served = served_latencies(log);
        assert_eq!(served.get("p3-17"), Some(&1234));
        assert_eq!(served.get("p3-1"), Some(&99));
        let json = r#"{"timestamp":"t","level":"INFO","fields":{"message":"served","status":200,"latency_us":321},"target":"berth_api","span":{"method":"GET","path":"/projects","request_id":"p4-0","name":"request"}}"#;
        assert_eq!(served_latencies(json).get("p4-0"), Some(&321));
        let log = concat!(
            r#"{"timestamp":"t","level":"DEBUG","fields":{"summary":"SELECT a …","elapsed_secs":0.002},"target":"sqlx::query","span":{"request_id":"q1-2","name":"request"}}"#,
            "\n",
            r#"{"timestamp":"t","level":"DEBUG","fields":{"summary":"PRAGMA foreign_keys = ON; …","elapsed_secs":0.004},"target":"sqlx::query","span":{"request_id":"q1-2","name":"request"}}"#,
            "\n",
            r#"{"timestamp":"t","level":"DEBUG","fields":{"summary":"SELECT b …","elapsed_secs":0.001},"target":"sqlx::query","span":{"request_id":"q1-2","name":"request"}}"#,
            "\n",
            r#"{"timestamp":"t","level":"DEBUG","fields":{"message":"x","elapsed_secs":0.5},"target":"sqlx::query"}"#,
            "\nnot json\n"
        );
        let q = logged_queries(log);
        assert_eq!(q.len(), 1);
        let (n, ms) = q["q1-2"];
        assert_eq!(n, 2);
        assert!((ms - 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_page_with_the_wrong_rows_is_refused() {
        let known: HashSet<String> = ["sha256:aa".to_owned(), "sha256:bb".to_owned()].into();
        let case = Case::new("/x", vec![contains("<h1>"), Check::Artifacts(2)]);
        let page = r#"<h1><code title="sha256:aa">aa</code><code title="sha256:bb">"#;
        assert_eq!(case.wrong(page, &known), None);
        assert!(case.wrong(&page.replace("<h1>", ""), &known).is_some());
        assert!(
            case.wrong(&page.replace("sha256:bb", "sha256:cc"), &known)
                .is_some()
        );
        let one = r#"<h1><code title="sha256:aa">"#;
        assert!(case.wrong(one, &known).is_some());
    }
}
