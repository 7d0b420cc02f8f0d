//! Private Redis servers (Debian's redis-server): a single server, a Sentinel set (master,
//! replica, three sentinels) and a three-master Cluster. Killed by PID on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{ensure_debian, free_port, run, signal};

/// The password of every test Redis server.
pub const REDIS_PASSWORD: &str = "redispw";

fn install() {
    ensure_debian(&[
        ("redis-server", "redis-server"),
        ("redis-cli", "redis-tools"),
    ]);
}

fn wait_for(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One redis-server (or sentinel) process.
pub struct RedisServer {
    dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
    sentinel: bool,
}

impl RedisServer {
    fn spawn(config: &str, sentinel: bool) -> Self {
        install();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let conf = d.join("redis.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize yes\npidfile {d}/redis.pid\nlogfile {d}/redis.log\n\
                 dir {d}\nsave \"\"\nappendonly no\n{config}\n",
                d = d.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new("redis-server");
        cmd.arg(&conf);
        if sentinel {
            cmd.arg("--sentinel");
        }
        run(&mut cmd);
        let server = Self {
            dir,
            port,
            sentinel,
        };
        let log = server.dir.path().join("redis.log");
        wait_for("redis", &log, || {
            server.cli(&["PING"]).is_some_and(|o| o.contains("PONG"))
        });
        server
    }

    /// Runs redis-cli against this server; `None` if it fails.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let mut cmd = Command::new("redis-cli");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "--no-auth-warning",
        ]);
        if !self.sentinel {
            cmd.args(["-a", REDIS_PASSWORD]);
        }
        let out = cmd.args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("redis.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "KILL");
        }
    }

    /// Its directory (config and log).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A single password-protected Redis server.
pub struct Redis {
    /// The server.
    pub server: RedisServer,
}

impl Redis {
    /// Starts it.
    pub fn start() -> Self {
        Self {
            server: RedisServer::spawn(&format!("requirepass {REDIS_PASSWORD}"), false),
        }
    }

    /// `redis://:password@127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", self.server.port)
    }
}

/// A master, a replica and three sentinels (quorum 2) watching master `mymaster`; a failover
/// follows about 1 s after the master dies.
pub struct RedisSentinels {
    /// The first master.
    pub master: RedisServer,
    /// Its replica, promoted by a failover.
    pub replica: RedisServer,
    /// The sentinels.
    pub sentinels: Vec<RedisServer>,
}

impl RedisSentinels {
    /// Starts the set and waits until the sentinels see the replica.
    pub fn start() -> Self {
        let auth = format!("requirepass {REDIS_PASSWORD}\nmasterauth {REDIS_PASSWORD}");
        let master = RedisServer::spawn(&auth, false);
        let replica = RedisServer::spawn(
            &format!("{auth}\nreplicaof 127.0.0.1 {}", master.port),
            false,
        );
        let sentinels: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::spawn(
                    &format!(
                        "sentinel monitor mymaster 127.0.0.1 {} 2\nsentinel auth-pass mymaster {REDIS_PASSWORD}\n\
                         sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n\
                         sentinel parallel-syncs mymaster 1",
                        master.port
                    ),
                    true,
                )
            })
            .collect();
        let set = Self {
            master,
            replica,
            sentinels,
        };
        let log = set.sentinels[0].dir().join("redis.log");
        wait_for("the sentinels", &log, || {
            set.sentinels.iter().all(|s| {
                s.cli(&["SENTINEL", "REPLICAS", "mymaster"])
                    .is_some_and(|o| o.contains(&set.replica.port.to_string()))
            })
        });
        set
    }

    /// `redis+sentinel://:password@127.0.0.1:P1,…/mymaster`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!(
            "redis+sentinel://:{REDIS_PASSWORD}@{}/mymaster",
            hosts.join(",")
        )
    }

    /// The port of the master the sentinels currently name.
    pub fn current_master_port(&self) -> Option<u16> {
        let out = self.sentinels[0].cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"])?;
        out.lines().nth(1)?.trim().parse().ok()
    }
}

/// A Redis Cluster of three masters (no replicas).
pub struct RedisCluster {
    /// The nodes.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three nodes, joins them and waits for `cluster_state:ok`.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::spawn(
                    &format!(
                        "requirepass {REDIS_PASSWORD}\nmasterauth {REDIS_PASSWORD}\ncluster-enabled yes\n\
                         cluster-config-file nodes.conf\ncluster-node-timeout 2000"
                    ),
                    false,
                )
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.args([
            "--no-auth-warning",
            "-a",
            REDIS_PASSWORD,
            "--cluster",
            "create",
        ]);
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        run(create.arg("--cluster-yes"));
        let cluster = Self { nodes };
        let log = cluster.nodes[0].dir().join("redis.log");
        wait_for("the cluster", &log, || {
            cluster.nodes.iter().all(|n| {
                n.cli(&["CLUSTER", "INFO"])
                    .is_some_and(|o| o.contains("cluster_state:ok"))
            })
        });
        cluster
    }

    /// `redis+cluster://:password@127.0.0.1:P1,…`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://:{REDIS_PASSWORD}@{}", hosts.join(","))
    }
}
