//! Test harness: runs the real `berth` binary on a free port with a private data directory, and
//! installs and runs the real components the tests need (Debian and PyPI packages), stopping
//! everything it started by PID. A missing component is installed, never skipped; if it cannot
//! be installed the test fails and says why.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_core::{Digest, DigestAlgorithm, DigestHasher};

pub mod api;
pub use berth_testkit::{ensure_debian, free_port, run};

/// A running `berth serve`.
pub struct Berth {
    child: Option<Child>,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The data directory (kept across restarts within a test).
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// Path of the binary under test: this build's, or `BERTH_TEST_BINARY` (to run the suite
/// against another build, e.g. to show a test fails on the code before a fix).
pub fn berth_bin() -> String {
    std::env::var("BERTH_TEST_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth").to_owned())
}

impl Berth {
    /// Starts berth on embedded defaults, but with authentication off (open mode, for tests of
    /// the registry API itself), in a fresh temporary data directory.
    pub async fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut b = Self::start_in(tmp.path(), &[]).await;
        b._tmp = Some(tmp);
        b
    }

    /// Starts berth with `data_dir` and extra environment; authentication is off unless `env`
    /// sets `BERTH_AUTH_ENABLED` (an empty value restores the default, on).
    pub async fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let pinned = env.iter().find(|(k, _)| *k == "BERTH_LISTEN");
        // A port chosen here can still be taken before berth binds it (another test process
        // picked it too): then berth says so and exits, and it is started again on another.
        for _ in 0..5 {
            let addr = pinned.map_or_else(
                || format!("127.0.0.1:{}", free_port()),
                |(_, v)| (*v).to_owned(),
            );
            let mut b = Self::spawn(data_dir, env, addr);
            match b.wait_healthy().await {
                Ok(()) => return b,
                Err(log) if pinned.is_none() && log.contains("Address already in use") => {}
                Err(log) => panic!("berth exited before becoming healthy:\n{log}"),
            }
        }
        panic!("berth found no free port in five tries")
    }

    fn spawn(data_dir: &Path, env: &[(&str, &str)], addr: String) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("berth.log"))
            .unwrap();
        let mut cmd = Command::new(berth_bin());
        cmd.arg("serve")
            .env_remove("BERTH_CONFIG")
            .env_remove("BERTH_DATABASE_URL")
            .env_remove("BERTH_STORAGE_PATH")
            .env_remove("BERTH_EXTERNAL_URL")
            .env_remove("BERTH_ADMIN_PASSWORD")
            .env("BERTH_AUTH_ENABLED", "false")
            .env("BERTH_LISTEN", &addr)
            .env("BERTH_DATA_DIR", data_dir)
            .env("BERTH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn berth");
        Self {
            child: Some(child),
            addr,
            data_dir: data_dir.to_owned(),
            _tmp: None,
        }
    }

    /// Waits until the server answers; `Err` with its log if it exited first.
    async fn wait_healthy(&mut self) -> Result<(), String> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let logged_before = self.log().len();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                let log = self.log();
                return Err(format!(
                    "exit {status}:\n{}",
                    log.get(logged_before..).unwrap_or(&log)
                ));
            }
            let log = self.log();
            let this_run = log.get(logged_before..).unwrap_or(&log);
            if this_run.contains("berth is serving") {
                if !this_run.contains("tls=true") {
                    if let Ok(r) = client.get(self.url("/healthz")).send().await
                        && r.status().is_success()
                    {
                        return Ok(());
                    }
                } else if std::net::TcpStream::connect(&self.addr).is_ok() {
                    // HTTPS: the test's own client checks it.
                    return Ok(());
                }
            }
            assert!(
                Instant::now() < deadline,
                "berth not healthy after 20 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("berth.log")).unwrap_or_default()
    }

    /// Keeps `dir` (its data directory) alive as long as the server.
    pub fn keeping(mut self, dir: tempfile::TempDir) -> Self {
        self._tmp = Some(dir);
        self
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        c.wait().unwrap()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The administrator's password in tests that enable authentication.
pub const ADMIN_PASSWORD: &str = "admin-pass-123";

impl Berth {
    /// Starts berth with authentication on, an administrator `admin`/[`ADMIN_PASSWORD`].
    pub async fn start_with_auth() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut b = Self::start_in(
            tmp.path(),
            &[
                ("BERTH_AUTH_ENABLED", "true"),
                ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ],
        )
        .await;
        b._tmp = Some(tmp);
        b
    }

    /// The node's metadata store, for seeding users and projects.
    pub async fn meta(&self) -> berth_meta::MetadataStore {
        let url = format!("sqlite://{}/berth.db", self.data_dir.display());
        berth_meta::MetadataStore::connect(&url, &berth_meta::PoolSettings::default())
            .await
            .unwrap()
    }
}

