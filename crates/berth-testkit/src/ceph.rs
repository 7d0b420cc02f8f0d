//! A private one-node Ceph with a radosgw (S3) endpoint, from Debian's ceph packages
//! (scripts/ceph-up.sh), stopped by PID files on drop.

use std::process::Command;

use crate::{ensure_debian, free_port, run, signal};

/// Ceph RGW serving S3 on 127.0.0.1 with one user.
pub struct CephRgw {
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// The user's access key.
    pub access_key: String,
    /// The user's secret key.
    pub secret_key: String,
}

impl CephRgw {
    /// Installs Ceph if needed and starts a mon, a memstore OSD and radosgw (about 15 s).
    pub fn start() -> Self {
        ensure_debian(&[
            ("ceph-mon", "ceph-mon"),
            ("ceph-osd", "ceph-osd"),
            ("radosgw", "radosgw"),
            ("ceph", "ceph-common"),
            ("curl", "curl"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let (access_key, secret_key) = (
            "BERTHTESTACCESS".to_owned(),
            "berth-test-secret-key".to_owned(),
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ceph-up.sh");
        let mut rgw = Self {
            dir,
            endpoint: String::new(),
            access_key,
            secret_key,
        };
        let out = run(Command::new("bash")
            .arg(script)
            .env("CEPH_DIR", rgw.dir.path())
            .env("RGW_PORT", port.to_string())
            .env("MON_V2_PORT", free_port().to_string())
            .env("MON_V1_PORT", free_port().to_string())
            .env("ACCESS_KEY", &rgw.access_key)
            .env("SECRET_KEY", &rgw.secret_key));
        // The script may have moved radosgw to another port (the first one was taken).
        let port = out
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("RGW_PORT="))
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or_else(|| panic!("ceph-up.sh did not say its port:\n{out}"));
        rgw.endpoint = format!("http://127.0.0.1:{port}");
        rgw
    }
}

impl Drop for CephRgw {
    fn drop(&mut self) {
        for name in ["client.rgw.berth", "osd.0", "mon.a"] {
            let pid = self.dir.path().join(format!("run/ceph-{name}.pid"));
            if let Some(pid) = std::fs::read_to_string(pid)
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
            {
                signal(pid, "KILL");
            }
        }
    }
}
