//! Test harness for Berth's tests: installs the real components they need (Debian packages,
//! under a lock shared by test processes) and runs private instances of them on free ports in
//! temporary directories, stopped by PID. A missing component is installed, never skipped; if
//! it cannot be, the test fails and says why.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "app")]
pub mod app;
mod ceph;
mod haproxy;
mod mariadb;
mod redis;
mod rsyslog;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Mutex;

pub use ceph::CephRgw;
pub use haproxy::Haproxy;
pub use mariadb::MariaDb;
pub use redis::{REDIS_PASSWORD, Redis, RedisCluster, RedisSentinels, RedisServer};
pub use rsyslog::Rsyslog;

/// A TCP port free on 127.0.0.1 right now, below Linux's ephemeral range (32768–60999) so that
/// no outgoing connection can take it between this call and the server binding it (a port the
/// kernel hands out with `bind(0)` can be; CI once lost a test to that). Ports are tried from a
/// start that differs per process and per call, so concurrent test processes rarely collide.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let seed = std::process::id().wrapping_mul(7919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + (seed.wrapping_add(n.wrapping_mul(37))) % SPAN;
        let port = u16::try_from(port).expect("below 32768");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN);
}

/// Runs a command and returns its standard output; panics with both outputs if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

static INSTALL: Mutex<()> = Mutex::new(());

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure each `(command, debian package)` is installed, installing what is missing with
/// apt-get (serialised across test processes by a lock file). Daemons are kept from starting
/// on their default ports (`policy-rc.d`). Panics with apt's output if the installation fails.
pub fn ensure_debian(tools: &[(&str, &str)]) {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(c, _)| !have(c))
        .map(|(_, p)| *p)
        .collect();
    apt_install(&missing);
    for (c, p) in tools {
        assert!(have(c), "{c} still missing after installing {p}");
    }
}

/// Makes sure each `(file, debian package)` is installed, for packages without a command
/// (fonts, data): as [`ensure_debian`].
pub fn ensure_debian_files(files: &[(&str, &str)]) {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&str> = files
        .iter()
        .filter(|(f, _)| !std::path::Path::new(f).exists())
        .map(|(_, p)| *p)
        .collect();
    apt_install(&missing);
    for (f, p) in files {
        assert!(
            std::path::Path::new(f).exists(),
            "{f} still missing after installing {p}"
        );
    }
}

/// Installs `packages` with apt-get (nothing when empty), serialised by a lock file.
fn apt_install(packages: &[&str]) {
    if packages.is_empty() {
        return;
    }
    let script = format!(
        "set -e; export DEBIAN_FRONTEND=noninteractive; \
         if [ ! -x /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi; \
         (apt-get install -y -q -o DPkg::Lock::Timeout=900 --no-install-recommends {pkgs} || \
          (apt-get update -q -o DPkg::Lock::Timeout=900 && apt-get install -y -q -o DPkg::Lock::Timeout=900 --no-install-recommends {pkgs}))",
        pkgs = packages.join(" ")
    );
    let out = Command::new("flock")
        .arg("/var/tmp/berth-tests-apt.lock")
        .arg("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("run apt-get (needs root and flock)");
    assert!(
        out.status.success(),
        "could not install {packages:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `signal` to `pid` (best effort).
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}
