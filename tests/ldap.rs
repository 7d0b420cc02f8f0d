//! LDAP against a real OpenLDAP (slapd): search bind, one group search, admin group,
//! injection-proof filters.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use berth_auth::ldap::{LdapSettings, authenticate};
use support::Slapd;

fn settings(url: &str) -> LdapSettings {
    LdapSettings {
        url: url.to_owned(),
        starttls: false,
        verify_certificate: true,
        search_dn: Some("cn=admin,dc=example,dc=org".into()),
        search_password: Some("adminpw".into()),
        base_dn: "ou=people,dc=example,dc=org".into(),
        user_filter: "(objectClass=inetOrgPerson)".into(),
        uid_attribute: "uid".into(),
        group_base_dn: Some("ou=groups,dc=example,dc=org".into()),
        group_filter: "(objectClass=groupOfNames)".into(),
        group_membership_attribute: "member".into(),
        admin_group_dn: Some("cn=admins,ou=groups,dc=example,dc=org".into()),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_logins() {
    let slapd = Slapd::start();
    let s = settings(&slapd.url);
    let alice = authenticate(&s, "alice", "alicepw").await.unwrap().unwrap();
    assert_eq!(alice.dn, "uid=alice,ou=people,dc=example,dc=org");
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert!(alice.admin);
    assert_eq!(alice.groups.len(), 2);
    assert_eq!(alice.username, "alice");
    // The directory matches names without regard to case: the name is its spelling.
    let shouted = authenticate(&s, "ALICE", "alicepw").await.unwrap().unwrap();
    assert_eq!(
        (shouted.username.as_str(), shouted.dn.as_str()),
        ("alice", alice.dn.as_str())
    );
    let bob = authenticate(&s, "bob", "bobpw").await.unwrap().unwrap();
    assert!(!bob.admin);
    assert_eq!(
        bob.groups,
        vec!["cn=developers,ou=groups,dc=example,dc=org"]
    );
    // Sixty groups, one query.
    let carol = authenticate(&s, "carol", "carolpw").await.unwrap().unwrap();
    assert_eq!(carol.groups.len(), 60);
    // Wrong password, unknown user, empty password (no unauthenticated bind), injection.
    for (user, password) in [
        ("alice", "bobpw"),
        ("nobody", "x"),
        ("alice", ""),
        ("*)(uid=*", "alicepw"),
        ("*", "alicepw"),
        ("alice)(|(uid=*", "alicepw"),
        ("ali*", "alicepw"),
    ] {
        assert!(
            authenticate(&s, user, password).await.unwrap().is_none(),
            "{user:?}/{password:?}"
        );
    }
    assert!(
        authenticate(&s, &"a".repeat(300), "x")
            .await
            .unwrap()
            .is_none()
    );
    // A wrong search account or an unreachable server is an error, not a wrong password.
    let mut wrong = settings(&slapd.url);
    wrong.search_password = Some("nope".into());
    assert!(authenticate(&wrong, "alice", "alicepw").await.is_err());
    let down = settings("ldap://127.0.0.1:1");
    assert!(authenticate(&down, "alice", "alicepw").await.is_err());
}

fn config(url: &str) -> String {
    format!(
        "[ldap]\nenabled = true\nurl = \"{url}\"\nsearch_dn = \"cn=admin,dc=example,dc=org\"\nsearch_password = \"adminpw\"\n\
         base_dn = \"ou=people,dc=example,dc=org\"\nuser_filter = \"(objectClass=inetOrgPerson)\"\nuid_attribute = \"uid\"\n\
         group_base_dn = \"ou=groups,dc=example,dc=org\"\nadmin_group_dn = \"cn=admins,ou=groups,dc=example,dc=org\"\ntimeout_secs = 3\n"
    )
}

async fn berth_with_ldap(url: &str) -> (support::Berth, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.toml");
    std::fs::write(&file, config(url)).unwrap();
    let file = file.display().to_string();
    let b = support::Berth::start_in(
        dir.path(),
        &[
            ("BERTH_AUTH_ENABLED", "true"),
            ("BERTH_ADMIN_PASSWORD", support::ADMIN_PASSWORD),
            ("BERTH_CONFIG", &file),
        ],
    )
    .await;
    (b, dir)
}

async fn grant(
    c: &reqwest::Client,
    b: &support::Berth,
    user: &str,
    password: &str,
    scope: &str,
) -> (u16, serde_json::Value) {
    let r = c
        .get(b.url("/service/token"))
        .query(&[("service", "berth-registry"), ("scope", scope)])
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    if status != 200 {
        return (status, body);
    }
    let payload = body["token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let claims: serde_json::Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .unwrap(),
    )
    .unwrap();
    (status, claims["access"][0]["actions"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_users_and_groups_on_the_registry() {
    let slapd = Slapd::start();
    let (b, _dir) = berth_with_ldap(&slapd.url).await;
    let meta = b.meta().await;
    let c = reqwest::Client::new();
    // The project and its group member come through the management API, as an operator would.
    let api = |path: &str| b.url(&format!("/api/v2.0{path}"));
    let admin = ("admin", Some(support::ADMIN_PASSWORD));
    let r = c
        .post(api("/projects"))
        .basic_auth(admin.0, admin.1)
        .json(&serde_json::json!({"project_name": "team"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(api("/projects/team/members"))
        .basic_auth(admin.0, admin.1)
        .header("x-is-resource-name", "true")
        .json(&serde_json::json!({
            "role_id": 2,
            "member_group": {"group_type": 1, "ldap_group_dn": "cn=developers,ou=groups,dc=example,dc=org"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // A directory user sees the projects its groups are members of.
    let r = c
        .get(api("/projects"))
        .basic_auth("bob", Some("bobpw"))
        .send()
        .await
        .unwrap();
    let projects: serde_json::Value = r.json().await.unwrap();
    let names: Vec<&str> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["library", "team"]);
    assert_eq!(projects[1]["current_user_role_id"], 2);
    let r = c
        .get(api("/users/current"))
        .basic_auth("alice", Some("alicepw"))
        .send()
        .await
        .unwrap();
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (
            &me["sysadmin_flag"],
            &me["admin_role_in_auth"],
            &me["directory_user"]
        ),
        (
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!(true)
        ),
        "{me}"
    );
    let scope = "repository:team/app:pull,push,delete";
    // bob is a developer through his group; alice an administrator through the admin group.
    assert_eq!(
        grant(&c, &b, "bob", "bobpw", scope).await,
        (200, serde_json::json!(["pull", "push"]))
    );
    assert_eq!(
        grant(&c, &b, "alice", "alicepw", scope).await,
        (200, serde_json::json!(["pull", "push", "delete"]))
    );
    // carol is in 60 groups, none of them a member of the project.
    assert_eq!(
        grant(&c, &b, "carol", "carolpw", scope).await,
        (200, serde_json::json!([]))
    );
    let r = c
        .post(b.url("/v2/team/app/blobs/uploads/"))
        .basic_auth("carol", Some("carolpw"))
        .send()
        .await
        .unwrap();
    let v = support::expect_error(r, 403, "DENIED").await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("carol is not a member of project team"),
        "{v}"
    );
    // Basic on /v2 for a directory user.
    let r = c
        .post(b.url("/v2/team/app/blobs/uploads/"))
        .basic_auth("bob", Some("bobpw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Onboarded on first login, without a local password.
    let bob = meta.user("bob").await.unwrap().unwrap();
    assert!(bob.password_hash.is_none());
    // Another spelling is the same person, and the same account: no second user appears, and
    // its grants are bob's.
    let users_before = meta.count_users().await.unwrap();
    assert_eq!(
        grant(&c, &b, "BOB", "bobpw", scope).await,
        (200, serde_json::json!(["pull", "push"]))
    );
    assert!(meta.user("BOB").await.unwrap().is_none());
    assert_eq!(meta.count_users().await.unwrap(), users_before);
    // Wrong passwords and injection attempts are plain 401s.
    for (user, password) in [
        ("bob", "alicepw"),
        ("*)(uid=*", "alicepw"),
        ("*", "bobpw"),
        ("bob)(|(uid=*", "bobpw"),
    ] {
        let (status, body) = grant(&c, &b, user, password, scope).await;
        assert_eq!(status, 401, "{user}: {body}");
    }
    // The local administrator is unaffected.
    assert_eq!(
        grant(&c, &b, "admin", support::ADMIN_PASSWORD, scope)
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_directory_is_a_503_not_a_wrong_password() {
    let (b, _dir) = berth_with_ldap("ldap://127.0.0.1:1").await;
    let c = reqwest::Client::new();
    let (status, body) = grant(&c, &b, "bob", "bobpw", "repository:library/x:pull").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
    // Local accounts still log in.
    assert_eq!(
        grant(
            &c,
            &b,
            "admin",
            support::ADMIN_PASSWORD,
            "repository:library/x:pull"
        )
        .await
        .0,
        200
    );
}

/// The directory's settings in Harbor's `/configurations` shape.
fn directory_settings(url: &str) -> serde_json::Value {
    serde_json::json!({
        "ldap_url": url,
        "ldap_search_dn": "cn=admin,dc=example,dc=org",
        "ldap_search_password": "adminpw",
        "ldap_base_dn": "ou=people,dc=example,dc=org",
        "ldap_filter": "(objectClass=inetOrgPerson)",
        "ldap_uid": "uid",
        "ldap_group_base_dn": "ou=groups,dc=example,dc=org",
        "ldap_group_admin_dn": "cn=admins,ou=groups,dc=example,dc=org",
        "ldap_timeout": 3,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_directory_is_tested_and_switched_on_and_off_at_run_time() {
    let slapd = Slapd::start();
    let b = support::Berth::start_with_auth().await;
    let c = reqwest::Client::new();
    let admin = |r: reqwest::RequestBuilder| r.basic_auth("admin", Some(support::ADMIN_PASSWORD));
    let scope = "repository:library/x:pull";
    assert_eq!(
        grant(&c, &b, "bob", "bobpw", scope).await.0,
        401,
        "no directory yet"
    );

    let ping = |body: serde_json::Value| {
        let r = admin(c.post(b.url("/api/v2.0/ldap/ping")))
            .json(&body)
            .send();
        async move {
            let r = r.await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, answer) = ping(directory_settings(&slapd.url)).await;
    assert_eq!(
        (status, answer["success"].as_bool()),
        (200, Some(true)),
        "{answer}"
    );
    let mut wrong = directory_settings(&slapd.url);
    wrong["ldap_search_password"] = "nope".into();
    let (status, answer) = ping(wrong).await;
    assert_eq!(
        (status, answer["success"].as_bool()),
        (200, Some(false)),
        "{answer}"
    );
    assert!(!answer["message"].as_str().unwrap().is_empty());
    let mut missing_base = directory_settings(&slapd.url);
    missing_base["ldap_base_dn"] = "ou=nobody,dc=example,dc=org".into();
    assert_eq!(ping(missing_base).await.1["success"], false);
    let (status, answer) = ping(directory_settings("ldap://127.0.0.1:1")).await;
    assert_eq!(
        (status, answer["success"].as_bool()),
        (200, Some(false)),
        "{answer}"
    );
    let (status, _) = ping(directory_settings("http://not-ldap")).await;
    assert_eq!(status, 400);

    // Switched on: directory users log in at once, with their groups.
    let mut on = directory_settings(&slapd.url);
    on["auth_mode"] = "ldap_auth".into();
    let r = admin(c.put(b.url("/api/v2.0/configurations")))
        .json(&on)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (status, _) = grant(&c, &b, "bob", "bobpw", scope).await;
    assert_eq!(status, 200, "bob from the directory");
    let info: serde_json::Value = c
        .get(b.url("/api/v2.0/systeminfo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["auth_mode"], "ldap_auth");
    // The stored search password serves a test that does not repeat it.
    let (status, answer) = ping(serde_json::json!({})).await;
    assert_eq!(
        (status, answer["success"].as_bool()),
        (200, Some(true)),
        "{answer}"
    );

    // Switched off: the directory's users no longer log in, whatever was remembered.
    let r = admin(c.put(b.url("/api/v2.0/configurations")))
        .json(&serde_json::json!({"auth_mode": "db_auth"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(grant(&c, &b, "bob", "bobpw", scope).await.0, 401);
    assert_eq!(
        grant(&c, &b, "admin", support::ADMIN_PASSWORD, scope)
            .await
            .0,
        200
    );
}
