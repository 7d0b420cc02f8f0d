//! The authentication service against a real metadata store (SQLite).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use berth_auth::{AuthService, AuthSettings, Login, Principal, Scope, SigningKey, password};
use berth_meta::{MetadataStore, PoolSettings};

fn settings() -> AuthSettings {
    AuthSettings {
        issuer: "berth-token-issuer".into(),
        service: "berth-registry".into(),
        token_lifetime: Duration::from_secs(300),
        refresh_lifetime: Duration::from_secs(86_400),
        ldap: None,
        session_idle: Duration::from_secs(1800),
    }
}

async fn store(dir: &tempfile::TempDir) -> MetadataStore {
    let meta = MetadataStore::connect(
        &format!("sqlite://{}/m.db", dir.path().display()),
        &PoolSettings::default(),
    )
    .await
    .unwrap();
    meta.migrate().await.unwrap();
    meta
}

fn scopes(s: &[&str]) -> Vec<Scope> {
    s.iter().map(|x| x.parse().unwrap()).collect()
}

#[tokio::test]
async fn permission_matrix_role_by_role() {
    let dir = tempfile::tempdir().unwrap();
    let meta = store(&dir).await;
    let (auth, problem) = AuthService::start(meta.clone(), settings(), None)
        .await
        .unwrap();
    assert!(problem.is_none());
    let private = meta
        .create_project("private", false, None)
        .await
        .unwrap()
        .unwrap();
    meta.create_project("open", true, None).await.unwrap();
    let mut users = Vec::new();
    for (name, role) in [
        ("pa", "projectAdmin"),
        ("ma", "maintainer"),
        ("dev", "developer"),
        ("gu", "guest"),
        ("lg", "limitedGuest"),
        ("none", ""),
    ] {
        let id = meta
            .create_user(name, Some(&password::hash("pw").unwrap()), false)
            .await
            .unwrap()
            .unwrap();
        if !role.is_empty() {
            meta.set_user_role(private, id, role).await.unwrap();
        }
        users.push(Principal::User {
            id,
            name: name.into(),
            sysadmin: false,
            groups: Vec::new(),
        });
    }
    let admin = Principal::User {
        id: 999,
        name: "root".into(),
        sysadmin: true,
        groups: Vec::new(),
    };
    let expect = [
        (&users[0], vec!["pull", "push", "delete"]),
        (&users[1], vec!["pull", "push", "delete"]),
        (&users[2], vec!["pull", "push"]),
        (&users[3], vec!["pull"]),
        (&users[4], vec!["pull"]),
        (&users[5], vec![]),
        (&admin, vec!["pull", "push", "delete"]),
        (&Principal::Anonymous, vec![]),
    ];
    for (who, actions) in expect {
        let p = auth.permission(who, "private/app").await.unwrap();
        assert_eq!(p.actions, actions, "{who:?}");
        // Catalog: system administrators only.
        let g = auth
            .grant(who, &scopes(&["registry:catalog:*"]))
            .await
            .unwrap();
        assert_eq!(
            g[0].actions.is_empty(),
            !matches!(who, Principal::User { sysadmin: true, .. })
        );
    }
    // The reasons are ones a user can act on.
    assert_eq!(
        auth.permission(&users[3], "private/x")
            .await
            .unwrap()
            .limit
            .unwrap(),
        "gu is guest in project private, which allows pull only"
    );
    assert!(
        auth.permission(&users[5], "private/x")
            .await
            .unwrap()
            .limit
            .unwrap()
            .contains("not a member")
    );
    assert_eq!(
        auth.permission(&admin, "nope/x")
            .await
            .unwrap()
            .limit
            .unwrap(),
        "project nope does not exist"
    );
    // Public projects: anyone pulls, nobody else pushes.
    assert_eq!(
        auth.permission(&Principal::Anonymous, "open/app")
            .await
            .unwrap()
            .actions,
        ["pull"]
    );
    assert_eq!(
        auth.permission(&users[2], "open/app")
            .await
            .unwrap()
            .actions,
        ["pull"]
    );
    assert_eq!(
        auth.permission(&Principal::Anonymous, "library/alpine")
            .await
            .unwrap()
            .actions,
        ["pull"]
    );

    // Grants narrow what was asked to what is allowed; `*` expands; unknown types get nothing.
    let g = auth
        .grant(
            &users[2],
            &scopes(&[
                "repository:private/app:pull,push,delete",
                "repository:open/x:push",
                "repository:private/app:*",
                "thing:x:pull",
                "repository:Bad//Name:pull",
            ]),
        )
        .await
        .unwrap();
    let actions: Vec<Vec<String>> = g.into_iter().map(|a| a.actions).collect();
    assert_eq!(
        actions,
        vec![
            vec!["pull", "push"],
            vec![],
            vec!["pull", "push"],
            vec![],
            vec![]
        ]
    );
}