/// Creates a user with `password`, and gives it `role` in `project` (created if missing).
pub async fn seed_member(
    meta: &berth_meta::MetadataStore,
    user: &str,
    password: &str,
    project: &str,
    public: bool,
    role: &str,
) {
    let id = match meta.user(user).await.unwrap() {
        Some(u) => u.id,
        None => meta
            .create_user(
                user,
                Some(&berth_auth::password::hash(password).unwrap()),
                false,
            )
            .await
            .unwrap()
            .unwrap(),
    };
    let project_id = match meta.project(project).await.unwrap() {
        Some(p) => p.id,
        None => meta
            .create_project(project, public, None)
            .await
            .unwrap()
            .unwrap(),
    };
    if !role.is_empty() {
        meta.set_user_role(project_id, id, role).await.unwrap();
    }
}

/// Through the management API as the administrator, as an operator would: creates `user`
/// (unless it exists) and `project` (unless it exists), and makes the user a member with
/// Harbor's `role_id` (1 project admin, 2 developer, 3 guest, 4 maintainer, 5 limited guest).
pub async fn api_member(b: &Berth, user: &str, password: &str, project: &str, role_id: u8) {
    let c = reqwest::Client::new();
    let api = |path: &str| b.url(&format!("/api/v2.0{path}"));
    let admin = |req: reqwest::RequestBuilder| req.basic_auth("admin", Some(ADMIN_PASSWORD));
    let send = |req: reqwest::RequestBuilder, body: serde_json::Value| async move {
        let r = admin(req).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        assert!(
            status == 201 || status == 409,
            "{status}: {}",
            r.text().await.unwrap()
        );
    };
    send(
        c.post(api("/users")),
        serde_json::json!({"username": user, "password": password}),
    )
    .await;
    send(
        c.post(api("/projects")),
        serde_json::json!({"project_name": project}),
    )
    .await;
    send(
        c.post(api(&format!("/projects/{project}/members")))
            .header("x-is-resource-name", "true"),
        serde_json::json!({"role_id": role_id, "member_user": {"username": user}}),
    )
    .await;
}

/// Creates a robot account through the management API as the administrator (`body` as Harbor
/// takes it); returns its full name and its secret.
pub async fn api_robot(b: &Berth, body: serde_json::Value) -> (String, String) {
    let r = reqwest::Client::new()
        .post(b.url("/api/v2.0/robots"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    (
        v["name"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}

/// Creates a robot account with `secret` and `grants` (project name or `*`, actions), expiring
/// at `expires_at`, disabled or not.
pub async fn seed_robot(
    meta: &berth_meta::MetadataStore,
    name: &str,
    secret: &str,
    grants: &[(&str, &[&str])],
    expires_at: Option<i64>,
    disabled: bool,
) {
    let hash = berth_auth::password::hash(secret).unwrap();
    let mut resolved = Vec::new();
    for (project, actions) in grants {
        let project_id = match *project {
            "*" => None,
            name => Some(meta.project(name).await.unwrap().unwrap().id),
        };
        resolved.push(berth_meta::RobotGrant {
            project_id,
            actions: actions.iter().map(|a| a.parse().unwrap()).collect(),
        });
    }
    let written = meta
        .create_robot(&berth_meta::NewRobot {
            name,
            secret_hash: &hash,
            grants: &resolved,
            description: "",
            project_id: None,
            duration_days: -1,
            expires_at,
            disabled,
        })
        .await
        .unwrap();
    assert!(matches!(written, berth_meta::RobotWrite::Done(_)));
}

/// A client that sends Basic credentials on every request (as Harbor allows on /v2).
pub fn basic_client(user: &str, password: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let encoded = data_encoding::BASE64.encode(format!("{user}:{password}").as_bytes());
    headers.insert("authorization", format!("Basic {encoded}").parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> Digest {
    DigestHasher::digest_of(DigestAlgorithm::Sha256, data)
}

/// Pushes a blob with a single `POST ?digest=` and asserts 201.
pub async fn push_blob(c: &reqwest::Client, b: &Berth, repo: &str, data: &[u8]) -> Digest {
    let d = sha256(data);
    let r = c
        .post(b.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "push blob: {}", r.text().await.unwrap());
    d
}

/// An OCI image manifest for a config and layers (with their sizes).
pub fn image_manifest(
    config: (&Digest, usize),
    layers: &[(&Digest, usize)],
    extra: &str,
) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, n)| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":{n}}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",{extra}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        config.0,
        config.1,
        layers.join(",")
    )
}

/// Pushes config + one layer + a manifest tagged `tag`; returns the manifest's bytes and digest.
pub async fn push_image(
    c: &reqwest::Client,
    b: &Berth,
    repo: &str,
    tag: &str,
    seed: &str,
) -> (String, Digest) {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let layer = format!("layer-{seed}").repeat(100);
    let cd = push_blob(c, b, repo, config.as_bytes()).await;
    let ld = push_blob(c, b, repo, layer.as_bytes()).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())], "");
    let r = c
        .put(b.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "push manifest: {}",
        r.text().await.unwrap()
    );
    let d = sha256(m.as_bytes());
    (m, d)
}

