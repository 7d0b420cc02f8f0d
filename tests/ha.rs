//! Stateless nodes: several berth processes sharing a real MariaDB and one blob directory (the
//! stand-in for CephFS) behind a real HAProxy. Uploads continue on any node after the node
//! that started them dies; tokens work on every node; a database outage is a 503 that ends
//! by itself.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_testkit::{Haproxy, MariaDb};
use reqwest::Client;
use support::{ADMIN_PASSWORD, Berth, free_port, random_bytes, sha256};

/// MariaDB, a shared blob directory, `n` nodes and HAProxy in front of them.
struct Cluster {
    nodes: Vec<Berth>,
    lb: Haproxy,
    shared: PathBuf,
    db: MariaDb,
    _dirs: tempfile::TempDir,
}

impl Cluster {
    async fn start(n: usize) -> Self {
        Self::start_with(n, &[]).await
    }

    /// `n` nodes (host names `node0`, `node1`, …) with `extra` environment each.
    async fn start_with(n: usize, extra: &[(&str, &str)]) -> Self {
        let db = tokio::task::spawn_blocking(MariaDb::start).await.unwrap();
        let url = db.database("berth");
        let dirs = tempfile::tempdir().unwrap();
        let shared = dirs.path().join("blobs");
        std::fs::create_dir_all(&shared).unwrap();
        let addrs: Vec<String> = (0..n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let lb = Haproxy::start(&addrs);
        let external = format!("http://{}", lb.addr);
        let mut nodes = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let dir = dirs.path().join(format!("node{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let host = format!("node{i}");
            let mut env = vec![
                ("BERTH_AUTH_ENABLED", "true"),
                ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
                ("BERTH_DATABASE_URL", url.as_str()),
                ("BERTH_STORAGE_PATH", shared.to_str().unwrap()),
                ("BERTH_EXTERNAL_URL", external.as_str()),
                ("BERTH_LISTEN", addr.as_str()),
                ("BERTH_TRUSTED_PROXIES", "127.0.0.1/32"),
                ("HOSTNAME", host.as_str()),
            ];
            env.extend_from_slice(extra);
            nodes.push(Berth::start_in(&dir, &env).await);
        }
        let cluster = Self {
            nodes,
            lb,
            shared,
            db,
            _dirs: dirs,
        };
        cluster.wait_all_up().await;
        cluster
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.lb.addr)
    }

    /// Waits until HAProxy sends requests to every node (each answers in turn).
    async fn wait_all_up(&self) {
        let c = Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut ok = 0;
            for _ in 0..self.nodes.len() * 2 {
                if c.get(self.url("/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
                {
                    ok += 1;
                }
            }
            if ok == self.nodes.len() * 2 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the nodes never all became ready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn admin(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.basic_auth("admin", Some(ADMIN_PASSWORD))
}

/// The pid of the process holding the writer lock of an upload in `shared` (from /proc/locks).
fn upload_writer(shared: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let inodes: Vec<u64> = std::fs::read_dir(shared.join("uploads"))
        .ok()?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.ino())
        .collect();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, pid, id) = (fields.get(1)?, fields.get(4)?, fields.get(5)?);
        let inode: u64 = id.rsplit(':').next()?.parse().ok()?;
        (*kind == "FLOCK" && inodes.contains(&inode)).then(|| pid.parse().ok())?
    })
}

/// Streams `head`, then stalls: the request is in flight until its server dies.
fn stalled(head: Vec<u8>) -> reqwest::Body {
    let stream = futures_util::stream::unfold(Some(head), |state| async move {
        match state {
            Some(bytes) => Some((Ok::<_, std::io::Error>(bytes::Bytes::from(bytes)), None)),
            None => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                None
            }
        }
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_upload_continues_on_another_node_after_its_node_dies() {
    let mut cluster = Cluster::start(3).await;
    let c = Client::new();
    let data = random_bytes(12 << 20, 7);
    let digest = sha256(&data);

    // Started on node 0, first chunk there too.
    let node0 = cluster.nodes[0].url("");
    let r = admin(c.post(format!("{node0}/v2/library/big/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = admin(c.patch(format!("{node0}{location}")))
        .header("content-range", format!("0-{}", (4 << 20) - 1))
        .body(data[..4 << 20].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // The second chunk is cut off by SIGKILL while node 0 writes it.
    let patch = tokio::spawn(
        admin(c.patch(format!("{node0}{location}")))
            .header("content-range", format!("{}-{}", 4 << 20, (8 << 20) - 1))
            .body(stalled(data[4 << 20..6 << 20].to_vec()))
            .send(),
    );
    let pid = cluster.nodes[0].pid().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while upload_writer(&cluster.shared) != Some(pid) {
        assert!(
            Instant::now() < deadline,
            "node 0 never took the upload's writer lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.nodes[0].kill();
    assert!(patch.await.unwrap().is_err());

    // Through the load balancer: the recorded offset, then the rest, on the surviving nodes.
    let r = admin(c.get(cluster.url(&location))).send().await.unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let range = r.headers()["range"].to_str().unwrap().to_owned();
    assert_eq!(
        range,
        format!("0-{}", (4 << 20) - 1),
        "the interrupted chunk left nothing recorded"
    );
    let mut offset = 4 << 20;
    while offset < data.len() {
        let end = (offset + (3 << 20)).min(data.len());
        let r = admin(c.patch(cluster.url(&location)))
            .header("content-range", format!("{offset}-{}", end - 1))
            .body(data[offset..end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        offset = end;
    }
    let r = admin(c.put(cluster.url(&format!("{location}?digest={digest}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // Every surviving node serves it, byte-identical.
    for node in &cluster.nodes[1..] {
        let body = admin(c.get(node.url(&format!("/v2/library/big/blobs/{digest}"))))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(sha256(&body), digest);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_one_node_work_on_every_node() {
    let cluster = Cluster::start(2).await;
    let c = Client::new();
    let token: serde_json::Value = admin(
        c.get(
            cluster.nodes[0]
                .url("/service/token?service=berth-registry&scope=repository:library/x:pull,push"),
        ),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = token["token"].as_str().unwrap();
    for node in &cluster.nodes {
        let r = c
            .post(node.url("/v2/library/x/blobs/uploads/"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    // The challenge names the load balancer, not the node.
    let r = c.get(cluster.nodes[1].url("/v2/")).send().await.unwrap();
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(&format!(
            "realm=\"http://{}/service/token\"",
            cluster.lb.addr
        )),
        "{challenge}"
    );
    // A user created through one node logs in on the other.
    let r = admin(c.post(cluster.nodes[0].url("/api/v2.0/users")))
        .json(&serde_json::json!({"username": "dana", "password": "Dana-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .get(cluster.nodes[1].url("/api/v2.0/users/current"))
        .basic_auth("dana", Some("Dana-pass-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A setting changed through one node applies on the other within seconds (it reads the
    // stored settings every `settings.refresh_secs`, 5 by default).
    let r = admin(c.put(cluster.nodes[0].url("/api/v2.0/configurations")))
        .json(&serde_json::json!({"project_creation_restriction": "adminonly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let changed = Instant::now();
    loop {
        let info: serde_json::Value = c
            .get(cluster.nodes[1].url("/api/v2.0/systeminfo"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if info["project_creation_restriction"] == "adminonly" {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(15),
            "node 1 still has {info}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = c
        .post(cluster.nodes[1].url("/api/v2.0/projects"))
        .basic_auth("dana", Some("Dana-pass-1"))
        .json(&serde_json::json!({"project_name": "danas"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "only administrators create projects now");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_a_503_and_ends_without_a_restart() {
    let mut db = tokio::task::spawn_blocking(MariaDb::start).await.unwrap();
    let url = db.database("berth");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("berth.toml");
    std::fs::write(&config, "[database]\nacquire_timeout_secs = 2\n").unwrap();
    let b = Berth::start_in(
        dir.path(),
        &[
            ("BERTH_AUTH_ENABLED", "true"),
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_DATABASE_URL", url.as_str()),
            ("BERTH_CONFIG", config.to_str().unwrap()),
        ],
    )
    .await;
    let c = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    support::push_image(
        &support::basic_client("admin", ADMIN_PASSWORD),
        &b,
        "library/app",
        "v1",
        "outage",
    )
    .await;
    let token: serde_json::Value = admin(
        c.get(b.url("/service/token?service=berth-registry&scope=repository:library/app:pull")),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let manifest = || {
        c.get(b.url("/v2/library/app/manifests/v1"))
            .bearer_auth(&token)
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
    };
    assert_eq!(manifest().send().await.unwrap().status(), 200);

    tokio::task::block_in_place(|| db.kill());
    let started = Instant::now();
    let r = manifest().send().await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "answered after {elapsed:?}"
    );
    support::expect_error(r, 503, "UNAVAILABLE").await;
    let r = admin(c.get(b.url("/api/v2.0/projects")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "SERVICE_UNAVAILABLE");
    let r = c.get(b.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(c.get(b.url("/healthz")).send().await.unwrap().status(), 200);

    tokio::task::block_in_place(|| db.restart());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if manifest().send().await.unwrap().status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "berth did not recover:\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(c.get(b.url("/readyz")).send().await.unwrap().status(), 200);
    assert!(!b.log().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn config_check_names_an_unreachable_or_refused_database() {
    let db = tokio::task::spawn_blocking(MariaDb::start).await.unwrap();
    let good = db.database("berth");
    let check = |url: &str| {
        std::process::Command::new(support::berth_bin())
            .args(["config", "check"])
            .env_remove("BERTH_CONFIG")
            .env("BERTH_DATABASE_URL", url)
            .output()
            .unwrap()
    };
    let out = check(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("database           reachable"), "{stdout}");
    assert!(
        !stdout.contains("berthpw"),
        "the password is hidden: {stdout}"
    );
    let wrong_password = good.replace("berthpw", "wrong-secret");
    let closed_port = format!("mysql://berth:berthpw@127.0.0.1:{}/berth", free_port());
    for (url, expected) in [
        (wrong_password.as_str(), "Access denied"),
        (closed_port.as_str(), "onnection refused"),
    ] {
        let out = check(url);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("database.url = \"mysql://berth:***@"),
            "{stderr}"
        );
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            !stderr.contains("wrong-secret") && !stderr.contains("berthpw"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_pushes_through_haproxy_while_the_node_receiving_a_layer_dies() {
    let cluster = Cluster::start(3).await;
    docker_push_survives_a_node_dying(cluster, |c| {
        let pid = upload_writer(&c.shared)?;
        c.nodes.iter().position(|n| n.pid() == Some(pid))
    })
    .await;
}

/// The same with blobs in S3 (Ceph RGW) and Redis: the node receiving the layer is the holder
/// of the upload's lease in the database.
#[tokio::test(flavor = "multi_thread")]
async fn docker_pushes_through_haproxy_to_ceph_rgw_with_redis_while_a_node_dies() {
    let (rgw, redis) = tokio::join!(
        tokio::task::spawn_blocking(berth_testkit::CephRgw::start),
        tokio::task::spawn_blocking(berth_testkit::Redis::start)
    );
    let (rgw, redis) = (rgw.unwrap(), redis.unwrap());
    create_bucket(&rgw, "registry").await;
    let redis_url = redis.url();
    // docker pulls layers through redirects to presigned RGW URLs.
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("berth.toml");
    std::fs::write(&config, "[storage.s3]\nredirect_secs = 300\n").unwrap();
    let cluster = Cluster::start_with(
        3,
        &[
            ("BERTH_STORAGE_DRIVER", "s3"),
            ("BERTH_S3_ENDPOINT", rgw.endpoint.as_str()),
            ("BERTH_S3_BUCKET", "registry"),
            ("BERTH_S3_REGION", "default"),
            ("AWS_ACCESS_KEY_ID", rgw.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", rgw.secret_key.as_str()),
            ("BERTH_REDIS_URL", redis_url.as_str()),
            ("BERTH_CONFIG", config.to_str().unwrap()),
        ],
    )
    .await;
    docker_push_survives_a_node_dying(cluster, |c| {
        let holders =
            c.db.sql("SELECT holder FROM berth.job_leases WHERE name LIKE 'upload:%'");
        let holder = holders.lines().next()?;
        holder.strip_prefix("node")?.split('-').next()?.parse().ok()
    })
    .await;
    assert!(redis.server.cli(&["PING"]).is_some());
}

async fn create_bucket(rgw: &berth_testkit::CephRgw, bucket: &str) {
    s3_client(rgw)
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
}

/// An S3 client of the RGW's user.
fn s3_client(rgw: &berth_testkit::CephRgw) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("default"))
            .endpoint_url(&rgw.endpoint)
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &rgw.access_key,
                &rgw.secret_key,
                None,
                None,
                "test",
            ))
            .build(),
    )
}

/// docker logs in and pushes a 64 MiB layer through HAProxy; the node receiving it (found by
/// `receiving`) is SIGKILLed; docker's retry completes the push through another node, and the
/// image pulls back and runs with its payload byte-identical.
async fn docker_push_survives_a_node_dying(
    mut cluster: Cluster,
    receiving: impl Fn(&Cluster) -> Option<usize>,
) {
    support::ensure_debian(&[("gcc", "gcc")]);
    let dockerd = support::Dockerd::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    support::static_hello(w);
    let payload = random_bytes(64 << 20, 11);
    std::fs::write(w.join("payload.bin"), &payload).unwrap();
    std::fs::write(
        w.join("Dockerfile"),
        "FROM scratch\nCOPY hello /hello\nCOPY payload.bin /payload.bin\nCMD [\"/hello\"]\n",
    )
    .unwrap();
    let image = format!("{}/library/ha:1", cluster.lb.addr);
    support::run(dockerd.docker().args(["build", "-q", "-t", &image]).arg(w));
    let mut login = dockerd.docker();
    login
        .args(["login", "-u", "admin", "--password-stdin", &cluster.lb.addr])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ADMIN_PASSWORD.as_bytes())
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    // Push, and SIGKILL whichever node holds the writer lock of the big layer's upload.
    let mut push = dockerd.docker();
    push.args(["push", &image]);
    let push = tokio::task::spawn_blocking(move || push.output().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        if let Some(i) = receiving(&cluster) {
            break i;
        }
        assert!(Instant::now() < deadline, "no node ever received the layer");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    cluster.nodes[victim].kill();
    let out = push.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("digest: sha256:"),
        "push failed after node {victim} died:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Pulled back through the balancer, the image runs and its payload is byte-identical.
    support::run(dockerd.docker().args(["rmi", &image]));
    support::run(dockerd.docker().args(["pull", &image]));
    let ran = support::run(
        dockerd
            .docker()
            .args(["run", "--rm", "--network", "none", &image]),
    );
    assert_eq!(ran.trim(), "hello from scratch image");
    support::run(
        dockerd
            .docker()
            .args(["create", "--name", "ha-check", &image]),
    );
    let copied = w.join("copied.bin");
    support::run(
        dockerd
            .docker()
            .args(["cp", "ha-check:/payload.bin"])
            .arg(&copied),
    );
    assert!(
        std::fs::read(&copied).unwrap() == payload,
        "payload differs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_count_on_every_node_through_redis_and_logins_outlive_redis() {
    let redis = tokio::task::spawn_blocking(berth_testkit::Redis::start)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let env = [
        ("BERTH_AUTH_ENABLED", "true"),
        ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("BERTH_REDIS_URL", url.as_str()),
    ];
    let a = Berth::start_in(dir.path(), &env).await;
    let b = Berth::start_in(dir.path(), &env).await;
    let c = Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(a.log().contains("shared through redis") && b.log().contains("shared through redis")) {
        assert!(Instant::now() < deadline, "the nodes never reached redis");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !a.log().contains("redispw"),
        "the redis password is never logged"
    );
    let login = |node: &Berth, password: &str| {
        c.get(node.url("/service/token?service=berth-registry"))
            .basic_auth("admin", Some(password))
            .send()
    };
    // Ten failures, spread over both nodes, exhaust the account's limit on both.
    for i in 0..10 {
        let node = if i % 2 == 0 { &a } else { &b };
        assert_eq!(login(node, "wrong").await.unwrap().status(), 401);
    }
    for node in [&a, &b] {
        let r = login(node, ADMIN_PASSWORD).await.unwrap();
        assert_eq!(r.status(), 429, "the limit is shared");
        assert!(r.headers().contains_key("retry-after"));
    }
    let ready: serde_json::Value = c
        .get(a.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["redis"]["ok"], true, "{ready}");

    // Without Redis, logins and pushes go on; readiness reports it without draining the node.
    redis.server.kill();
    let r = c.get(a.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ready["redis"]["ok"], false, "{ready}");
    assert_eq!(ready["redis"]["required"], false, "{ready}");
    // A new user logs in and pushes (its failures would now be counted per node).
    support::api_member(&a, "dev", "Dev-pass-1", "team", 2).await;
    let dev = support::basic_client("dev", "Dev-pass-1");
    support::push_image(&dev, &b, "team/app", "v1", "no-redis").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_ceph_rgw_an_upload_continues_on_another_node_and_config_check_names_a_missing_bucket() {
    let (rgw, db) = tokio::join!(
        tokio::task::spawn_blocking(berth_testkit::CephRgw::start),
        tokio::task::spawn_blocking(MariaDb::start)
    );
    let (rgw, db) = (rgw.unwrap(), db.unwrap());
    let url = db.database("berth");
    let dirs = tempfile::tempdir().unwrap();
    let config = dirs.path().join("berth.toml");
    std::fs::write(
        &config,
        "[storage.s3]\npart_size_mb = 5\nwriter_lease_secs = 3\nregion = \"default\"\nredirect_secs = 300\n",
    )
    .unwrap();
    let s3_env = [
        ("BERTH_STORAGE_DRIVER", "s3"),
        ("BERTH_S3_ENDPOINT", rgw.endpoint.as_str()),
        ("BERTH_S3_BUCKET", "registry"),
        ("AWS_ACCESS_KEY_ID", rgw.access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", rgw.secret_key.as_str()),
        ("BERTH_CONFIG", config.to_str().unwrap()),
    ];
    // The bucket does not exist yet: config check says so in one line.
    let out = std::process::Command::new(support::berth_bin())
        .args(["config", "check"])
        .envs(s3_env)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("storage.s3") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains(&rgw.secret_key));
    create_bucket(&rgw, "registry").await;

    let addrs: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let lb = Haproxy::start(&addrs);
    let mut nodes = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let dir = dirs.path().join(format!("node{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut env = vec![
            ("BERTH_AUTH_ENABLED", "true"),
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_DATABASE_URL", url.as_str()),
            ("BERTH_LISTEN", addr.as_str()),
        ];
        env.extend(s3_env);
        nodes.push(Berth::start_in(&dir, &env).await);
    }
    let c = Client::new();
    let via_lb = |path: &str| format!("http://{}{path}", lb.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c
        .get(via_lb("/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "not ready:\n{}", nodes[0].log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let data = random_bytes(14 << 20, 21);
    let digest = sha256(&data);
    let node0 = nodes[0].url("");
    let r = admin(c.post(format!("{node0}/v2/library/s3/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let first = 6 << 20;
    let r = admin(c.patch(format!("{node0}{location}")))
        .header("content-range", format!("0-{}", first - 1))
        .body(data[..first].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let patch = tokio::spawn(
        admin(c.patch(format!("{node0}{location}")))
            .body(stalled(data[first..first + (2 << 20)].to_vec()))
            .send(),
    );
    // Node 0 holds the upload's lease (a row in the shared database) while it reads the body.
    let upload_id = location.rsplit('/').next().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while db
        .sql(&format!(
            "SELECT holder FROM berth.job_leases WHERE name = 'upload:{upload_id}'"
        ))
        .trim()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "node 0 never took the upload's lease"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes[0].kill();
    assert!(patch.await.unwrap().is_err());

    // Node 1 continues once node 0's lease has expired (409 with Retry-After meanwhile).
    let r = admin(c.get(nodes[1].url(&location))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], format!("0-{}", first - 1).as_str());
    let rest = data[first..].to_vec();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "the dead node's lease never expired"
        );
        let sent = admin(c.patch(via_lb(&location)))
            .header("content-range", format!("{first}-{}", data.len() - 1))
            .body(rest.clone())
            .send()
            .await;
        // Until HAProxy marks node 0 down, a request sent there fails in flight (a body already
        // sent cannot be retried by the balancer); a client retries, as docker does.
        let Ok(r) = sent else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if r.status() == 202 {
            break;
        }
        assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());
        assert!(r.headers().contains_key("retry-after"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let r = admin(c.put(via_lb(&format!("{location}?digest={digest}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let body = admin(c.get(via_lb(&format!("/v2/library/s3/blobs/{digest}"))))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(body == data, "the blob read back from S3 differs");
    // With redirect_secs, a blob GET is a redirect to a presigned RGW URL (HEAD stays local).
    let no_follow = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = admin(no_follow.get(via_lb(&format!("/v2/library/s3/blobs/{digest}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&rgw.endpoint) && location.contains("X-Amz-Signature"),
        "{location}"
    );
    let r = admin(no_follow.head(via_lb(&format!("/v2/library/s3/blobs/{digest}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        data.len().to_string().as_str()
    );
    let r = admin(c.get(via_lb(&format!("/v2/library/s3/blobs/{digest}"))))
        .header("range", "bytes=5242870-5242889")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap() == data[5_242_870..5_242_890]);
    // A whole image through the balancer, and nothing left of the upload in the bucket.
    let basic = support::basic_client("admin", ADMIN_PASSWORD);
    support::push_image(&basic, &nodes[1], "library/s3img", "v1", "rgw").await;
    let listed = s3_client(&rgw)
        .list_objects_v2()
        .bucket("registry")
        .prefix("uploads/")
        .send()
        .await
        .unwrap();
    let left: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(
        left.iter()
            .all(|k| !k.contains(location.rsplit('/').next().unwrap())),
        "{left:?}"
    );
}

async fn current_user(c: &Client, node: &Berth, sid: &str) -> Option<String> {
    let r = c
        .get(node.url("/api/v2.0/users/current"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        200 => Some(
            r.json::<serde_json::Value>().await.unwrap()["username"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
        401 => None,
        s => panic!("users/current answered {s}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_and_cached_lookups_hold_on_every_node_through_redis() {
    let redis = tokio::task::spawn_blocking(berth_testkit::Redis::start)
        .await
        .unwrap();
    let url = redis.url();
    let cluster = Cluster::start_with(3, &[("BERTH_REDIS_URL", url.as_str())]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cluster
        .nodes
        .iter()
        .all(|n| n.log().contains("shared through redis"))
    {
        assert!(Instant::now() < deadline, "the nodes never reached redis");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let [n0, n1, n2] = &cluster.nodes[..] else {
        unreachable!()
    };
    let c = Client::new();

    // A session opened on one node works on every node, and ends on every node.
    let (sid, csrf) = support::log_in(&c, n0, "admin", ADMIN_PASSWORD).await;
    for node in [n0, n1, n2] {
        assert_eq!(current_user(&c, node, &sid).await.as_deref(), Some("admin"));
    }
    let create = |node: &Berth, name: &str, token: Option<&str>| {
        let mut req = c
            .post(node.url("/api/v2.0/projects"))
            .header("cookie", format!("sid={sid}"))
            .json(&serde_json::json!({"project_name": name}));
        if let Some(t) = token {
            req = req.header("x-harbor-csrf-token", t);
        }
        req.send()
    };
    let r = create(n1, "web", None).await.unwrap();
    assert_eq!(
        r.status(),
        403,
        "a change under a session needs the CSRF token"
    );
    assert!(r.text().await.unwrap().contains("CSRF"));
    assert_eq!(
        create(n1, "web", Some("forged")).await.unwrap().status(),
        403
    );
    assert_eq!(create(n2, "web", Some(&csrf)).await.unwrap().status(), 201);
    let r = c
        .get(n2.url("/c/log_out"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    for node in [n0, n1, n2] {
        assert_eq!(current_user(&c, node, &sid).await, None, "ended everywhere");
    }
    // Login errors; robots have no sessions.
    let r = c
        .post(n0.url("/c/login"))
        .form(&[("principal", "admin"), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = c
        .post(n0.url("/c/login"))
        .form(&[("principal", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("password"));
    let r = c
        .post(n0.url("/c/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("%%%")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (robot, secret) = support::api_robot(
        n0,
        serde_json::json!({"name": "ci", "level": "system", "duration": -1,
            "permissions": [{"kind": "project", "namespace": "web",
                "access": [{"resource": "repository", "action": "pull"}]}]}),
    )
    .await;
    let r = c
        .post(n1.url("/c/login"))
        .form(&[("principal", robot.as_str()), ("password", secret.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("robot"));
    // A password change (through another node) ends the user's sessions at once.
    let r = admin(c.post(n0.url("/api/v2.0/users")))
        .json(&serde_json::json!({"username": "dana", "password": "Dana-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let dana_id = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (dana, _) = support::log_in(&c, n1, "dana", "Dana-pass-1").await;
    assert_eq!(current_user(&c, n2, &dana).await.as_deref(), Some("dana"));
    let r = admin(c.put(n0.url(&format!("/api/v2.0/users/{dana_id}/password"))))
        .json(&serde_json::json!({"new_password": "Dana-pass-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(current_user(&c, n2, &dana).await, None);

    // Cached lookups: a tag read (and cached) on every node moves when it is pushed through
    // another node, and deletes are seen everywhere at once.
    let admin_client = support::basic_client("admin", ADMIN_PASSWORD);
    let (_, first) = support::push_image(&admin_client, n0, "web/app", "v1", "one").await;
    let digest_of = |node: &Berth, reference: String| {
        admin_client
            .get(node.url(&format!("/v2/web/app/manifests/{reference}")))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
    };
    let seen = |r: reqwest::Response| {
        (
            r.status().as_u16(),
            r.headers()
                .get("docker-content-digest")
                .map(|v| v.to_str().unwrap().to_owned()),
        )
    };
    for node in [n0, n1, n2] {
        for _ in 0..2 {
            let r = digest_of(node, "v1".into()).await.unwrap();
            assert_eq!(seen(r), (200, Some(first.to_string())));
        }
    }
    let (_, second) = support::push_image(&admin_client, n2, "web/app", "v1", "two").await;
    for node in [n0, n1, n2] {
        let r = digest_of(node, "v1".into()).await.unwrap();
        assert_eq!(seen(r), (200, Some(second.to_string())), "the moved tag");
    }
    let r = admin_client
        .delete(n1.url(&format!("/v2/web/app/manifests/{second}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    for node in [n0, n1, n2] {
        assert_eq!(seen(digest_of(node, "v1".into()).await.unwrap()).0, 404);
        assert_eq!(
            seen(digest_of(node, second.to_string()).await.unwrap()).0,
            404
        );
        assert_eq!(
            seen(digest_of(node, first.to_string()).await.unwrap()).0,
            200
        );
    }
    // The cache is in Redis: the repository's hash is there.
    let keys = redis.server.cli(&["KEYS", "berth:lookups:*"]).unwrap();
    assert!(keys.contains("berth:lookups:web/app"), "{keys}");
}

/// `berth jobs …` against the cluster's database; returns stdout, asserting success.
fn jobs_cli(cluster: &Cluster, args: &[&str]) -> String {
    let out = std::process::Command::new(support::berth_bin())
        .arg("jobs")
        .args(args)
        .env_remove("BERTH_CONFIG")
        .env("BERTH_DATABASE_URL", cluster.db.url("berth"))
        .env("BERTH_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "berth jobs {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn admin_json(c: &Client, url: String) -> serde_json::Value {
    let r = admin(c.get(url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_node_is_killed_finishes_on_another_from_its_checkpoint_and_schedules_fire_once()
 {
    let mut cluster = Cluster::start_with(
        3,
        &[
            ("BERTH_JOBS_LEASE_SECS", "3"),
            ("BERTH_AUDIT_RETENTION_HOURS", "1"),
            ("BERTH_AUDIT_PURGE_SCHEDULE", "@every 2s"),
        ],
    )
    .await;
    let started = Instant::now();
    let c = Client::new();
    let out = jobs_cli(
        &cluster,
        &[
            "run",
            "count",
            "--params",
            r#"{"steps": 40, "step_ms": 150}"#,
        ],
    );
    let execution: i64 = out
        .trim()
        .strip_prefix("execution ")
        .and_then(|r| r.strip_suffix(" started"))
        .unwrap()
        .parse()
        .unwrap();
    let tasks = admin_json(
        &c,
        cluster.url(&format!(
            "/api/v2.0/jobservice/executions/{execution}/tasks"
        )),
    )
    .await;
    let job = tasks[0]["id"].as_i64().unwrap();
    // Wait until a node has counted a few steps, then kill it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (holder, done_before) = loop {
        let j = admin_json(&c, cluster.url(&format!("/api/v2.0/jobservice/jobs/{job}"))).await;
        let done = j["checkpoint"]["done"].as_u64().unwrap_or(0);
        if j["status"] == "running" && done >= 4 {
            break (j["node"].as_str().unwrap().to_owned(), done);
        }
        assert!(Instant::now() < deadline, "the job never ran: {j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let victim: usize = holder
        .strip_prefix("node")
        .and_then(|r| r.split('-').next())
        .unwrap()
        .parse()
        .unwrap();
    cluster.nodes[victim].kill();
    let killed_at = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(40);
    let finished = loop {
        let j = admin_json(&c, cluster.url(&format!("/api/v2.0/jobservice/jobs/{job}"))).await;
        if j["status"] != "running" && j["status"] != "pending" {
            break j;
        }
        assert!(Instant::now() < deadline, "the job was not taken over: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert!(
        killed_at.elapsed() >= Duration::from_secs(2),
        "taken over only once the lease expired"
    );
    let runs = finished["result"]["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 2, "{finished}");
    assert!(
        runs[0][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("node{victim}-"))
    );
    assert!(
        !runs[1][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("node{victim}-"))
    );
    // The second node started at the last checkpoint: every step was counted exactly once.
    let first = runs[0][2].as_u64().unwrap();
    assert!(first >= done_before, "{finished}");
    assert_eq!(runs[1][1].as_u64().unwrap(), first);
    assert_eq!(first + runs[1][2].as_u64().unwrap(), 40);
    assert_eq!(finished["result"]["steps"], 40);
    assert_eq!(finished["attempts"], 2);
    let shown = jobs_cli(&cluster, &["show", &job.to_string()]);
    assert!(shown.contains("status       succeeded"), "{shown}");
    assert!(
        shown.contains(&format!("resuming at step {first} on node")),
        "{shown}"
    );
    let log = admin(c.get(cluster.url(&format!("/api/v2.0/jobservice/jobs/{job}/log"))))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(log.contains("resuming at step"), "{log}");

    // The audit purge schedule fired every 2 s on three nodes, then two: once per occurrence.
    let elapsed = started.elapsed().as_secs();
    let executions = admin_json(
        &c,
        cluster.url("/api/v2.0/jobservice/executions?page_size=100&q=vendor_type%3Daudit-purge"),
    )
    .await;
    // Each firing has its own second (occurrences are 2 s apart; a duplicate would share one).
    let mut seconds: Vec<String> = executions
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["trigger"], "schedule", "{e}");
            e["start_time"].as_str().unwrap().to_owned()
        })
        .collect();
    let all = seconds.len();
    seconds.sort();
    seconds.dedup();
    assert_eq!(seconds.len(), all, "one firing per occurrence: {seconds:?}");
    let jobs = admin_json(
        &c,
        cluster.url("/api/v2.0/jobservice/jobs?page_size=100&q=kind%3Daudit-purge"),
    )
    .await;
    let fired = jobs.as_array().unwrap();
    for j in fired {
        assert_eq!(j["status"], "succeeded", "{j}");
    }
    let count = executions.as_array().unwrap().len() as u64;
    assert!(
        count + 1 >= elapsed / 2,
        "{count} purges in {elapsed} s of a schedule every 2 s"
    );
    assert_eq!(fired.len() as u64, count, "one job per firing");
}