#[tokio::test]
async fn authentication_and_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let meta = store(&dir).await;
    let (auth, _) = AuthService::start(meta.clone(), settings(), None)
        .await
        .unwrap();
    assert!(auth.bootstrap_admin("admin", "s3cret-pass").await.unwrap());
    assert!(
        !auth.bootstrap_admin("admin2", "other").await.unwrap(),
        "only when there are no users"
    );
    let Login::Accepted(p) = auth
        .authenticate("admin", "s3cret-pass", "10.0.0.1")
        .await
        .unwrap()
    else {
        panic!("not accepted")
    };
    assert!(matches!(p, Principal::User { sysadmin: true, .. }));
    for (user, pw) in [
        ("admin", "wrong"),
        ("nobody", "s3cret-pass"),
        ("", "x"),
        ("*)(uid=*", "x"),
    ] {
        assert_eq!(
            auth.authenticate(user, pw, "10.0.0.2").await.unwrap(),
            Login::Rejected,
            "{user}"
        );
    }
    assert_eq!(
        auth.authenticate(&"a".repeat(300), "x", "10.0.0.3")
            .await
            .unwrap(),
        Login::Rejected
    );
    assert_eq!(
        auth.authenticate("admin", &"x".repeat(10_000), "10.0.0.3")
            .await
            .unwrap(),
        Login::Rejected
    );
    // A cached success ends when the password changes (on any node: the stored hash decides).
    assert!(matches!(
        auth.authenticate("admin", "s3cret-pass", "10.0.0.1")
            .await
            .unwrap(),
        Login::Accepted(_)
    ));
    let admin = meta.user("admin").await.unwrap().unwrap().id;
    meta.set_password(admin, &password::hash("new-pass").unwrap())
        .await
        .unwrap();
    assert_eq!(
        auth.authenticate("admin", "s3cret-pass", "10.0.0.1")
            .await
            .unwrap(),
        Login::Rejected
    );
    assert!(matches!(
        auth.authenticate("admin", "new-pass", "10.0.0.1")
            .await
            .unwrap(),
        Login::Accepted(_)
    ));
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let meta = store(&dir).await;
    let (auth, _) = AuthService::start(meta.clone(), settings(), None)
        .await
        .unwrap();
    auth.bootstrap_admin("admin", "right").await.unwrap();
    for i in 0..berth_auth::service::MAX_ACCOUNT_FAILURES {
        assert_eq!(
            auth.authenticate("admin", "wrong", &format!("10.1.0.{i}"))
                .await
                .unwrap(),
            Login::Rejected
        );
    }
    // Even the right password waits now, from any address.
    assert!(matches!(
        auth.authenticate("admin", "right", "10.9.9.9")
            .await
            .unwrap(),
        Login::Throttled(_)
    ));
    // One address guessing many accounts is limited too.
    for i in 0..berth_auth::service::MAX_ADDRESS_FAILURES {
        auth.authenticate(&format!("user{i}"), "x", "10.2.0.1")
            .await
            .unwrap();
    }
    assert!(matches!(
        auth.authenticate("someone", "x", "10.2.0.1").await.unwrap(),
        Login::Throttled(_)
    ));
    assert_eq!(
        auth.authenticate("someone", "x", "10.2.0.2").await.unwrap(),
        Login::Rejected
    );
}