/// Sends a request and asserts an OCI error response; returns its JSON.
pub async fn expect_refusal(
    req: reqwest::RequestBuilder,
    status: u16,
    code: &str,
) -> serde_json::Value {
    expect_error(req.send().await.unwrap(), status, code).await
}

/// Sends a request and returns its status code.
pub async fn status_of(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

/// Asserts an OCI error response and returns its JSON.
pub async fn expect_error(r: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    let got = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "body: {text}");
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(v["errors"][0]["code"], code, "body: {text}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {text}"
    );
    v
}

// ---- real components ---------------------------------------------------------------------

/// A Python virtual environment with the given PyPI packages, shared by test runs (kept under
/// /var/tmp and created once, under a lock).
pub fn python_venv(packages: &[&str]) -> PathBuf {
    ensure_debian(&[("python3", "python3")]);
    let dir = PathBuf::from("/var/tmp/berth-tests-venv");
    let stamp = dir.join(format!(
        "installed-{}",
        packages.join("-").replace(['/', ' ', '='], "_")
    ));
    if stamp.exists() {
        return dir;
    }
    let script = format!(
        "set -e; [ -x {d}/bin/pip ] || python3 -m venv {d} || \
         (rm -rf {d}; DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=900 python3-venv && python3 -m venv {d}); \
         {d}/bin/pip install -q {p}; touch {s}",
        d = dir.display(),
        p = packages.join(" "),
        s = stamp.display()
    );
    let out = Command::new("flock")
        .arg("/var/tmp/berth-tests-venv.lock")
        .arg("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip install {packages:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A private Docker engine (Debian's docker.io) with its own data root, exec root and socket;
/// vfs storage, no bridge, no iptables. Stopped and cleaned up on drop.
pub struct Dockerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `unix://…/docker.sock`
    pub host: String,
}

impl Dockerd {
    /// Starts the engine and waits until it answers.
    pub fn start() -> Self {
        ensure_debian(&[("dockerd", "docker.io"), ("gcc", "gcc"), ("tar", "tar")]);
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let d = dir.path();
        let host = format!("unix://{}/docker.sock", d.display());
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("/usr/sbin/dockerd")
            .args(["--data-root", &d.join("data").display().to_string()])
            .args(["--exec-root", &d.join("exec").display().to_string()])
            .args(["--pidfile", &d.join("dockerd.pid").display().to_string()])
            .args(["-H", &host])
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let me = Self {
            child: Some(child),
            dir,
            host,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !me
            .docker()
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "dockerd did not start:\n{}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    /// A `docker` command bound to this engine, with a private client config.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", self.dir.path().join("client"))
            .env("DOCKER_BUILDKIT", "0");
        c
    }

    /// The engine's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // dockerd leaves mounts (netns, layers) under its directories.
        let root = self.dir.path().display().to_string();
        if let Ok(mounts) = std::fs::read_to_string("/proc/mounts") {
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(1))
                .filter(|p| p.starts_with(&root))
                .collect();
            points.sort_unstable_by(|a, b| b.cmp(a));
            for p in points {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
    }
}

/// Writes a statically linked hello-world binary into `dir` and returns its path.
pub fn static_hello(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("hello.c"),
        "#include <stdio.h>\nint main(){puts(\"hello from scratch image\");return 0;}\n",
    )
    .unwrap();
    let bin = dir.join("hello");
    run(Command::new("gcc")
        .args(["-static", "-Os", "-o"])
        .arg(&bin)
        .arg(dir.join("hello.c")));
    bin
}

