//! Authentication and authorization against the real binary: the token endpoint, challenges,
//! bearer and Basic credentials on /v2, project permissions, and key agreement between nodes.

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::{Client, StatusCode};
use serde_json::Value;
use support::{ADMIN_PASSWORD, Berth, expect_error, seed_member, sha256};

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map_or(String::new(), |v| v.to_str().unwrap().to_owned())
}

async fn token(
    c: &Client,
    b: &Berth,
    creds: Option<(&str, &str)>,
    scopes: &[&str],
) -> reqwest::Response {
    let mut query: Vec<(&str, &str)> = vec![("service", "berth-registry")];
    query.extend(scopes.iter().map(|s| ("scope", *s)));
    let mut req = c.get(b.url("/service/token")).query(&query);
    if let Some((u, p)) = creds {
        req = req.basic_auth(u, Some(p));
    }
    req.send().await.unwrap()
}

async fn token_string(
    c: &Client,
    b: &Berth,
    creds: Option<(&str, &str)>,
    scopes: &[&str],
) -> String {
    let r = token(c, b, creds, scopes).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token"], v["access_token"]);
    v["token"].as_str().unwrap().to_owned()
}

fn jsonwebtoken_kid(token: &str) -> String {
    let head = token.split('.').next().unwrap();
    let v: Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(head.as_bytes())
            .unwrap(),
    )
    .unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn token_endpoint_and_challenges() {
    let b = Berth::start_with_auth().await;
    let c = Client::new();
    // No credentials: a Bearer challenge naming realm, service and the scope needed.
    let r = c.get(b.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        header(&r, "www-authenticate"),
        format!(
            "Bearer realm=\"http://{}/service/token\",service=\"berth-registry\"",
            b.addr
        )
    );
    let r = c
        .get(b.url("/v2/library/app/tags/list"))
        .send()
        .await
        .unwrap();
    assert!(header(&r, "www-authenticate").ends_with(",scope=\"repository:library/app:pull\""));
    expect_error(r, 401, "UNAUTHORIZED").await;
    let r = c
        .post(b.url("/v2/library/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert!(header(&r, "www-authenticate").contains("scope=\"repository:library/app:pull,push\""));

    // docker login: credentials, no scope.
    let login = token(&c, &b, Some(("admin", ADMIN_PASSWORD)), &[]).await;
    assert_eq!(login.status(), 200);
    let v: Value = login.json().await.unwrap();
    assert_eq!(v["expires_in"], 1800);
    assert!(v["issued_at"].as_str().unwrap().ends_with('Z'));
    let t = v["token"].as_str().unwrap();
    let cl = claims(t);
    assert_eq!(
        (cl["sub"].as_str(), cl["aud"].as_str(), cl["iss"].as_str()),
        (
            Some("admin"),
            Some("berth-registry"),
            Some("berth-token-issuer")
        )
    );
    assert_eq!(
        c.get(b.url("/v2/"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Refusals, each clear.
    expect_error(
        token(&c, &b, Some(("admin", "wrong")), &[]).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(
        token(&c, &b, Some(("*)(uid=*", "x")), &[]).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(
        token(&c, &b, Some((&"u".repeat(300), "x")), &[]).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(token(&c, &b, None, &[]).await, 401, "UNAUTHORIZED").await;
    expect_error(
        token(&c, &b, None, &["repository:x"]).await,
        400,
        "UNSUPPORTED",
    )
    .await;
    let r = c
        .get(b.url("/service/token?service=other"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "UNSUPPORTED").await;
    let r = c
        .get(b.url("/service/token"))
        .header("authorization", "Basic !!notbase64")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "UNAUTHORIZED").await;

    // Anonymous: pull from the public `library`, nothing else. Several scopes in one parameter.
    let anon = token_string(
        &c,
        &b,
        None,
        &["repository:library/app:pull,push repository:team/x:pull"],
    )
    .await;
    let access = claims(&anon)["access"].clone();
    assert_eq!(access[0]["actions"], serde_json::json!(["pull"]));
    assert_eq!(access[1]["actions"], serde_json::json!([]));
    // An anonymous token that lacks an action: back to the challenge, with insufficient_scope.
    let r = c
        .post(b.url("/v2/library/app/blobs/uploads/"))
        .bearer_auth(&anon)
        .send()
        .await
        .unwrap();
    assert!(header(&r, "www-authenticate").contains("error=\"insufficient_scope\""));
    expect_error(r, 401, "UNAUTHORIZED").await;
    // Tokens that are not ours.
    for bad in ["garbage", "a.b.c", &anon.replace('.', "x")] {
        let r = c.get(b.url("/v2/")).bearer_auth(bad).send().await.unwrap();
        assert!(
            header(&r, "www-authenticate").contains("error=\"invalid_token\""),
            "{bad}"
        );
        expect_error(r, 401, "UNAUTHORIZED").await;
    }
    // The JWKS lists the key whose kid the tokens carry.
    let jwks: Value = c
        .get(b.url("/service/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken_kid(t);
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str() && k["kty"] == "EC"),
        "{jwks}"
    );
    // The catalog is for administrators.
    let admin_catalog = token_string(
        &c,
        &b,
        Some(("admin", ADMIN_PASSWORD)),
        &["registry:catalog:*"],
    )
    .await;
    assert_eq!(
        c.get(b.url("/v2/_catalog"))
            .bearer_auth(&admin_catalog)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let anon_catalog = token_string(&c, &b, None, &["registry:catalog:*"]).await;
    assert_eq!(
        c.get(b.url("/v2/_catalog"))
            .bearer_auth(&anon_catalog)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn project_roles_decide_what_a_user_may_do() {
    let b = Berth::start_with_auth().await;
    let c = Client::new();
    let meta = b.meta().await;
    seed_member(&meta, "dev", "dev-pass", "team", false, "developer").await;
    seed_member(&meta, "gu", "gu-pass", "team", false, "guest").await;
    seed_member(&meta, "ma", "ma-pass", "team", false, "maintainer").await;
    seed_member(&meta, "stranger", "st-pass", "elsewhere", false, "").await;
    let scope = "repository:team/app:pull,push,delete";
    // Developer: pull and push; Basic works directly on /v2 too.
    let dev = token_string(&c, &b, Some(("dev", "dev-pass")), &[scope]).await;
    assert_eq!(
        claims(&dev)["access"][0]["actions"],
        serde_json::json!(["pull", "push"])
    );
    let d = sha256(b"layer");
    let r = c
        .post(b.url(&format!("/v2/team/app/blobs/uploads/?digest={d}")))
        .bearer_auth(&dev)
        .body("layer")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .get(b.url(&format!("/v2/team/app/blobs/{d}")))
        .basic_auth("dev", Some("dev-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Developer cannot delete: 403 with the reason.
    let r = c
        .delete(b.url(&format!("/v2/team/app/blobs/{d}")))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 403, "DENIED").await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("dev is developer in project team"),
        "{v}"
    );
    // Guest: pull only; a push is denied and says why.
    let gu = token_string(&c, &b, Some(("gu", "gu-pass")), &[scope]).await;
    let r = c
        .post(b.url("/v2/team/app/blobs/uploads/"))
        .bearer_auth(&gu)
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 403, "DENIED").await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("gu is guest in project team, which allows pull only"),
        "{v}"
    );
    assert_eq!(
        c.head(b.url(&format!("/v2/team/app/blobs/{d}")))
            .bearer_auth(&gu)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Maintainer: delete.
    let ma = token_string(&c, &b, Some(("ma", "ma-pass")), &[scope]).await;
    assert_eq!(
        c.delete(b.url(&format!("/v2/team/app/blobs/{d}")))
            .bearer_auth(&ma)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    // Not a member of a private project: nothing, and anonymous pulls nothing either.
    let r = c
        .get(b.url("/v2/team/app/tags/list"))
        .basic_auth("stranger", Some("st-pass"))
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 403, "DENIED").await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a member of project team")
    );
    let anon = token_string(&c, &b, None, &["repository:team/app:pull"]).await;
    assert_eq!(claims(&anon)["access"][0]["actions"], serde_json::json!([]));
    // A project that does not exist: denied with a message that says so, even for the admin.
    let admin = token_string(
        &c,
        &b,
        Some(("admin", ADMIN_PASSWORD)),
        &["repository:nope/app:pull,push"],
    )
    .await;
    let r = c
        .post(b.url("/v2/nope/app/blobs/uploads/"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 403, "DENIED").await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("project nope does not exist")
    );
    // Wrong Basic password on /v2: 401 with the challenge.
    let r = c
        .get(b.url("/v2/team/app/tags/list"))
        .basic_auth("dev", Some("nope"))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn mounting_needs_pull_on_the_source() {
    let b = Berth::start_with_auth().await;
    let c = Client::new();
    let meta = b.meta().await;
    seed_member(&meta, "dev", "dev-pass", "mine", false, "developer").await;
    meta.create_project("secret", false, None).await.unwrap();
    // The admin puts a blob into a project the developer cannot read.
    let secret = sha256(b"in the secret project");
    let r = c
        .post(b.url(&format!("/v2/secret/app/blobs/uploads/?digest={secret}")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .body("in the secret project")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Neither an explicit mount from it nor an automatic mount reveals it: an upload session instead.
    for q in [
        format!("mount={secret}&from=secret/app"),
        format!("mount={secret}"),
    ] {
        let r = c
            .post(b.url(&format!("/v2/mine/app/blobs/uploads/?{q}")))
            .basic_auth("dev", Some("dev-pass"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{q}");
    }
    assert_eq!(
        c.head(b.url(&format!("/v2/mine/app/blobs/{secret}")))
            .basic_auth("dev", Some("dev-pass"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn nodes_sharing_a_database_accept_each_others_tokens_and_refuse_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("BERTH_AUTH_ENABLED", "true"),
        ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ];
    let a = Berth::start_in(dir.path(), &env).await;
    let b = Berth::start_in(dir.path(), &env).await;
    let c = Client::new();
    let from_a = token_string(
        &c,
        &a,
        Some(("admin", ADMIN_PASSWORD)),
        &["repository:library/x:pull,push"],
    )
    .await;
    let r = c
        .post(b.url("/v2/library/x/blobs/uploads/"))
        .bearer_auth(&from_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(c.get(b.url("/readyz")).send().await.unwrap().status(), 200);
    // A third node with its own key file: up, but not ready, and its log says why.
    let key = berth_auth::SigningKey::generate("rogue").unwrap();
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("k.pem"), key.private_pem()).unwrap();
    std::fs::write(keys.path().join("c.pem"), key.cert_pem()).unwrap();
    let (kf, cf) = (
        keys.path().join("k.pem").display().to_string(),
        keys.path().join("c.pem").display().to_string(),
    );
    let mut env3 = env.to_vec();
    let config = keys.path().join("berth.toml");
    std::fs::write(
        &config,
        format!("[auth]\nsigning_key_file = \"{kf}\"\nsigning_cert_file = \"{cf}\"\n"),
    )
    .unwrap();
    let config = config.display().to_string();
    env3.push(("BERTH_CONFIG", &config));
    let rogue = Berth::start_in(dir.path(), &env3).await;
    let r = c.get(rogue.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    let why = v["node"]["error"].as_str().unwrap();
    assert!(
        why.contains(key.kid()) && why.contains("is not the cluster's signing key"),
        "{why}"
    );
    assert!(
        rogue.log().contains(key.kid()),
        "the log names the differing key"
    );
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let b = Berth::start_with_auth().await;
    let c = Client::new();
    for _ in 0..10 {
        expect_error(
            token(&c, &b, Some(("admin", "guess")), &[]).await,
            401,
            "UNAUTHORIZED",
        )
        .await;
    }
    // Now even the right password waits, on the token endpoint and with Basic on /v2.
    let r = token(&c, &b, Some(("admin", ADMIN_PASSWORD)), &[]).await;
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    expect_error(r, 429, "TOOMANYREQUESTS").await;
    let r = c
        .get(b.url("/v2/"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    expect_error(r, 429, "TOOMANYREQUESTS").await;
}

#[tokio::test]
async fn refresh_tokens_and_the_oauth2_form() {
    let b = Berth::start_with_auth().await;
    let c = Client::new();
    // docker login asks with offline_token=true and keeps the refresh token.
    let r = c
        .get(b.url("/service/token?service=berth-registry&client_id=docker&offline_token=true"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    let plain: Value = token(&c, &b, Some(("admin", ADMIN_PASSWORD)), &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(plain.get("refresh_token").is_none());
    let anon: Value = c.get(b.url("/service/token?service=berth-registry&scope=repository:library/x:pull&offline_token=true")).send().await.unwrap().json().await.unwrap();
    assert!(
        anon.get("refresh_token").is_none(),
        "no refresh token without an account"
    );
    let form = |pairs: &[(&str, &str)]| c.post(b.url("/service/token")).form(pairs).send();
    // The refresh grant issues access for the scopes asked, and hands the refresh token back.
    let r = form(&[
        ("grant_type", "refresh_token"),
        ("service", "berth-registry"),
        ("client_id", "docker"),
        ("refresh_token", &refresh),
        ("scope", "repository:library/app:pull,push"),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["refresh_token"], refresh.as_str());
    assert_eq!(v["scope"], "repository:library/app:pull,push");
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["access"][0]["actions"],
        serde_json::json!(["pull", "push"])
    );
    // A refresh token is not an access token.
    let r = c
        .get(b.url("/v2/"))
        .bearer_auth(&refresh)
        .send()
        .await
        .unwrap();
    assert!(header(&r, "www-authenticate").contains("invalid_token"));
    // The password grant, offline.
    let r = form(&[
        ("grant_type", "password"),
        ("service", "berth-registry"),
        ("client_id", "x"),
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
        ("access_type", "offline"),
    ])
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["refresh_token"].as_str().is_some() && v["access_token"].as_str().is_some());
    // Refusals.
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("grant_type", "password"),
                ("service", "berth-registry"),
                ("username", "admin"),
                ("password", "wrong"),
            ],
            401,
            "UNAUTHORIZED",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("service", "berth-registry"),
                ("username", "admin"),
            ],
            400,
            "UNSUPPORTED",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("service", "berth-registry"),
            ],
            400,
            "UNSUPPORTED",
        ),
        (vec![("service", "berth-registry")], 400, "UNSUPPORTED"),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", "x")],
            400,
            "UNSUPPORTED",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("service", "berth-registry"),
                ("refresh_token", "not.a.token"),
            ],
            401,
            "UNAUTHORIZED",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("service", "berth-registry"),
            ],
            400,
            "UNSUPPORTED",
        ),
    ];
    for (pairs, status, code) in cases {
        expect_error(form(&pairs).await.unwrap(), status, code).await;
    }
    // A password change revokes the refresh tokens issued before it.
    let meta = b.meta().await;
    let admin = meta.user("admin").await.unwrap().unwrap().id;
    meta.set_password(admin, &berth_auth::password::hash("changed-pass").unwrap())
        .await
        .unwrap();
    let r = form(&[
        ("grant_type", "refresh_token"),
        ("service", "berth-registry"),
        ("refresh_token", &refresh),
    ])
    .await
    .unwrap();
    let v = expect_error(r, 401, "UNAUTHORIZED").await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("log in again")
    );
}

#[tokio::test]
async fn robot_accounts() {
    let b = Berth::start_with_auth().await;
    let c = Client::new();
    let meta = b.meta().await;
    meta.create_project("team", false, None).await.unwrap();
    meta.create_project("other", false, None).await.unwrap();
    support::seed_robot(
        &meta,
        "robot$team+ci",
        "ci-secret",
        &[("team", &["pull", "push"])],
        None,
        false,
    )
    .await;
    support::seed_robot(
        &meta,
        "robot$reader",
        "r-secret",
        &[("*", &["pull"])],
        None,
        false,
    )
    .await;
    support::seed_robot(
        &meta,
        "robot$old",
        "old-secret",
        &[("*", &["pull"])],
        Some(1),
        false,
    )
    .await;
    support::seed_robot(
        &meta,
        "robot$off",
        "off-secret",
        &[("*", &["pull"])],
        None,
        true,
    )
    .await;
    let scope = |p: &str| format!("repository:{p}/app:pull,push,delete");
    // A project robot: what it was given, in its project only.
    let t = token_string(
        &c,
        &b,
        Some(("robot$team+ci", "ci-secret")),
        &[&scope("team"), &scope("other")],
    )
    .await;
    assert_eq!(claims(&t)["sub"], "robot$team+ci");
    assert_eq!(
        claims(&t)["access"][0]["actions"],
        serde_json::json!(["pull", "push"])
    );
    assert_eq!(claims(&t)["access"][1]["actions"], serde_json::json!([]));
    let d = sha256(b"robot layer");
    let r = c
        .post(b.url(&format!("/v2/team/app/blobs/uploads/?digest={d}")))
        .bearer_auth(&t)
        .body("robot layer")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Beyond its permissions: 403 with the reason, for tokens and Basic alike.
    let r = c
        .delete(b.url(&format!("/v2/team/app/blobs/{d}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 403, "DENIED").await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("robot$team+ci may pull and push only in project team"),
        "{v}"
    );
    let r = c
        .get(b.url("/v2/other/app/tags/list"))
        .basic_auth("robot$team+ci", Some("ci-secret"))
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 403, "DENIED").await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("robot$team+ci has no access to project other"),
        "{v}"
    );
    // A system robot over every project.
    let t = token_string(
        &c,
        &b,
        Some(("robot$reader", "r-secret")),
        &[&scope("team"), &scope("other")],
    )
    .await;
    assert_eq!(
        claims(&t)["access"][0]["actions"],
        serde_json::json!(["pull"])
    );
    assert_eq!(
        claims(&t)["access"][1]["actions"],
        serde_json::json!(["pull"])
    );
    // Expired, disabled, wrong secret, unknown: 401.
    for (name, secret) in [
        ("robot$old", "old-secret"),
        ("robot$off", "off-secret"),
        ("robot$reader", "wrong"),
        ("robot$ghost", "x"),
    ] {
        expect_error(
            token(&c, &b, Some((name, secret)), &[]).await,
            401,
            "UNAUTHORIZED",
        )
        .await;
    }
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let c = Client::new();
    let attempt = |b: &Berth, user: String, from: &'static str| {
        c.get(b.url("/service/token?service=berth-registry"))
            .basic_auth(user, Some("x"))
            .header("x-forwarded-for", from)
            .send()
    };
    // Behind a trusted proxy, each client has its own failure budget.
    let dir = tempfile::tempdir().unwrap();
    let proxied = Berth::start_in(
        dir.path(),
        &[
            ("BERTH_AUTH_ENABLED", "true"),
            ("BERTH_TRUSTED_PROXIES", "127.0.0.0/8"),
        ],
    )
    .await;
    for i in 0..berth_auth::service::MAX_ADDRESS_FAILURES {
        assert_eq!(
            attempt(&proxied, format!("u{i}"), "203.0.113.7")
                .await
                .unwrap()
                .status(),
            401
        );
    }
    assert_eq!(
        attempt(&proxied, "next".into(), "203.0.113.7")
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        attempt(&proxied, "next".into(), "203.0.113.8")
            .await
            .unwrap()
            .status(),
        401
    );
    // Without trusted proxies the header is ignored: changing it does not escape the limit.
    let dir = tempfile::tempdir().unwrap();
    let direct = Berth::start_in(dir.path(), &[("BERTH_AUTH_ENABLED", "true")]).await;
    for i in 0..berth_auth::service::MAX_ADDRESS_FAILURES {
        attempt(&direct, format!("u{i}"), "203.0.113.7")
            .await
            .unwrap();
    }
    assert_eq!(
        attempt(&direct, "next".into(), "198.51.100.1")
            .await
            .unwrap()
            .status(),
        429
    );
}
