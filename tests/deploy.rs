//! The deployment files in deploy/ are valid for the tools that read them: HAProxy and nginx
//! check their configurations, docker-compose its file, systemd its unit; the Helm chart's
//! YAML parses and its templates use only values the chart defines.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{ensure_debian, python_venv, run};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

/// A self-signed certificate and key for configurations that name TLS files.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    ensure_debian(&[("openssl", "openssl")]);
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=registry.example.com", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

#[test]
fn haproxy_accepts_both_configurations() {
    ensure_debian(&[("haproxy", "haproxy")]);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let pem = dir.path().join("registry.pem");
    let mut bundle = std::fs::read(&cert).unwrap();
    bundle.extend(std::fs::read(&key).unwrap());
    std::fs::write(&pem, bundle).unwrap();
    let config = std::fs::read_to_string(deploy("haproxy/haproxy.cfg"))
        .unwrap()
        .replace("/etc/haproxy/registry.pem", pem.to_str().unwrap());
    let tested = dir.path().join("haproxy.cfg");
    std::fs::write(&tested, config).unwrap();
    for file in [tested, deploy("compose/haproxy.cfg")] {
        run(Command::new("haproxy").args(["-c", "-f"]).arg(&file));
    }
}

#[test]
fn nginx_accepts_its_configuration() {
    ensure_debian(&[("nginx", "nginx-light")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = certificate(d);
    let site = std::fs::read_to_string(deploy("nginx/berth.conf"))
        .unwrap()
        .replace("/etc/nginx/tls/registry.crt", cert.to_str().unwrap())
        .replace("/etc/nginx/tls/registry.key", key.to_str().unwrap());
    std::fs::write(d.join("berth.conf"), site).unwrap();
    std::fs::write(
        d.join("nginx.conf"),
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  \
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  include {d}/berth.conf;\n}}\n",
            d = d.display()
        ),
    )
    .unwrap();
    run(Command::new("nginx")
        .args(["-t", "-c"])
        .arg(d.join("nginx.conf"))
        .arg("-e")
        .arg(d.join("error.log")));
}

#[test]
fn docker_compose_accepts_the_compose_file() {
    ensure_debian(&[("docker-compose", "docker-compose")]);
    let file = deploy("compose/docker-compose.yml");
    let out = run(Command::new("docker-compose")
        .arg("-f")
        .arg(&file)
        .arg("config")
        .env("MARIADB_PASSWORD", "db-secret")
        .env("REDIS_PASSWORD", "redis-secret")
        .env("MINIO_PASSWORD", "minio-secret")
        .env("BERTH_ADMIN_PASSWORD", "Admin-pass-1"));
    for expected in [
        "berth1:",
        "berth2:",
        "berth3:",
        "haproxy:",
        "mariadb:",
        "redis:",
        "mysql://berth:db-secret@mariadb:3306/berth",
        "redis://:redis-secret@redis:6379",
        "minio:",
        "BERTH_STORAGE_DRIVER: s3",
    ] {
        assert!(out.contains(expected), "{expected} missing from:\n{out}");
    }
    // Without the secrets it refuses to start rather than run with empty passwords.
    let refused = Command::new("docker-compose")
        .arg("-f")
        .arg(&file)
        .arg("config")
        .env_remove("MARIADB_PASSWORD")
        .env_remove("REDIS_PASSWORD")
        .env_remove("MINIO_PASSWORD")
        .env_remove("BERTH_ADMIN_PASSWORD")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("set MARIADB_PASSWORD"));
}

#[test]
fn systemd_accepts_the_unit() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(deploy("systemd/berth.service"))
        .unwrap()
        .replace("/usr/local/bin/berth", &support::berth_bin());
    let path = dir.path().join("berth.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (package systemd) is needed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("berth.service"))
        .collect();
    assert!(problems.is_empty(), "{stderr}");
}

#[test]
fn the_helm_chart_parses_and_uses_only_defined_values() {
    let venv = python_venv(&["pyyaml"]);
    let script = r#"
import re, sys, yaml, pathlib
chart = pathlib.Path(sys.argv[1])
meta = yaml.safe_load((chart / "Chart.yaml").read_text())
assert meta["apiVersion"] == "v2" and meta["name"] == "berth", meta
values = yaml.safe_load((chart / "values.yaml").read_text())
missing = []
for template in sorted((chart / "templates").iterdir()):
    text = template.read_text()
    for ref in sorted(set(re.findall(r"\.Values((?:\.[A-Za-z][A-Za-z0-9]*)+)", text))):
        node = values
        for key in ref.strip(".").split("."):
            if not isinstance(node, dict) or key not in node:
                missing.append(f"{template.name}: .Values{ref}")
                break
            node = node[key]
    # Templates without Go actions must be YAML already.
    if "{{" not in text:
        yaml.safe_load(text)
kinds = sorted(re.search(r"^kind: (\w+)", t.read_text(), re.M).group(1)
               for t in (chart / "templates").glob("*.yaml"))
print(" ".join(kinds))
if missing:
    sys.exit("undefined values: " + ", ".join(missing))
"#;
    let out = run(Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(deploy("helm/berth")));
    assert_eq!(
        out.trim(),
        "ConfigMap Deployment Ingress PersistentVolumeClaim PodDisruptionBudget Secret Service"
    );
}

/// The README's first quick-start command, run as written but for a debug build and `--help`:
/// the workspace has several binaries, and only `default-run` makes `cargo run` pick berth.
#[test]
fn the_readme_quick_start_command_runs_the_registry() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let quick_start = readme.split("## Quick start").nth(1).unwrap();
    let block = quick_start
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let line = block
        .lines()
        .find(|l| l.trim_start().starts_with("cargo run"))
        .expect("the quick start runs the registry with cargo run");
    let command = line.split('#').next().unwrap().trim();
    let mut args: Vec<&str> = command.split_whitespace().skip(1).collect();
    assert!(args.contains(&"serve"), "{command}");
    args.retain(|a| *a != "--release");
    args.push("--help");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(&args)
        .current_dir(&root)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "cargo {}: {stderr}", args.join(" "));
    assert!(stdout.contains("Usage: berth serve"), "{stdout}");
}