/// Random bytes (not zeros: real compression and hashing behaviour).
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A private OpenLDAP server (Debian's slapd) on a free port, with people and groups:
/// alice (groups developers, admins), bob (developers), carol (60 groups), all with password
/// `<name>pw`; the directory admin is `cn=admin,dc=example,dc=org` / `adminpw`.
pub struct Slapd {
    dir: tempfile::TempDir,
    /// `ldap://127.0.0.1:PORT`
    pub url: String,
}

impl Slapd {
    /// Starts slapd and loads the test data.
    pub fn start() -> Self {
        let preseed = Command::new("sh")
            .arg("-c")
            .arg("echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections")
            .status();
        assert!(
            preseed.is_ok_and(|s| s.success()),
            "debconf-set-selections failed"
        );
        ensure_debian(&[("slapd", "slapd"), ("ldapadd", "ldap-utils")]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("db")).unwrap();
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let admin_hash = run(Command::new("slappasswd").args(["-s", "adminpw"]))
            .trim()
            .to_owned();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n\
             loglevel none\ndatabase mdb\nmaxsize 104857600\nsuffix \"dc=example,dc=org\"\n\
             rootdn \"cn=admin,dc=example,dc=org\"\nrootpw {admin_hash}\ndirectory {d}/db\n\
             index objectClass,uid,cn,member eq\n\
             access to attrs=userPassword by self write by anonymous auth by * none\naccess to * by * read\n",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        run(Command::new("slapd")
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!("{url}/")));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Command::new("ldapsearch")
            .args(["-x", "-H", &url, "-b", "", "-s", "base"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(Instant::now() < deadline, "slapd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut ldif = String::from(
            "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,dc=example,dc=org\nobjectClass: organizationalUnit\nou: groups\n\n",
        );
        for (i, name) in ["alice", "bob", "carol"].iter().enumerate() {
            let hash = run(Command::new("slappasswd").args(["-s", &format!("{name}pw")]))
                .trim()
                .to_owned();
            ldif.push_str(&format!(
                "dn: uid={name},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
                 uid: {name}\ncn: {name}\nsn: {name}\nmail: {name}@example.org\nuidNumber: {n}\ngidNumber: {n}\n\
                 homeDirectory: /home/{name}\nuserPassword: {hash}\n\n",
                n = 10_001 + i
            ));
        }
        let people = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("member: uid={n},ou=people,dc=example,dc=org\n"))
                .collect::<String>()
        };
        let mut groups = vec![
            ("developers".to_owned(), people(&["alice", "bob"])),
            ("admins".to_owned(), people(&["alice"])),
        ];
        groups.extend((0..60).map(|i| (format!("team{i}"), people(&["carol"]))));
        for (cn, members) in groups {
            ldif.push_str(&format!("dn: cn={cn},ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: {cn}\n{members}\n"));
        }
        std::fs::write(d.join("data.ldif"), ldif).unwrap();
        run(Command::new("ldapadd")
            .args([
                "-x",
                "-H",
                &url,
                "-D",
                "cn=admin,dc=example,dc=org",
                "-w",
                "adminpw",
                "-f",
            ])
            .arg(d.join("data.ldif")));
        Self { dir, url }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("slapd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
            let pid = pid.trim().to_owned();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Command::new("kill")
                .args(["-0", &pid])
                .status()
                .is_ok_and(|s| s.success())
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The `sid` cookie and CSRF token a browser login (`/c/login`) on `node` gives, checked to be
/// `HttpOnly` and echoed in the `__csrf` cookie.
pub async fn log_in(
    c: &reqwest::Client,
    node: &Berth,
    user: &str,
    password: &str,
) -> (String, String) {
    let r = c
        .post(node.url("/c/login"))
        .form(&[("principal", user), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let cookies: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let sid = cookies
        .iter()
        .find_map(|c| c.strip_prefix("sid="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("sid=") && c.contains("HttpOnly")),
        "{cookies:?}"
    );
    let csrf = r.headers()["x-harbor-csrf-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("__csrf={csrf}"))),
        "{cookies:?}"
    );
    (sid, csrf)
}
