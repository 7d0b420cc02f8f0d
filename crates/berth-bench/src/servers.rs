//! The registries under test, each a private process on a free port with its own data
//! directory, and what the kernel says about them: CPU time and peak RSS.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The administrator of Berth with authentication on.
pub const ADMIN: (&str, &str) = ("admin", "Bench-admin-pass-1");

/// Which registry, and how it is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Debian's docker-registry (CNCF Distribution 2.8.2), filesystem storage, no auth.
    Reference,
    /// Berth, filesystem storage and SQLite (its defaults), authentication off.
    Berth,
    /// Berth with token authentication on (its default).
    BerthToken,
    /// The baseline berth binary (`--baseline`, e.g. the previous release), set up as
    /// [`Kind::Berth`]: authentication off.
    Baseline,
    /// The baseline berth binary set up as [`Kind::BerthToken`]: token authentication on.
    BaselineToken,
}

impl Kind {
    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Berth => "berth",
            Self::BerthToken => "berth+token",
            Self::Baseline => "baseline",
            Self::BaselineToken => "baseline+token",
        }
    }

    /// Whether token authentication is on (a Berth or baseline server with auth).
    pub fn token(self) -> bool {
        matches!(self, Self::BerthToken | Self::BaselineToken)
    }

    /// Whether it runs the baseline binary (measured, never judged against targets).
    pub fn baseline(self) -> bool {
        matches!(self, Self::Baseline | Self::BaselineToken)
    }
}

/// A running registry.
pub struct Server {
    /// What it is.
    pub kind: Kind,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    /// The data directory (and logs); removed when the server is dropped, unless
    /// [`Server::stop`] handed it on.
    dir: Option<tempfile::TempDir>,
    /// The log file's name in `dir`.
    log: &'static str,
}

/// How [`Server::berth_with`] starts Berth, beyond its defaults.
#[derive(Default)]
pub struct Launch {
    /// The data directory of an earlier server (see [`Server::stop`]); a new one if `None`.
    pub dir: Option<tempfile::TempDir>,
    /// The log file's name in the data directory (default `berth.log`); an existing file of
    /// that name is replaced.
    pub log: Option<&'static str>,
    /// More environment variables (e.g. `BERTH_LOG`).
    pub env: Vec<(&'static str, String)>,
}

/// Clock ticks per second of /proc/<pid>/stat.
fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

impl Server {
    /// Starts Berth (`bin`) with its defaults (or `config`) apart from the port, the data
    /// directory and whether authentication is on. The baseline kinds are started the same
    /// way, from the baseline binary.
    pub fn berth(bin: &Path, kind: Kind, config: Option<&Path>) -> anyhow::Result<Self> {
        Self::berth_with(bin, kind, config, Launch::default())
    }

    /// [`Server::berth`], in an existing data directory, with another log file or more
    /// environment variables.
    pub fn berth_with(
        bin: &Path,
        kind: Kind,
        config: Option<&Path>,
        launch: Launch,
    ) -> anyhow::Result<Self> {
        let dir = match launch.dir {
            Some(dir) => dir,
            None => tempfile::tempdir()?,
        };
        let log_name = launch.log.unwrap_or("berth.log");
        let port = berth_testkit::free_port();
        let log = std::fs::File::create(dir.path().join(log_name))?;
        let mut command = Command::new(bin);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let child = command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("BERTH_DATA_DIR", dir.path())
            .env("BERTH_AUTH_ENABLED", kind.token().to_string())
            .env("BERTH_ADMIN_PASSWORD", ADMIN.1)
            .envs(launch.env)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        Self::ready(kind, port, child, dir, log_name)
    }

    /// Starts Debian's docker-registry, installing it if missing, with the settings the
    /// reference measurements used: filesystem storage, in-memory blob descriptor cache,
    /// deletes enabled, info logging.
    pub fn reference() -> anyhow::Result<Self> {
        berth_testkit::ensure_debian(&[("docker-registry", "docker-registry")]);
        let dir = tempfile::tempdir()?;
        let port = berth_testkit::free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  cache:\n    blobdescriptor: inmemory\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: bench-secret\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot run docker-registry")?;
        Self::ready(Kind::Reference, port, child, dir, "registry.log")
    }

    fn ready(
        kind: Kind,
        port: u16,
        mut child: Child,
        dir: tempfile::TempDir,
        log: &'static str,
    ) -> anyhow::Result<Self> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.path().join(log)).unwrap_or_default();
                bail!("{} exited with {status} at start:\n{log}", kind.label());
            }
            if Instant::now() > deadline {
                bail!("{} did not listen within 20 s", kind.label());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            kind,
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir: Some(dir),
            log,
        })
    }

    /// The server's log file.
    pub fn log_path(&self) -> std::path::PathBuf {
        self.dir
            .as_ref()
            .map(|d| d.path().join(self.log))
            .unwrap_or_default()
    }

    /// Stops the server and hands over its data directory (to start another server on it).
    pub fn stop(mut self) -> anyhow::Result<tempfile::TempDir> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir
            .take()
            .context("the data directory was handed over before")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system) the process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which is in parentheses and may hold spaces).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum();
        ticks as f64 / ticks_per_second()
    }

    /// Resets the peak RSS the kernel reports (so that the next reading covers what follows).
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    /// Peak resident memory since start or the last reset, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
