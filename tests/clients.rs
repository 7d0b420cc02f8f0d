//! Real clients against the real `berth` binary: the docker CLI (with a private dockerd),
//! skopeo, podman and oras. The harness installs whatever is missing.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;

use support::{
    Berth, Dockerd, ensure_debian, python_venv, random_bytes, run, sha256, static_hello,
};

#[tokio::test(flavor = "multi_thread")]
async fn docker_pushes_pulls_and_runs_an_image_built_from_scratch() {
    let b = Berth::start().await;
    let dockerd = Dockerd::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    static_hello(w);
    std::fs::write(w.join("payload.bin"), random_bytes(5 << 20, 1)).unwrap();
    std::fs::write(
        w.join("Dockerfile"),
        "FROM scratch\nCOPY hello /hello\nCOPY payload.bin /payload.bin\nCMD [\"/hello\"]\n",
    )
    .unwrap();
    let image = format!("{}/e2e/hello:1", b.addr);
    run(dockerd.docker().args(["build", "-q", "-t", &image]).arg(w));
    let pushed = run(dockerd.docker().args(["push", &image]));
    assert!(pushed.contains("digest: sha256:"), "{pushed}");
    // The same layers into another repository are mounted, not uploaded again.
    let other = format!("{}/other/hello:1", b.addr);
    run(dockerd.docker().args(["tag", &image, &other]));
    let mounted = run(dockerd.docker().args(["push", &other]));
    assert!(mounted.contains("Mounted from e2e/hello"), "{mounted}");
    run(dockerd.docker().args(["rmi", &image, &other]));
    let pulled = run(dockerd.docker().args(["pull", &image]));
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    let out = run(dockerd
        .docker()
        .args(["run", "--rm", "--network", "none", &image]));
    assert_eq!(out.trim(), "hello from scratch image");
    // A manifest list made by the docker CLI.
    let list = format!("{}/e2e/multi:1", b.addr);
    run(dockerd
        .docker()
        .args(["manifest", "create", "--insecure", &list, &image]));
    run(dockerd
        .docker()
        .args(["manifest", "push", "--insecure", "--purge", &list]));
    let r = reqwest::Client::new()
        .get(b.url("/v2/e2e/multi/manifests/1"))
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
}

/// Writes `data` as a blob of an OCI layout and returns its descriptor JSON.
fn layout_blob(layout: &Path, media_type: &str, data: &[u8], extra: &str) -> String {
    let d = sha256(data);
    std::fs::write(layout.join("blobs/sha256").join(d.hex()), data).unwrap();
    format!(
        r#"{{"mediaType":"{media_type}","digest":"{d}","size":{}{extra}}}"#,
        data.len()
    )
}

