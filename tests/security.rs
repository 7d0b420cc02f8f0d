//! What an attacker tried against Berth, as tests: grants bound to ids, not to names that can be
//! re-created; nothing unvalidated in a header or a decision; listings that agree with single
//! reads; password checks that are throttled and cost the same whether the name exists or not;
//! errors a client can read. Each case on SQLite and on a private MariaDB where the database
//! takes part.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::api::{ADMIN, Api, Backend, on_both_databases};

on_both_databases!(
    a_project_robot_is_bound_to_its_project_whatever_its_namespace_says,
    grants_die_with_their_project_and_a_recreated_name_inherits_none,
    a_repository_named_as_its_project_belongs_to_it,
    listings_show_a_robot_exactly_the_projects_it_may_read,
    a_stolen_session_cannot_guess_the_current_password,
    spellings_of_one_account_share_one_failure_budget,
    failed_logins_cost_the_same_whether_the_name_exists_or_not,
);

fn access(actions: &[&str]) -> Value {
    Value::Array(
        actions
            .iter()
            .map(|a| json!({"resource": "repository", "action": a}))
            .collect(),
    )
}

/// Creates a robot as `who`; returns its credentials, or the refusal.
async fn robot(api: &Api, who: (&str, &str), body: Value) -> Result<(String, String), Value> {
    let r = api.post("/robots", who, body).await;
    if r.status != 201 {
        return Err(json!({"status": r.status, "body": r.body}));
    }
    Ok((
        r.body["name"].as_str().unwrap().to_owned(),
        r.body["secret"].as_str().unwrap().to_owned(),
    ))
}