#[tokio::test]
async fn nodes_sharing_a_database_agree_on_keys() {
    let dir = tempfile::tempdir().unwrap();
    let meta = store(&dir).await;
    let (a, _) = AuthService::start(meta.clone(), settings(), None)
        .await
        .unwrap();
    let (b, problem) = AuthService::start(meta.clone(), settings(), None)
        .await
        .unwrap();
    assert!(problem.is_none());
    assert_eq!(a.signing_kid(), b.signing_kid());
    let token = a.issue(&Principal::Anonymous, vec![]).unwrap().token;
    assert!(b.verify(&token).is_ok());
    // A node given a different key file refuses, and says what differs.
    let other = SigningKey::generate("other").unwrap();
    let other_kid = other.kid().to_owned();
    let (_c, problem) = AuthService::start(meta.clone(), settings(), Some(other))
        .await
        .unwrap();
    let problem = problem.unwrap();
    assert!(
        problem.contains(&other_kid) && problem.contains(&a.signing_kid()),
        "{problem}"
    );
    // The same key as the cluster's is fine.
    let stored = meta.signing_keys(0).await.unwrap().remove(0);
    let same = SigningKey::from_pem(&stored.private_pem, &stored.cert_pem).unwrap();
    assert!(
        AuthService::start(meta.clone(), settings(), Some(same))
            .await
            .unwrap()
            .1
            .is_none()
    );
    // A key file given to the first node of a cluster becomes the cluster's key.
    let dir2 = tempfile::tempdir().unwrap();
    let fresh = store(&dir2).await;
    let mine = SigningKey::generate("mine").unwrap();
    let kid = mine.kid().to_owned();
    let (d, problem) = AuthService::start(fresh, settings(), Some(mine))
        .await
        .unwrap();
    assert!(problem.is_none());
    assert_eq!(d.signing_kid(), kid);
}

#[tokio::test]
async fn rotation_without_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let meta = store(&dir).await;
    let (node, _) = AuthService::start(meta.clone(), settings(), None)
        .await
        .unwrap();
    let old_kid = node.signing_kid();
    let old_token = node.issue(&Principal::Anonymous, vec![]).unwrap().token;
    // The new key is loaded (verifies) everywhere before it signs: activation after a grace
    // period, at least a second after the newest key's.
    let new_kid = berth_auth::rotate_signing_key(&meta, &settings(), None, Duration::ZERO)
        .await
        .unwrap();
    node.reload_keys().await.unwrap();
    assert_eq!(node.signing_kid(), old_kid, "not yet active");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    node.reload_keys().await.unwrap();
    assert_eq!(node.signing_kid(), new_kid);
    // Tokens of the old key still verify until they expire; other nodes agree.
    assert!(node.verify(&old_token).is_ok());
    let (other, _) = AuthService::start(meta.clone(), settings(), None)
        .await
        .unwrap();
    assert_eq!(other.signing_kid(), new_kid);
    assert!(
        other
            .verify(&node.issue(&Principal::Anonymous, vec![]).unwrap().token)
            .is_ok()
    );
    // The old key retires after the token lifetime plus leeway, not now.
    let keys = meta.signing_keys(0).await.unwrap();
    let old = keys.iter().find(|k| k.kid == old_kid).unwrap();
    let new = keys.iter().find(|k| k.kid == new_kid).unwrap();
    assert_eq!(old.retires_at, Some(new.activates_at + 300 + 60));
    assert_eq!(new.retires_at, None);
    // A rotation scheduled later queues behind it, and meanwhile changes nothing.
    let later = berth_auth::rotate_signing_key(&meta, &settings(), None, Duration::from_secs(3600))
        .await
        .unwrap();
    node.reload_keys().await.unwrap();
    assert_eq!(node.signing_kid(), new_kid);
    assert_ne!(later, new_kid);
}

