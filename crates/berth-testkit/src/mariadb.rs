//! A private MariaDB server (Debian's mariadb-server), one per test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ensure_debian, free_port, run};

/// A MariaDB server on a free port with its data in a temporary directory, and a user `berth`
/// (password `berthpw`) that may create databases. Killed on drop.
pub struct MariaDb {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl MariaDb {
    /// Installs MariaDB if needed, initialises a data directory and starts the server.
    pub fn start() -> Self {
        ensure_debian(&[
            ("mariadbd", "mariadb-server"),
            ("mariadb", "mariadb-client"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        std::fs::create_dir_all(d.join("data")).unwrap();
        // A private tmpdir: concurrent servers name their temporary tables alike in /tmp.
        std::fs::create_dir_all(d.join("tmp")).unwrap();
        std::fs::write(
            d.join("my.cnf"),
            format!(
                "[mysqld]\ndatadir={d}/data\nsocket={d}/mysqld.sock\npid-file={d}/mysqld.pid\n\
                 log-error={d}/error.log\ntmpdir={d}/tmp\nbind-address=127.0.0.1\nport={port}\nuser=root\n\
                 skip-name-resolve\ninnodb_buffer_pool_size=32M\ninnodb_log_file_size=16M\n\
                 innodb_flush_log_at_trx_commit=2\nperformance_schema=OFF\nmax_connections=500\n\
                 character-set-server=utf8mb4\ncollation-server=utf8mb4_general_ci\n\
                 [client]\nsocket={d}/mysqld.sock\n",
                d = d.display()
            ),
        )
        .unwrap();
        let install = Command::new("mariadb-install-db")
            .arg(format!("--defaults-file={}", d.join("my.cnf").display()))
            .args(["--auth-root-authentication-method=socket", "--skip-test-db"])
            .output()
            .expect("run mariadb-install-db");
        assert!(
            install.status.success(),
            "mariadb-install-db failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&install.stdout),
            String::from_utf8_lossy(&install.stderr),
            std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
        );
        let mut db = Self {
            child: None,
            dir,
            port,
        };
        db.spawn();
        db.sql(
            "CREATE USER 'berth'@'127.0.0.1' IDENTIFIED BY 'berthpw'; \
             GRANT ALL PRIVILEGES ON *.* TO 'berth'@'127.0.0.1'; FLUSH PRIVILEGES;",
        );
        db
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let child = Command::new("mariadbd")
            .arg(format!("--defaults-file={}", d.join("my.cnf").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !Command::new("mariadb-admin")
            .arg(format!("--defaults-file={}", d.join("my.cnf").display()))
            .args(["-uroot", "ping"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start:\n{}",
                std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs SQL as root.
    pub fn sql(&self, sql: &str) -> String {
        run(Command::new("mariadb")
            .arg(format!("--defaults-file={}", self.config().display()))
            .args(["-uroot", "-N", "-e", sql]))
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("my.cnf")
    }

    /// Creates an empty database and returns its URL for `berth`.
    pub fn database(&self, name: &str) -> String {
        self.sql(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"));
        self.url(name)
    }

    /// The URL of database `name` for the user `berth`.
    pub fn url(&self, name: &str) -> String {
        format!("mysql://berth:berthpw@127.0.0.1:{}/{name}", self.port)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server abruptly (SIGKILL), as a crash or a network cut would look to clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}
