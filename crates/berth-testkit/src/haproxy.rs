//! A private HAProxy (Debian's haproxy) balancing round robin over backends, with active
//! health checks on `/readyz`, as a production load balancer in front of Berth nodes would.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::{ensure_debian, free_port, run, signal};

/// HAProxy on a free port in front of `backends`. Stopped on drop.
pub struct Haproxy {
    dir: tempfile::TempDir,
    /// Its frontend, `127.0.0.1:PORT`.
    pub addr: String,
}

impl Haproxy {
    /// Starts HAProxy in front of `backends` (`host:port` each) and waits until it listens.
    pub fn start(backends: &[String]) -> Self {
        ensure_debian(&[("haproxy", "haproxy")]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, b)| format!("    server n{i} {b} check\n"))
            .collect();
        let config = format!(
            "global\n    maxconn 2048\n    pidfile {d}/haproxy.pid\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 120s\n    timeout server 120s\n    option forwardfor\n\
             frontend registry\n    bind 127.0.0.1:{port}\n    default_backend berth\n\
             backend berth\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n\
             \x20   retry-on conn-failure empty-response response-timeout\n    retries 3\n    option redispatch 1\n\
             \x20   default-server inter 300ms fall 2 rise 2\n{servers}",
            d = d.display()
        );
        std::fs::write(d.join("haproxy.cfg"), config).unwrap();
        run(Command::new("haproxy")
            .arg("-c")
            .arg("-q")
            .arg("-f")
            .arg(d.join("haproxy.cfg")));
        run(Command::new("haproxy")
            .arg("-D")
            .arg("-f")
            .arg(d.join("haproxy.cfg")));
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { dir, addr }
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("haproxy.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, "KILL");
        }
    }
}