#[test]
fn the_newest_active_key_signs() {
    let key = |at: i64| berth_meta::StoredKey {
        kid: at.to_string(),
        private_pem: String::new(),
        cert_pem: String::new(),
        activates_at: at,
        retires_at: None,
    };
    let keys = [key(10), key(20), key(30)];
    assert_eq!(berth_auth::signing_key_index(&keys, 25), Some(1));
    assert_eq!(berth_auth::signing_key_index(&keys, 30), Some(2));
    // Nothing active yet: the first (oldest) key, so a fresh cluster can still sign.
    assert_eq!(berth_auth::signing_key_index(&keys, 5), Some(0));
    assert_eq!(berth_auth::signing_key_index(&[], 5), None);
}

/// Two nodes on one database and one real Redis: a password checked on one node is not checked
/// again on the other, Redis holds neither the password nor its stored hash, a password change
/// ends the shared entry at once, and a node that cannot reach Redis still logs users in.
#[tokio::test]
async fn nodes_share_credential_checks_through_redis() {
    let redis = berth_testkit::Redis::start();
    let spec = berth_shared::RedisSpec::parse(&redis.url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let meta = store(&dir).await;
    let (a, _) = AuthService::start(meta.clone(), settings(), None)
        .await
        .unwrap();
    let (b, _) = AuthService::start(meta.clone(), settings(), None)
        .await
        .unwrap();
    for node in [&a, &b] {
        node.share_state(berth_shared::Shared::connect(&spec).await.unwrap());
    }
    let hash = password::hash("Old-pass1").unwrap();
    meta.create_user("alice", Some(&hash), false)
        .await
        .unwrap()
        .unwrap();
    let entries = || {
        let keys = redis
            .server
            .cli(&["--scan", "--pattern", "berth:login:password:*"])
            .unwrap_or_default();
        keys.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert!(entries().is_empty());
    assert!(matches!(
        a.authenticate("alice", "Old-pass1", "10.0.0.1")
            .await
            .unwrap(),
        Login::Accepted(_)
    ));
    let first = entries();
    assert_eq!(first.len(), 1, "one shared entry: {first:?}");
    let stored = redis.server.cli(&["GET", &first[0]]).unwrap_or_default();
    assert!(!stored.is_empty());
    for secret in ["Old-pass1", "argon2", &hash[hash.len() - 20..]] {
        assert!(!stored.contains(secret), "{secret} in {stored}");
    }
    assert!(
        !first[0].contains("alice"),
        "the entry's name is a keyed hash"
    );
    // Node b finds a's check under the same name: had it checked the password itself under a
    // key of its own, a second entry would appear.
    assert!(matches!(
        b.authenticate("alice", "Old-pass1", "10.0.0.2")
            .await
            .unwrap(),
        Login::Accepted(_)
    ));
    assert_eq!(entries(), first, "b used a's entry");
    assert_eq!(
        b.authenticate("alice", "wrong", "10.0.0.2").await.unwrap(),
        Login::Rejected
    );
    // A new password (set through the database, as any node would) ends the old entry on both.
    let new_hash = password::hash("New-pass2").unwrap();
    let alice = meta.user("alice").await.unwrap().unwrap().id;
    assert!(meta.set_password(alice, &new_hash).await.unwrap());
    for node in [&a, &b] {
        assert_eq!(
            node.authenticate("alice", "Old-pass1", "10.0.0.3")
                .await
                .unwrap(),
            Login::Rejected
        );
        assert!(matches!(
            node.authenticate("alice", "New-pass2", "10.0.0.3")
                .await
                .unwrap(),
            Login::Accepted(_)
        ));
    }
    // Without Redis, checks go on in process.
    redis.server.kill();
    let third = password::hash("Third-pass3").unwrap();
    assert!(meta.set_password(alice, &third).await.unwrap());
    for _ in 0..2 {
        assert!(matches!(
            a.authenticate("alice", "Third-pass3", "10.0.0.4")
                .await
                .unwrap(),
            Login::Accepted(_)
        ));
    }
    assert_eq!(
        a.authenticate("alice", "New-pass2", "10.0.0.4")
            .await
            .unwrap(),
        Login::Rejected
    );
}
