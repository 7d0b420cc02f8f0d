//! The audit log through the real binary: pushes, pulls, deletions, failed logins, project and
//! member changes each appear with the right user, address and outcome; every `q` form returns
//! exactly the expected rows; a project's log is for its developers and up; pulls can be left
//! out; a deleted user can be forgotten. On SQLite and on a private MariaDB.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::api::{ADMIN, ANON, Api, Backend, Reply, on_both_databases};

on_both_databases!(every_change_is_in_the_log_with_who_where_and_outcome);

const DEV: (&str, &str) = ("dev", "Dev-pass-123");
const GUEST: (&str, &str) = ("guest", "Guest-pass-123");

/// Entries as `operation resource_type resource by username (outcome)`, newest first.
fn lines(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {} by {}{}",
                e["operation"].as_str().unwrap(),
                e["resource_type"].as_str().unwrap(),
                e["resource"].as_str().unwrap(),
                e["username"].as_str().unwrap(),
                if e["is_successful"].as_bool().unwrap() {
                    ""
                } else {
                    " (failed)"
                }
            )
        })
        .collect()
}

fn q(query: &str) -> String {
    format!("/audit-logs?page_size=100&q={}", percent_encode(query))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Waits until the pulls queued by the server are written (at most a second behind).
async fn until_logged(api: &Api, query: &str, n: usize) -> Reply {
    for _ in 0..50 {
        let r = api.get(&q(query), ADMIN).await;
        if r.body.as_array().is_some_and(|a| a.len() >= n) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{query}: fewer than {n} entries after 5 s");
}

async fn every_change_is_in_the_log_with_who_where_and_outcome(backend: Backend) {
    let api = Api::start_on(backend).await;
    // Before anything: administrator-made changes.
    api.post("/projects", ADMIN, json!({"project_name": "team"}))
        .await
        .ok(201);
    api.post("/projects", ADMIN, json!({"project_name": "other"}))
        .await
        .ok(201);
    api.user(DEV.0, DEV.1).await;
    api.user(GUEST.0, GUEST.1).await;
    for (who, role) in [(DEV.0, 2), (GUEST.0, 3)] {
        api.post(
            "/projects/team/members",
            ADMIN,
            json!({"role_id": role, "member_user": {"username": who}}),
        )
        .await
        .ok(201);
    }
    // The developer pushes and pulls over /v2; someone fails to log in.
    let digest = api.push(DEV, "team/app", "v1", "audit").await;
    let pulled = support::basic_client(DEV.0, DEV.1)
        .get(api.b.url("/v2/team/app/manifests/v1"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    assert!(!api.can_login(("mallory", "not-the-password")).await);
    assert!(!api.can_login((DEV.0, "wrong")).await);
    // The administrator deletes a tag, tries to delete a project with content, deletes it all.
    api.post(
        &format!("/projects/team/repositories/app/artifacts/{digest}/tags"),
        ADMIN,
        json!({"name": "v2"}),
    )
    .await
    .ok(201);
    api.delete(
        &format!("/projects/team/repositories/app/artifacts/{digest}/tags/v2"),
        ADMIN,
    )
    .await
    .ok(200);
    api.delete("/projects/team", ADMIN)
        .await
        .error(412, "PRECONDITION");
    api.delete(
        &format!("/projects/team/repositories/app/artifacts/{digest}"),
        ADMIN,
    )
    .await
    .ok(200);

    let all = until_logged(&api, "operation=pull", 1).await;
    assert_eq!(lines(&all), ["pull artifact team/app:v1 by dev"]);
    let everything = api.get("/audit-logs?page_size=100", ADMIN).await;
    let artifact = format!("team/app@{digest}");
    assert_eq!(
        lines(&everything),
        [
            format!("delete artifact {artifact} by admin"),
            "delete project team by admin (failed)".to_owned(),
            "delete tag team/app:v2 by admin".to_owned(),
            "create tag team/app:v2 by admin".to_owned(),
            "login session dev by dev (failed)".to_owned(),
            "login session mallory by mallory (failed)".to_owned(),
            "pull artifact team/app:v1 by dev".to_owned(),
            format!("create artifact {artifact} by dev"),
            "create member team/guest by admin".to_owned(),
            "create member team/dev by admin".to_owned(),
            "create user guest by admin".to_owned(),
            "create user dev by admin".to_owned(),
            "create project other by admin".to_owned(),
            "create project team by admin".to_owned(),
        ],
        "pushes and pulls over /v2, logins and API changes, newest first"
    );
    assert_eq!(everything.header("x-total-count"), "14");
    for e in everything.body.as_array().unwrap() {
        assert_eq!(e["client_address"], "127.0.0.1", "{e}");
    }
    let failed = &everything.body[5];
    assert_eq!(
        (
            &failed["principal"],
            &failed["outcome"],
            &failed["operation_description"]
        ),
        (
            &json!("user"),
            &json!("failure"),
            &json!("invalid username or password")
        )
    );
    let refused = &everything.body[1];
    assert!(
        refused["operation_description"]
            .as_str()
            .unwrap()
            .contains("still has 1 repositories"),
        "{refused}"
    );

    // Every form of q.
    assert_eq!(
        lines(&api.get(&q("username=dev"), ADMIN).await),
        [
            "login session dev by dev (failed)",
            "pull artifact team/app:v1 by dev",
            &format!("create artifact {artifact} by dev"),
        ]
    );
    assert_eq!(
        lines(&api.get(&q("resource=~team/app"), ADMIN).await).len(),
        5,
        "push, pull, two tags and the delete"
    );
    assert_eq!(
        lines(
            &api.get(&q("operation={login pull},username=dev"), ADMIN)
                .await
        ),
        [
            "login session dev by dev (failed)",
            "pull artifact team/app:v1 by dev",
        ]
    );
    assert_eq!(
        lines(&api.get(&q("resource_type=member"), ADMIN).await),
        [
            "create member team/guest by admin",
            "create member team/dev by admin"
        ]
    );
    assert_eq!(lines(&api.get(&q("outcome=failure"), ADMIN).await).len(), 3);
    // Ranges by time: bounds taken from the entries themselves, inclusive.
    let items = everything.body.as_array().unwrap();
    let time_of = |i: usize| items[i]["op_time"].as_str().unwrap().to_owned();
    let (pull_time, push_time) = (time_of(6), time_of(7));
    let between = lines(
        &api.get(&q(&format!("op_time=[{push_time}~{pull_time}]")), ADMIN)
            .await,
    );
    assert_eq!(between.first().unwrap(), "pull artifact team/app:v1 by dev");
    assert_eq!(
        between.last().unwrap(),
        &format!("create artifact {artifact} by dev")
    );
    let since = lines(&api.get(&q(&format!("op_time=[{pull_time}~]")), ADMIN).await);
    assert_eq!(since.last().unwrap(), "pull artifact team/app:v1 by dev");
    assert_eq!(since.len(), 7);
    let until = lines(&api.get(&q(&format!("op_time=[~{push_time}]")), ADMIN).await);
    assert_eq!(
        until.first().unwrap(),
        &format!("create artifact {artifact} by dev")
    );
    assert_eq!(until.len(), 7);
    assert!(
        lines(
            &api.get(
                &q("op_time=[2000-01-01 00:00:00~2000-01-02 00:00:00]"),
                ADMIN
            )
            .await
        )
        .is_empty()
    );
    // Sorting and paging.
    let oldest = api
        .get("/audit-logs?sort=op_time&page=1&page_size=2", ADMIN)
        .await;
    assert_eq!(
        lines(&oldest),
        [
            "create project team by admin",
            "create project other by admin"
        ]
    );
    assert_eq!(oldest.header("x-total-count"), "14");
    assert!(
        oldest.header("link").contains("rel=\"next\""),
        "{:?}",
        oldest.headers
    );

    // Bad input is a 400 in Harbor's envelope.
    for bad in [
        "secret=1",
        "op_time=[yesterday~]",
        "username",
        "operation={}",
    ] {
        let r = api.get(&q(bad), ADMIN).await;
        r.error(400, "BAD_REQUEST");
    }
    api.get("/audit-logs?sort=password", ADMIN)
        .await
        .error(400, "BAD_REQUEST");

    // Who may read what.
    api.get("/audit-logs", DEV).await.error(403, "FORBIDDEN");
    api.get("/audit-logs", ANON)
        .await
        .error(401, "UNAUTHORIZED");
    let team = api.get("/projects/team/logs?page_size=100", DEV).await;
    let team_lines = lines(&team);
    assert!(
        team_lines.contains(&"pull artifact team/app:v1 by dev".to_owned()),
        "{team_lines:?}"
    );
    assert!(
        team_lines
            .iter()
            .all(|l| !l.contains("other") && !l.contains("login")),
        "only the project's own entries: {team_lines:?}"
    );
    assert_eq!(
        lines(&api.get("/projects/team/logs?q=operation%3Dpull", DEV).await),
        ["pull artifact team/app:v1 by dev"]
    );
    api.get("/projects/other/logs", DEV)
        .await
        .error(404, "NOT_FOUND");
    api.get("/projects/team/logs", GUEST)
        .await
        .error(403, "FORBIDDEN");
    let other = api.get("/projects/other/logs", ADMIN).await;
    assert_eq!(lines(&other), ["create project other by admin"]);
}

/// With `audit.pulls` off, pulls are not recorded; everything else still is.
#[tokio::test(flavor = "multi_thread")]
async fn pulls_can_be_left_out_of_the_log() {
    let api = Api::start_with(Backend::Sqlite, &[("BERTH_AUDIT_PULLS", "false")]).await;
    api.post("/projects", ADMIN, json!({"project_name": "team"}))
        .await
        .ok(201);
    api.push(ADMIN, "team/app", "v1", "quiet").await;
    let c = support::basic_client(ADMIN.0, ADMIN.1);
    for _ in 0..3 {
        let r = c
            .get(api.b.url("/v2/team/app/manifests/v1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ops: Vec<String> = lines(&api.get("/audit-logs", ADMIN).await);
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert!(
        ops[0].starts_with("create artifact team/app@sha256:"),
        "{ops:?}"
    );
}

/// A node stopped cleanly writes the pulls it still holds; with forgetting on, a deleted
/// user's name is replaced in old entries.
#[tokio::test(flavor = "multi_thread")]
async fn pulls_survive_a_clean_stop_and_deleted_users_can_be_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("BERTH_AUTH_ENABLED", "true"),
        ("BERTH_ADMIN_PASSWORD", support::ADMIN_PASSWORD),
        ("BERTH_AUDIT_FORGET_DELETED_USERS", "true"),
    ];
    let api = Api::with(support::Berth::start_in(dir.path(), &env).await);
    api.post("/projects", ADMIN, json!({"project_name": "team"}))
        .await
        .ok(201);
    let id = api.user(DEV.0, DEV.1).await;
    api.post(
        "/projects/team/members",
        ADMIN,
        json!({"role_id": 2, "member_user": {"username": DEV.0}}),
    )
    .await
    .ok(201);
    api.push(DEV, "team/app", "v1", "gdpr").await;
    let c = support::basic_client(DEV.0, DEV.1);
    let r = c
        .get(api.b.url("/v2/team/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Stopped at once: the pull is still queued, and must be written on the way out.
    let mut b = api.b;
    assert!(b.terminate().success());
    let api = Api::with(support::Berth::start_in(dir.path(), &env).await);
    let pulls = lines(&api.get(&q("operation=pull"), ADMIN).await);
    assert_eq!(pulls, ["pull artifact team/app:v1 by dev"]);
    api.delete(&format!("/users/{id}"), ADMIN).await.ok(200);
    let all: Vec<Value> = api
        .get("/audit-logs?page_size=100", ADMIN)
        .await
        .body
        .as_array()
        .unwrap()
        .clone();
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("\"dev\""), "{text}");
    let forgotten = format!("deleted-user-{id}");
    let renamed = all
        .iter()
        .filter(|e| e["username"] == forgotten.as_str())
        .count();
    assert_eq!(renamed, 2, "the push and the pull: {text}");
    assert!(
        all.iter()
            .any(|e| e["operation"] == "delete" && e["resource"] == forgotten.as_str()),
        "{text}"
    );
    drop(dir);
}

/// The entry ids in what the receiver got, in the order it got them.
fn forwarded_ids(received: &str) -> Vec<i64> {
    received
        .lines()
        .filter_map(|l| {
            let start = l.find("[audit@32473 id=\"")? + "[audit@32473 id=\"".len();
            l[start..].split('"').next()?.parse().ok()
        })
        .collect()
}

/// Entry ids in the log, oldest first.
async fn logged_ids(api: &Api) -> Vec<i64> {
    let mut ids: Vec<i64> = api
        .get("/audit-logs?page_size=100&sort=id", ADMIN)
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

async fn until_forwarded(rsyslog: &berth_testkit::Rsyslog, n: usize) -> Vec<i64> {
    let start = std::time::Instant::now();
    loop {
        let ids = forwarded_ids(&rsyslog.received());
        if ids.len() >= n {
            return ids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} of {n} entries forwarded:\n{}",
            ids.len(),
            rsyslog.received()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Forwarding to a real rsyslog that is stopped and started again mid-run: every entry
/// arrives, in order, once; the messages are RFC 5424 with the entry in structured data.
#[tokio::test(flavor = "multi_thread")]
async fn every_entry_reaches_syslog_in_order_across_a_receiver_restart() {
    let mut rsyslog = tokio::task::spawn_blocking(berth_testkit::Rsyslog::start)
        .await
        .unwrap();
    let addr = rsyslog.addr();
    let api = Api::start_with(Backend::Sqlite, &[("BERTH_AUDIT_SYSLOG", addr.as_str())]).await;
    let create = |name: String| {
        let api = &api;
        async move {
            api.post("/projects", ADMIN, json!({"project_name": name}))
                .await
                .ok(201);
        }
    };
    for i in 0..20 {
        create(format!("before-{i}")).await;
    }
    until_forwarded(&rsyslog, 20).await;
    // The receiver goes away; changes go on; it comes back.
    rsyslog.stop();
    for i in 0..20 {
        create(format!("during-{i}")).await;
    }
    assert!(!api.can_login(("mallory", "wrong")).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rsyslog.restart();
    for i in 0..20 {
        create(format!("after-{i}")).await;
    }
    let expected = logged_ids(&api).await;
    assert_eq!(expected.len(), 61);
    let got = until_forwarded(&rsyslog, expected.len()).await;
    assert_eq!(got, expected, "every entry once, in order");
    let received = rsyslog.received();
    let failed = received
        .lines()
        .find(|l| l.contains("operation=\"login\""))
        .unwrap();
    assert!(failed.starts_with("<132>1 "), "local0.warning: {failed}");
    assert!(failed.contains("user=\"mallory\""), "{failed}");
    assert!(failed.contains("outcome=\"failure\""), "{failed}");
    assert!(failed.contains("client=\"127.0.0.1\""), "{failed}");
    let created = received.lines().next().unwrap();
    assert!(created.starts_with("<133>1 "), "local0.notice: {created}");
    assert!(
        created.contains(" berth - audit [audit@32473 id=")
            && created.contains("resource=\"before-0\""),
        "{created}"
    );
}

/// Pulls of one reference by one caller within a batch are one entry saying how many.
#[tokio::test(flavor = "multi_thread")]
async fn repeated_pulls_are_counted_not_repeated() {
    let api = Api::start().await;
    api.post("/projects", ADMIN, json!({"project_name": "team"}))
        .await
        .ok(201);
    api.push(ADMIN, "team/app", "v1", "counted").await;
    let c = support::basic_client(ADMIN.0, ADMIN.1);
    for _ in 0..20 {
        let r = c
            .get(api.b.url("/v2/team/app/manifests/v1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    until_logged(&api, "operation=pull", 1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let pulls = api.get(&q("operation=pull"), ADMIN).await;
    let entries = pulls.body.as_array().unwrap();
    assert!(entries.len() <= 3, "batched: {}", pulls.body);
    let total: u64 = entries
        .iter()
        .map(|e| {
            let d = e["operation_description"].as_str().unwrap();
            d.strip_suffix(" pulls").map_or(1, |n| n.parse().unwrap())
        })
        .sum();
    assert_eq!(total, 20, "{}", pulls.body);
    assert!(
        entries
            .iter()
            .all(|e| e["resource"] == "team/app:v1" && e["username"] == "admin")
    );
}
