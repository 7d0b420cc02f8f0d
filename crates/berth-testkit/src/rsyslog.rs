//! A private rsyslog (Debian's rsyslogd) receiving RFC 5424 over TCP on a free port and
//! writing every message, raw, to a file: a syslog receiver that can be stopped and started
//! again on the same port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ensure_debian, free_port};

/// rsyslogd in the foreground on `127.0.0.1:port`. Killed on drop.
pub struct Rsyslog {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The port it listens on (kept across restarts).
    pub port: u16,
}

impl Rsyslog {
    /// Starts rsyslogd on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        ensure_debian(&[("rsyslogd", "rsyslog")]);
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let config = format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             *.* action(type=\"omfile\" file=\"{d}/received.log\" template=\"raw\")\n"
        );
        std::fs::write(dir.path().join("rsyslog.conf"), config).unwrap();
        let mut r = Self {
            dir,
            child: None,
            port,
        };
        r.restart();
        r
    }

    /// The address to send to.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it again (after [`stop`](Self::stop)), on the same port and file.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "rsyslogd is running");
        let d = self.dir.path();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("rsyslogd.err")).unwrap())
            .spawn()
            .expect("run rsyslogd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not listen: {}",
                std::fs::read_to_string(d.join("rsyslogd.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with SIGTERM (it writes what it received first) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            crate::signal(c.id(), "TERM");
            let _ = c.wait();
        }
    }

    /// Everything received so far, one message per line.
    pub fn received(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap_or_default()
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("received.log")
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