/// The names in the listing at `path` (`/projects`, `/repositories`) as `who` sees it.
async fn listed(api: &Api, path: &str, who: (&str, &str)) -> Vec<String> {
    let r = api.get(&format!("{path}?page_size=100"), who).await;
    r.ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_project_robot_is_bound_to_its_project_whatever_its_namespace_says(backend: Backend) {
    let api = Api::start_on(backend).await;
    api.user("owner", "Owner-pass1").await;
    let owner = ("owner", "Owner-pass1");
    let acme = api
        .post("/projects", owner, json!({"project_name": "acme"}))
        .await
        .created_id();
    // Someone else's private project whose name is acme's id.
    let victim = acme.to_string();
    api.post("/projects", ADMIN, json!({"project_name": victim}))
        .await
        .created_id();
    api.push(ADMIN, &format!("{victim}/secret"), "v1", "victim")
        .await;

    // The namespace is a project name, as in Harbor: "<acme's id>" is the victim's project,
    // where the owner may not manage robots (and which it may not even see).
    let by_id = json!({"name": "ci", "level": "project", "permissions": [
        {"kind": "project", "namespace": victim, "access": access(&["pull", "push"])}]});
    let refused = robot(&api, owner, by_id).await.unwrap_err();
    assert_eq!(refused["status"], 400, "{refused}");

    // By its name, the robot is the owner's project's, and only that project's.
    let ci = robot(
        &api,
        owner,
        json!({"name": "ci", "level": "project", "permissions": [
            {"kind": "project", "namespace": "acme", "access": access(&["pull", "push"])}]}),
    )
    .await
    .unwrap();
    let ci = (ci.0.as_str(), ci.1.as_str());
    assert_eq!(ci.0, "robot$acme+ci");
    assert_eq!(api.granted(ci, "acme/app").await, ["pull", "push"]);
    assert!(
        api.granted(ci, &format!("{victim}/secret"))
            .await
            .is_empty()
    );
    api.push(ci, "acme/app", "v1", "robot").await;
    let robots = api
        .get(
            &format!("/robots?q=Level%3Dproject,ProjectID%3D{acme}"),
            owner,
        )
        .await;
    assert_eq!(
        robots.ok(200)[0]["permissions"][0]["namespace"],
        "acme",
        "shown by name"
    );
    // Its permissions cannot be moved to another project by id either.
    let id = robots.body[0]["id"].as_i64().unwrap();
    let moved = api
        .put(
            &format!("/robots/{id}"),
            ADMIN,
            json!({"permissions": [{"kind": "project", "namespace": victim,
                "access": access(&["pull"])}]}),
        )
        .await;
    moved.error(400, "BAD_REQUEST");
    assert!(
        api.granted(ci, &format!("{victim}/secret"))
            .await
            .is_empty()
    );
}

async fn grants_die_with_their_project_and_a_recreated_name_inherits_none(backend: Backend) {
    let api = Api::start_on(backend).await;
    api.user("dev", "Dev-pass12").await;
    api.user("mallory", "Mallory-pass1").await;
    let (dev, mallory) = (("dev", "Dev-pass12"), ("mallory", "Mallory-pass1"));
    let shared = api
        .post("/projects", ADMIN, json!({"project_name": "shared"}))
        .await
        .created_id();
    api.post("/projects", ADMIN, json!({"project_name": "other"}))
        .await
        .created_id();
    // Every kind of grant on "shared": a member, a project robot, a system robot.
    api.post(
        &format!("/projects/{shared}/members"),
        ADMIN,
        json!({"role_id": 2, "member_user": {"username": "dev"}}),
    )
    .await
    .created_id();
    let project_robot = robot(
        &api,
        ADMIN,
        json!({"name": "ci", "level": "project", "permissions": [
            {"kind": "project", "namespace": "shared", "access": access(&["pull", "push"])}]}),
    )
    .await
    .unwrap();
    let system_robot = robot(
        &api,
        ADMIN,
        json!({"name": "sync", "level": "system", "permissions": [
            {"kind": "project", "namespace": "shared", "access": access(&["pull", "push"])},
            {"kind": "project", "namespace": "other", "access": access(&["pull"])}]}),
    )
    .await
    .unwrap();
    let pr = (project_robot.0.as_str(), project_robot.1.as_str());
    let sr = (system_robot.0.as_str(), system_robot.1.as_str());
    for who in [dev, pr, sr] {
        assert_eq!(api.granted(who, "shared/app").await, ["pull", "push"]);
    }
    let digest = api.push(sr, "shared/app", "v1", "before").await;

    // Emptied and deleted...
    api.delete(&format!("/projects/{shared}"), ADMIN)
        .await
        .error(412, "PRECONDITION");
    api.delete("/projects/shared/repositories/app", ADMIN)
        .await
        .ok(200);
    api.delete(&format!("/projects/{shared}"), ADMIN)
        .await
        .ok(200);
    // ...and re-created by someone else, private.
    let again = api
        .post("/projects", mallory, json!({"project_name": "shared"}))
        .await
        .created_id();
    assert_ne!(again, shared);
    api.push(mallory, "shared/app", "v1", "mallory's").await;

    assert!(api.granted(dev, "shared/app").await.is_empty(), "member");
    assert!(
        !api.can_login(pr).await,
        "the project robot went with its project"
    );
    assert!(
        api.granted(sr, "shared/app").await.is_empty(),
        "system robot"
    );
    assert_eq!(
        api.granted(sr, "other/app").await,
        ["pull"],
        "its other grant stays"
    );
    let c = support::basic_client(sr.0, sr.1);
    let r = c
        .get(api.b.url(&format!("/v2/shared/app/manifests/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        !listed(&api, "/projects", sr)
            .await
            .contains(&"shared".to_owned())
    );
    assert!(
        !listed(&api, "/projects", dev)
            .await
            .contains(&"shared".to_owned())
    );
    let shown = api.get("/robots?q=Level%3Dsystem", ADMIN).await;
    let sync = shown
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "robot$sync")
        .unwrap()
        .clone();
    assert_eq!(
        sync["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["namespace"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["other"]
    );
}

async fn a_repository_named_as_its_project_belongs_to_it(backend: Backend) {
    let api = Api::start_on(backend).await;
    api.user("mallory", "Mallory-pass1").await;
    let mallory = ("mallory", "Mallory-pass1");
    let team = api
        .post("/projects", ADMIN, json!({"project_name": "team"}))
        .await
        .created_id();
    // `PUT /v2/team/manifests/v1`: one path component, the project's own name.
    let digest = api.push(ADMIN, "team", "v1", "secret").await;
    assert!(api.granted(mallory, "team").await.is_empty());
    let project = api.get("/projects/team", ADMIN).await;
    assert_eq!(project.ok(200)["repo_count"], 1);
    assert_eq!(
        api.get("/projects/team/repositories", ADMIN).await.ok(200)[0]["name"],
        "team"
    );
    // The project owns it: it cannot be deleted while the repository has content.
    api.delete(&format!("/projects/{team}"), ADMIN)
        .await
        .error(412, "PRECONDITION");
    let admin = support::basic_client(ADMIN.0, ADMIN.1);
    let r = admin
        .delete(api.b.url(&format!("/v2/team/manifests/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    api.delete(&format!("/projects/{team}"), ADMIN)
        .await
        .ok(200);
    // Whoever takes the name finds nothing of the old project's.
    api.post("/projects", mallory, json!({"project_name": "team"}))
        .await
        .created_id();
    let c = support::basic_client(mallory.0, mallory.1);
    for path in [
        "/v2/team/manifests/v1",
        &format!("/v2/team/manifests/{digest}"),
    ] {
        let r = c.get(api.b.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

async fn listings_show_a_robot_exactly_the_projects_it_may_read(backend: Backend) {
    let api = Api::start_on(backend).await;
    for name in ["secret", "visible"] {
        api.post("/projects", ADMIN, json!({"project_name": name}))
            .await
            .created_id();
        api.push(ADMIN, &format!("{name}/app"), "v1", name).await;
    }
    // Read and list only: no registry action at all in "secret".
    let (name, secret) = robot(
        &api,
        ADMIN,
        json!({"name": "lister", "level": "system", "permissions": [
            {"kind": "project", "namespace": "secret", "access": [
                {"resource": "repository", "action": "list"},
                {"resource": "artifact", "action": "read"}]},
            {"kind": "project", "namespace": "visible", "access": access(&["pull"])}]}),
    )
    .await
    .unwrap();
    let who = (name.as_str(), secret.as_str());
    api.get("/projects/secret", who)
        .await
        .error(404, "NOT_FOUND");
    api.get("/projects/visible", who).await.ok(200);
    assert_eq!(listed(&api, "/projects", who).await, ["library", "visible"]);
    assert_eq!(listed(&api, "/repositories", who).await, ["visible/app"]);
    // Harbor's `q` filters narrow the same rule, never widen it.
    let r = api.get("/projects?name=secret", who).await;
    assert_eq!(r.ok(200).as_array().unwrap().len(), 0);
    assert_eq!(r.header("x-total-count"), "0");
    // Everywhere with no actions reaches nothing either.
    let (name, secret) = robot(
        &api,
        ADMIN,
        json!({"name": "nothing", "level": "system", "permissions": [
            {"kind": "project", "namespace": "*", "access": [
                {"resource": "repository", "action": "list"}]}]}),
    )
    .await
    .unwrap();
    let nothing = (name.as_str(), secret.as_str());
    assert_eq!(listed(&api, "/projects", nothing).await, ["library"]);
    assert!(listed(&api, "/repositories", nothing).await.is_empty());
    api.get("/projects/secret", nothing)
        .await
        .error(404, "NOT_FOUND");
}

async fn a_stolen_session_cannot_guess_the_current_password(backend: Backend) {
    let api = Api::start_on(backend).await;
    let id = api.user("alice", "Alice-pass1").await;
    let (sid, csrf) = support::log_in(&api.c, &api.b, "alice", "Alice-pass1").await;
    let cookie = format!("sid={sid}");
    let change = |old: &'static str| {
        api.c
            .put(api.b.url(&format!("/api/v2.0/users/{id}/password")))
            .header("cookie", &cookie)
            .header("x-harbor-csrf-token", &csrf)
            .json(&json!({"old_password": old, "new_password": "Stolen-pass9"}))
            .send()
    };
    for _ in 0..berth_auth::service::MAX_ACCOUNT_FAILURES {
        let r = change("Guess-pass0").await.unwrap();
        assert_eq!(r.status(), 403);
    }
    // The budget is spent: even the right password waits now, and so do logins.
    let r = change("Alice-pass1").await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "TOO_MANY_REQUESTS");
    assert!(!api.can_login(("alice", "Alice-pass1")).await);
    // Nothing changed.
    assert!(!api.can_login(("alice", "Stolen-pass9")).await);
}

async fn spellings_of_one_account_share_one_failure_budget(backend: Backend) {
    let api = Api::start_on(backend).await;
    // MySQL ignores trailing spaces in comparisons, directories ignore case: each spelling
    // used to have a budget of its own.
    let spellings = ["admin", "ADMIN", "Admin", "admin ", " aDmin", "admiN  "];
    for i in 0..berth_auth::service::MAX_ACCOUNT_FAILURES {
        let name = spellings[i % spellings.len()];
        assert!(!api.can_login((name, "wrong-password")).await);
    }
    let r = api
        .c
        .get(api.b.url("/service/token?service=berth-registry"))
        .basic_auth("admin", Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "the budget was spent under other spellings"
    );
}

async fn failed_logins_cost_the_same_whether_the_name_exists_or_not(backend: Backend) {
    // Each try from an address of its own, so that only the per-account limit applies.
    let api = Api::start_with(backend, &[("BERTH_TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    let known: Vec<String> = (0..6).map(|i| format!("known{i}")).collect();
    for name in &known {
        api.user(name, "Known-pass1").await;
    }
    let gone: Vec<String> = (0..3).map(|i| format!("gone{i}")).collect();
    for name in &gone {
        let id = api.user(name, "Gone-pass12").await;
        api.put(
            &format!("/users/{id}/disabled"),
            ADMIN,
            json!({"disabled": true}),
        )
        .await
        .ok(200);
    }
    let mut address = 0u32;
    let mut timed = |name: String| {
        address += 1;
        let from = format!(
            "10.{}.{}.{}",
            address >> 16,
            (address >> 8) & 255,
            address & 255
        );
        let req = api
            .c
            .get(api.b.url("/service/token?service=berth-registry"))
            .basic_auth(name, Some("Wrong-pass1"))
            .header("x-forwarded-for", from);
        async move {
            let started = Instant::now();
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401);
            started.elapsed()
        }
    };
    // Interleaved, so that whatever else the machine does weighs on every kind alike.
    let (mut existing, mut unknown, mut inactive) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..8 {
        for (i, name) in known.iter().enumerate() {
            existing.push(timed(name.clone()).await);
            let kind = if i % 2 == 0 { "user" } else { "robot$" };
            unknown.push(timed(format!("{kind}nobody{round}x{i}")).await);
            if let Some(name) = gone.get(i) {
                inactive.push(timed(name.clone()).await);
            }
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (existing, unknown, inactive) = (median(existing), median(unknown), median(inactive));
    eprintln!(
        "median refusal: existing user {existing:?}, unknown name {unknown:?}, disabled user \
         {inactive:?}"
    );
    for (what, other) in [("unknown", unknown), ("disabled", inactive)] {
        let ratio = other.as_secs_f64() / existing.as_secs_f64();
        assert!(
            (0.8..=1.25).contains(&ratio),
            "a wrong password for an existing user takes {existing:?}, for an {what} user \
             {other:?} (ratio {ratio:.2})"
        );
    }
}

/// Sends `head` and then `body_len` bytes over a raw connection, writing all of them before
/// reading the answer, as a client that does not wait for `100 Continue` does; returns the
/// status line and the body, or the write error.
fn send_whole(addr: &str, head: &str, body_len: usize) -> Result<(String, String), String> {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())?;
    let chunk = vec![b' '; 64 << 10];
    let mut left = body_len;
    while left > 0 {
        let n = left.min(chunk.len());
        stream
            .write_all(&chunk[..n])
            .map_err(|e| format!("after {} bytes: {e}", body_len - left))?;
        left -= n;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Headers and a small body: read until the body's declared length has arrived.
    loop {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.lines().next().unwrap().to_owned();
                return Ok((status, body.to_owned()));
            }
        }
    }
    Err(format!(
        "connection closed: {}",
        String::from_utf8_lossy(&answer)
    ))
}

#[tokio::test]
async fn oversized_bodies_get_an_answer_the_client_can_read() {
    let api = Api::start().await;
    let addr = api.b.addr.clone();
    let basic = data_encoding::BASE64.encode(format!("{}:{}", ADMIN.0, ADMIN.1).as_bytes());
    let manifest = 8 << 20; // twice the manifest limit
    let head = format!(
        "PUT /v2/library/big/manifests/v1 HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Basic {basic}\r\n\
         Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\
         Content-Length: {manifest}\r\n\r\n"
    );
    let send = |head: String, body_len: usize| {
        let addr = addr.clone();
        async move {
            tokio::task::spawn_blocking(move || send_whole(&addr, &head, body_len))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let (status, body) = send(head, manifest).await;
    assert!(status.contains(" 413 "), "{status}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errors"][0]["code"], "SIZE_INVALID");

    // The management API: the same, in Harbor's envelope.
    let json_body = 3 << 20;
    let api_head = |extra: &str| {
        format!(
            "POST /api/v2.0/projects HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Basic {basic}\r\nContent-Type: application/json\r\n\
             {extra}Content-Length: {json_body}\r\n\r\n"
        )
    };
    let (status, body) = send(api_head(""), json_body).await;
    assert!(status.contains(" 413 "), "{status}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errors"][0]["code"], "PAYLOAD_TOO_LARGE", "{body}");
    // A client that asks first is answered at once, its body never asked for.
    let (status, _) = send(api_head("Expect: 100-continue\r\n"), 0).await;
    assert!(status.contains(" 413 "), "{status}");
    // Errors from below the handlers are in the envelope too: an undecodable path parameter.
    let r = api.get("/projects/%FF%FE", ADMIN).await;
    let message = r.error(400, "BAD_REQUEST");
    assert!(!message.is_empty());
    assert!(r.header("content-type").starts_with("application/json"));
}

#[tokio::test]
async fn names_are_validated_before_they_reach_a_challenge() {
    let api = Api::start().await;
    // A name that would close the scope and add a realm of the attacker's.
    for path in [
        "/v2/a%22,realm=%22http:%2F%2Fevil.example%2Ftoken%22,x=%22/manifests/v1",
        "/v2/a%22%20error=%22insufficient_scope/tags/list",
        "/v2/Team/app/blobs/uploads/",
        "/v2/a%0d%0aSet-Cookie:x/manifests/v1",
    ] {
        let r = api.c.get(api.b.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert!(r.headers().get("www-authenticate").is_none(), "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "NAME_INVALID", "{path}");
    }
    // A valid name is challenged, every parameter a proper quoted-string.
    let r = api
        .c
        .get(api.b.url("/v2/library/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(challenge.matches("realm=").count(), 1, "{challenge}");
    assert!(challenge.ends_with(",scope=\"repository:library/app:pull\""));

    // A mount without a token asks for pull on the source too, as Distribution does.
    let mount = "/v2/team/app/blobs/uploads/?mount=sha256:\
        0000000000000000000000000000000000000000000000000000000000000000&from=library/base";
    let r = api.c.post(api.b.url(mount)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("scope=\"repository:team/app:pull,push repository:library/base:pull\""),
        "{challenge}"
    );
    // An invalid source is not echoed.
    let r = api
        .c
        .post(
            api.b
                .url("/v2/team/app/blobs/uploads/?mount=sha256:00&from=Evil%22x"),
        )
        .send()
        .await
        .unwrap();
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.ends_with("scope=\"repository:team/app:pull,push\""),
        "{challenge}"
    );
}
