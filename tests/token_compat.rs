//! Berth's tokens against CNCF Distribution: Debian's docker-registry 2.8.2, configured with
//! Berth's certificate as its token root, accepts the tokens Berth issues (by `kid` and `x5c`)
//! and refuses the ones it did not.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_auth::{Access, SigningKey, TokenIssuer};
use support::ensure_debian;

struct Distribution {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_distribution(cert_pem: &str) -> Distribution {
    ensure_debian(&[("docker-registry", "docker-registry")]);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    std::fs::write(dir.path().join("root.crt"), cert_pem).unwrap();
    let config = format!(
        "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {d}/data}}\n  delete: {{enabled: true}}\n\
         http:\n  addr: {addr}\n  secret: test-secret\nauth:\n  token:\n    realm: http://{addr}/service/token\n    \
         service: berth-registry\n    issuer: berth-token-issuer\n    rootcertbundle: {d}/root.crt\n",
        d = dir.path().display()
    );
    std::fs::write(dir.path().join("config.yml"), config).unwrap();
    let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Distribution {
        child,
        addr,
        _dir: dir,
    }
}

#[tokio::test]
async fn distribution_2_8_accepts_berth_tokens() {
    let key = Arc::new(SigningKey::generate("berth token signer").unwrap());
    let registry = start_distribution(key.cert_pem());
    let issuer = TokenIssuer::new(
        key,
        "berth-token-issuer",
        "berth-registry",
        Duration::from_secs(300),
    );
    let c = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", registry.addr);
    let grant = |name: &str, actions: &[&str]| {
        vec![Access {
            resource_type: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }]
    };

    // Without a token: the challenge names Berth's realm and service.
    let r = c.get(url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("service=\"berth-registry\"")
    );

    let base = issuer.issue("alice", vec![]).unwrap().token;
    let r = c.get(url("/v2/")).bearer_auth(&base).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Push with a push grant; the same token does not reach another repository.
    let push = issuer
        .issue("alice", grant("team/app", &["pull", "push"]))
        .unwrap()
        .token;
    let r = c
        .post(url("/v2/team/app/blobs/uploads/"))
        .bearer_auth(&push)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let r = c
        .post(url("/v2/team/other/blobs/uploads/"))
        .bearer_auth(&push)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // A pull-only token cannot push.
    let pull = issuer
        .issue("alice", grant("team/app", &["pull"]))
        .unwrap()
        .token;
    let r = c
        .post(url("/v2/team/app/blobs/uploads/"))
        .bearer_auth(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A token from a key Distribution was not given is refused.
    let stranger = Arc::new(SigningKey::generate("stranger").unwrap());
    let forged = TokenIssuer::new(
        stranger,
        "berth-token-issuer",
        "berth-registry",
        Duration::from_secs(300),
    )
    .issue("alice", grant("team/app", &["pull", "push"]))
    .unwrap()
    .token;
    let r = c
        .get(url("/v2/"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