/// An OCI layout holding a two-platform index tagged `multi`.
fn multi_arch_layout(root: &Path) {
    std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut entries = Vec::new();
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let files = root.join(format!("rootfs-{arch}"));
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("data.bin"), random_bytes(300_000, i as u64 + 10)).unwrap();
        let tarball = root.join(format!("layer-{arch}.tar"));
        run(Command::new("tar")
            .arg("-cf")
            .arg(&tarball)
            .arg("-C")
            .arg(&files)
            .arg("data.bin"));
        let tar = std::fs::read(&tarball).unwrap();
        let diff_id = sha256(&tar);
        run(Command::new("gzip").arg("-n").arg("-f").arg(&tarball));
        let gz = std::fs::read(root.join(format!("layer-{arch}.tar.gz"))).unwrap();
        let layer = layout_blob(root, "application/vnd.oci.image.layer.v1.tar+gzip", &gz, "");
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}},"config":{{}}}}"#
        );
        let config = layout_blob(
            root,
            "application/vnd.oci.image.config.v1+json",
            config.as_bytes(),
            "",
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{config},"layers":[{layer}]}}"#
        );
        let platform = format!(r#","platform":{{"architecture":"{arch}","os":"linux"}}"#);
        entries.push(layout_blob(
            root,
            "application/vnd.oci.image.manifest.v1+json",
            manifest.as_bytes(),
            &platform,
        ));
    }
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        entries.join(",")
    );
    let top = layout_blob(
        root,
        "application/vnd.oci.image.index.v1+json",
        index.as_bytes(),
        r#","annotations":{"org.opencontainers.image.ref.name":"multi"}"#,
    );
    std::fs::write(
        root.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{top}]}}"#),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_copies_a_multi_arch_index_in_and_out_byte_identical() {
    ensure_debian(&[("skopeo", "skopeo"), ("tar", "tar"), ("gzip", "gzip")]);
    let b = Berth::start().await;
    let work = tempfile::tempdir().unwrap();
    let (src, back) = (work.path().join("src"), work.path().join("back"));
    multi_arch_layout(&src);
    let remote = format!("docker://{}/skopeo/multi:v1", b.addr);
    let skopeo = || {
        let mut c = Command::new("skopeo");
        c.env("REGISTRY_AUTH_FILE", work.path().join("auth.json"));
        c
    };
    std::fs::write(work.path().join("auth.json"), "{}").unwrap();
    run(skopeo()
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:multi", src.display()))
        .arg(&remote));
    let tags = run(skopeo().args([
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/skopeo/multi", b.addr),
    ]));
    assert!(tags.contains("\"v1\""), "{tags}");
    let raw = run(skopeo().args(["inspect", "--raw", "--tls-verify=false", &remote]));
    assert!(
        raw.contains("application/vnd.oci.image.index.v1+json") && raw.contains("arm64"),
        "{raw}"
    );
    run(skopeo()
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            &remote,
        ])
        .arg(format!("oci:{}:multi", back.display())));
    // Every blob (index, manifests, configs, layers) came back byte for byte.
    let list = |p: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(p.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(list(&src), list(&back));
    for name in list(&src) {
        let (a, z) = (
            src.join("blobs/sha256").join(&name),
            back.join("blobs/sha256").join(&name),
        );
        assert!(
            std::fs::read(a).unwrap() == std::fs::read(z).unwrap(),
            "blob {name} differs"
        );
    }
    // A copy of one platform, and delete through the registry API.
    run(skopeo().args([
        "copy",
        "--override-arch",
        "arm64",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &remote,
        &format!("docker://{}/skopeo/arm:v1", b.addr),
    ]));
    run(skopeo().args(["delete", "--tls-verify=false", &remote]));
    let gone = skopeo()
        .args(["inspect", "--raw", "--tls-verify=false", &remote])
        .output()
        .unwrap();
    assert!(!gone.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn podman_pushes_and_pulls_oci_and_docker_formats() {
    ensure_debian(&[("podman", "podman"), ("buildah", "buildah"), ("gcc", "gcc")]);
    let b = Berth::start().await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let c = w.join("containers");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(
        c.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
            c.display()
        ),
    )
    .unwrap();
    std::fs::write(c.join("containers.conf"), "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n").unwrap();
    std::fs::write(c.join("auth.json"), "{}").unwrap();
    let tool = |name: &str| {
        let mut cmd = Command::new(name);
        cmd.env("CONTAINERS_STORAGE_CONF", c.join("storage.conf"))
            .env("CONTAINERS_CONF", c.join("containers.conf"))
            .env("REGISTRY_AUTH_FILE", c.join("auth.json"))
            .env("HOME", w);
        cmd
    };
    static_hello(w);
    std::fs::write(w.join("payload.bin"), random_bytes(1 << 20, 5)).unwrap();
    std::fs::write(
        w.join("Containerfile"),
        "FROM scratch\nCOPY hello /hello\nCOPY payload.bin /payload.bin\nCMD [\"/hello\"]\n",
    )
    .unwrap();
    run(tool("buildah")
        .args([
            "bud",
            "-q",
            "--isolation",
            "chroot",
            "-t",
            "localhost/pm/hello:1",
            "-f",
        ])
        .arg(w.join("Containerfile"))
        .arg(w));
    for (tag, format) in [("oci", "oci"), ("v2s2", "v2s2")] {
        let dest = format!("{}/pm/hello:{tag}", b.addr);
        run(tool("podman").args([
            "push",
            "--tls-verify=false",
            "--format",
            format,
            "localhost/pm/hello:1",
            &dest,
        ]));
    }
    let r = reqwest::Client::new()
        .head(b.url("/v2/pm/hello/manifests/v2s2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let r = reqwest::Client::new()
        .head(b.url("/v2/pm/hello/manifests/oci"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    run(tool("podman").args(["rmi", "-a", "-f"]));
    for tag in ["oci", "v2s2"] {
        run(tool("podman").args([
            "pull",
            "-q",
            "--tls-verify=false",
            &format!("{}/pm/hello:{tag}", b.addr),
        ]));
    }
    let images = run(tool("podman").args(["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(
        images.contains("pm/hello:oci") && images.contains("pm/hello:v2s2"),
        "{images}"
    );
}

const ORAS_SCRIPT: &str = r#"
import hashlib, os, sys, tempfile
import oras.client
host = sys.argv[1]
work = tempfile.mkdtemp(); os.chdir(work)
open("artifact.txt", "w").write("hello artifact\n")
open("big.bin", "wb").write(os.urandom(3_000_000))
c = oras.client.OrasClient(hostname=host, insecure=True)
target = f"{host}/oras/art:v1"
r = c.push(files=["artifact.txt", "big.bin"], target=target, manifest_annotations={"org.example.note": "berth"})
assert r.status_code == 201, r.status_code
assert "v1" in c.get_tags(f"{host}/oras/art"), c.get_tags(f"{host}/oras/art")
m = c.get_manifest(target)
assert m["annotations"]["org.example.note"] == "berth", m
assert len(m["layers"]) == 2, m
c.pull(target=target, outdir="out")
for f in ["artifact.txt", "big.bin"]:
    assert hashlib.sha256(open(f, "rb").read()).digest() == hashlib.sha256(open(os.path.join("out", f), "rb").read()).digest(), f
print("oras e2e OK")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn oras_pushes_and_pulls_an_artifact() {
    let venv = python_venv(&["oras==0.2.*"]);
    let b = Berth::start().await;
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("oras_e2e.py");
    std::fs::write(&script, ORAS_SCRIPT).unwrap();
    let out = run(Command::new(venv.join("bin/python"))
        .arg(&script)
        .arg(&b.addr)
        .env("HOME", work.path()));
    assert!(out.contains("oras e2e OK"), "{out}");
    let tags: serde_json::Value = reqwest::get(b.url("/v2/oras/art/tags/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_podman_and_skopeo_with_authentication() {
    ensure_debian(&[("podman", "podman"), ("skopeo", "skopeo")]);
    let b = Berth::start_with_auth().await;
    support::api_member(&b, "dev", "Dev-pass-1", "team", 2).await;
    support::api_member(&b, "gu", "Gu-pass-12", "team", 3).await;
    let dockerd = Dockerd::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    static_hello(w);
    std::fs::write(
        w.join("Dockerfile"),
        "FROM scratch\nCOPY hello /hello\nCMD [\"/hello\"]\n",
    )
    .unwrap();
    let private = format!("{}/team/app:1", b.addr);
    let public = format!("{}/library/hello:1", b.addr);
    run(dockerd
        .docker()
        .args(["build", "-q", "-t", &private])
        .arg(w));
    run(dockerd.docker().args(["tag", &private, &public]));
    let login = |user: &str, password: &str| {
        let mut cmd = dockerd.docker();
        cmd.args(["login", "-u", user, "--password-stdin", &b.addr]);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    // Wrong password: login fails.
    let bad = login("dev", "wrong");
    assert!(!bad.status.success());
    // Developer pushes to the project; the administrator to the public `library`.
    assert!(login("dev", "Dev-pass-1").status.success());
    run(dockerd.docker().args(["push", &private]));
    assert!(login("admin", support::ADMIN_PASSWORD).status.success());
    run(dockerd.docker().args(["push", &public]));
    // A robot account pushes with docker.
    let (robot, secret) = support::api_robot(
        &b,
        serde_json::json!({
            "name": "ci", "level": "project", "duration": -1,
            "permissions": [{"kind": "project", "namespace": "team", "access": [
                {"resource": "repository", "action": "pull"},
                {"resource": "repository", "action": "push"}
            ]}]
        }),
    )
    .await;
    assert_eq!(robot, "robot$team+ci");
    assert!(login(&robot, &secret).status.success());
    let robot_tag = format!("{}/team/app:robot", b.addr);
    run(dockerd.docker().args(["tag", &private, &robot_tag]));
    run(dockerd.docker().args(["push", &robot_tag]));
    // Guest may not push, and is told why.
    assert!(login("gu", "Gu-pass-12").status.success());
    let denied = dockerd.docker().args(["push", &private]).output().unwrap();
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("gu is guest in project team, which allows pull only"),
        "{stderr}"
    );
    // Anonymous: pulls from the public project, not from the private one.
    run(dockerd.docker().args(["logout", &b.addr]));
    run(dockerd.docker().args(["rmi", &private, &public]));
    run(dockerd.docker().args(["pull", &public]));
    let out = run(dockerd
        .docker()
        .args(["run", "--rm", "--network", "none", &public]));
    assert_eq!(out.trim(), "hello from scratch image");
    assert!(
        !dockerd
            .docker()
            .args(["pull", &private])
            .output()
            .unwrap()
            .status
            .success()
    );

    // podman and skopeo, with their own credentials.
    let c = w.join("containers");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(
        c.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
            c.display()
        ),
    )
    .unwrap();
    std::fs::write(c.join("auth.json"), "{}").unwrap();
    let tool = |name: &str| {
        let mut cmd = Command::new(name);
        cmd.env("CONTAINERS_STORAGE_CONF", c.join("storage.conf"))
            .env("REGISTRY_AUTH_FILE", c.join("auth.json"))
            .env("HOME", w);
        cmd
    };
    assert!(
        !tool("podman")
            .args([
                "login",
                "--tls-verify=false",
                "-u",
                "dev",
                "-p",
                "nope",
                &b.addr
            ])
            .output()
            .unwrap()
            .status
            .success()
    );
    run(tool("podman").args([
        "login",
        "--tls-verify=false",
        "-u",
        "dev",
        "-p",
        "Dev-pass-1",
        &b.addr,
    ]));
    run(tool("podman").args(["pull", "-q", "--tls-verify=false", &private]));
    run(tool("podman").args(["tag", &private, &format!("{}/team/app:podman", b.addr)]));
    run(tool("podman").args([
        "push",
        "--tls-verify=false",
        &format!("{}/team/app:podman", b.addr),
    ]));
    run(tool("podman").args(["logout", &b.addr]));
    let anon = tool("podman")
        .args([
            "pull",
            "-q",
            "--tls-verify=false",
            &format!("{}/team/app:podman", b.addr),
        ])
        .output()
        .unwrap();
    assert!(!anon.status.success());
    let tags = run(tool("skopeo").args([
        "list-tags",
        "--tls-verify=false",
        "--creds",
        "gu:Gu-pass-12",
        &format!("docker://{}/team/app", b.addr),
    ]));
    assert!(
        tags.contains("\"podman\"") && tags.contains("\"1\""),
        "{tags}"
    );
    let skopeo_push = tool("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-creds",
            "gu:Gu-pass-12",
            "--dest-creds",
            "gu:Gu-pass-12",
        ])
        .arg(format!("docker://{}/team/app:1", b.addr))
        .arg(format!("docker://{}/team/app:copy", b.addr))
        .output()
        .unwrap();
    assert!(
        !skopeo_push.status.success(),
        "a guest cannot push with skopeo either"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_pushes_over_https_with_certificate_verification() {
    ensure_debian(&[
        ("skopeo", "skopeo"),
        ("openssl", "openssl"),
        ("curl", "curl"),
        ("tar", "tar"),
        ("gzip", "gzip"),
    ]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=berth-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(w.join("key.pem"))
        .arg("-out")
        .arg(w.join("cert.pem")));
    let certs = w.join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(w.join("cert.pem"), certs.join("ca.crt")).unwrap();
    let data = w.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (cert, key) = (w.join("cert.pem"), w.join("key.pem"));
    let b = Berth::start_in(
        &data,
        &[
            ("BERTH_AUTH_ENABLED", "true"),
            ("BERTH_ADMIN_PASSWORD", support::ADMIN_PASSWORD),
            ("BERTH_TLS_CERT_FILE", cert.to_str().unwrap()),
            ("BERTH_TLS_KEY_FILE", key.to_str().unwrap()),
        ],
    )
    .await;
    // The challenge points at the HTTPS token endpoint; plain HTTP gets no registry.
    let out = run(Command::new("curl")
        .args(["-s", "-i", "--cacert"])
        .arg(&cert)
        .arg(format!("https://{}/v2/", b.addr)));
    assert!(
        out.starts_with("HTTP/2 401") || out.starts_with("HTTP/1.1 401"),
        "{out}"
    );
    assert!(
        out.contains(&format!("realm=\"https://{}/service/token\"", b.addr)),
        "{out}"
    );
    let plain = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{}/v2/", b.addr))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "401");
    // skopeo verifies the certificate (no --tls-verify=false) and pushes with the token flow.
    let src = w.join("src");
    multi_arch_layout(&src);
    std::fs::write(w.join("auth.json"), "{}").unwrap();
    let remote = format!("docker://{}/library/multi:tls", b.addr);
    let creds = format!("admin:{}", support::ADMIN_PASSWORD);
    run(Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", w.join("auth.json"))
        .args(["copy", "--all", "--dest-creds", &creds, "--dest-cert-dir"])
        .arg(&certs)
        .arg(format!("oci:{}:multi", src.display()))
        .arg(&remote));
    let tags = run(Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", w.join("auth.json"))
        .args(["list-tags", "--cert-dir"])
        .arg(&certs)
        .arg(format!("docker://{}/library/multi", b.addr)));
    assert!(tags.contains("\"tls\""), "{tags}");
    // Without the certificate, skopeo refuses the server.
    let refused = Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", w.join("auth.json"))
        .args(["list-tags"])
        .arg(format!("docker://{}/library/multi", b.addr))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
