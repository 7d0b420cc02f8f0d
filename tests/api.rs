//! The management API under /api/v2.0, against the real binary with authentication on: every
//! endpoint's success path, its permission checks and its errors.

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::api::{ADMIN, ANON, Api, Backend, Reply, on_both_databases};
use support::{ADMIN_PASSWORD, Berth};

on_both_databases!(
    users_are_managed_by_administrators_and_themselves,
    projects_and_members_follow_roles,
    robot_accounts_show_their_secret_once_and_obey_their_permissions,
    repositories_artifacts_and_tags,
);

#[tokio::test]
async fn system_endpoints_and_the_openapi_document() {
    let api = Api::start().await;
    let r = api.get("/ping", ANON).await;
    assert_eq!((r.status, r.body.as_str()), (200, Some("Pong")));

    let health = api.get("/health", ANON).await;
    assert_eq!(health.ok(200)["status"], "healthy");
    let names: Vec<&str> = health.body["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["database", "storage"]);

    let anonymous = api.get("/systeminfo", ANON).await;
    assert_eq!(anonymous.ok(200)["auth_mode"], "db_auth");
    assert_eq!(anonymous.body["project_creation_restriction"], "everyone");
    assert_eq!(anonymous.body["registry_url"], api.b.addr);
    assert!(
        anonymous.body.get("harbor_version").is_none(),
        "version only for users"
    );
    let admin = api.get("/systeminfo", ADMIN).await;
    assert!(admin.ok(200)["berth_version"].is_string());

    // Wrong credentials are refused even where anonymous callers are welcome.
    api.get("/systeminfo", ("admin", "wrong"))
        .await
        .error(401, "UNAUTHORIZED");
    let r = api
        .c
        .get(api.b.url("/api/v2.0/projects"))
        .header("authorization", "Bearer abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    api.get("/nothing/here", ADMIN)
        .await
        .error(404, "NOT_FOUND");
    api.send(Method::PATCH, "/users", ADMIN, None)
        .await
        .error(405, "METHOD_NOT_ALLOWED");

    // Every operation the document lists is routed (none answers the fallbacks).
    let doc = api.get("/openapi.json", ANON).await;
    assert_eq!(doc.ok(200)["openapi"], "3.0.3");
    let paths = doc.body["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths", paths.len());
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{user_id}", "999")
            .replace("{project_name_or_id}", "nosuchproject")
            .replace("{member_id}", "999")
            .replace("{robot_id}", "999")
            .replace("{repository_name}", "r")
            .replace("{reference}", "latest")
            .replace("{tag_name}", "t")
            .replace("{pool_id}", "all")
            .replace("{job_type}", "count")
            .replace("{job_id}", "999")
            .replace("{execution_id}", "999")
            .replace("{task_id}", "999")
            .replace("{purge_id}", "999");
        assert!(!concrete.contains('{'), "unknown parameter in {path}");
        for method in item.as_object().unwrap().keys() {
            if method == "parameters" {
                continue;
            }
            operations += 1;
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = api.send(m, &concrete, ADMIN, Some(json!({}))).await;
            assert_ne!(
                r.status, 405,
                "{method} {path} is documented but not routed"
            );
            let message = r.body["errors"][0]["message"].as_str().unwrap_or("");
            assert!(
                !message.starts_with("no such endpoint"),
                "{method} {path} is documented but not routed"
            );
            assert!(r.status < 500, "{method} {path}: {}", r.body);
        }
    }
    assert!(operations >= 35, "{operations} operations");
}

async fn users_are_managed_by_administrators_and_themselves(backend: Backend) {
    let api = Api::start_on(backend).await;
    let alice = api.user("alice", "Alice-pass-1").await;
    let a = ("alice", "Alice-pass-1");

    // Creation: errors and permissions.
    api.post(
        "/users",
        ADMIN,
        json!({"username": "alice", "password": "Other-pass-1"}),
    )
    .await
    .error(409, "CONFLICT");
    let weak = api
        .post(
            "/users",
            ADMIN,
            json!({"username": "weak", "password": "password"}),
        )
        .await
        .error(400, "BAD_REQUEST");
    assert!(weak.contains("upper-case"), "{weak}");
    for bad in ["robot$x", "a:b", "a b", ""] {
        api.post(
            "/users",
            ADMIN,
            json!({"username": bad, "password": "Good-pass-1"}),
        )
        .await
        .error(400, "BAD_REQUEST");
    }
    api.post("/users", ADMIN, json!({"username": "x"}))
        .await
        .error(400, "BAD_REQUEST");
    let r = api
        .c
        .post(api.b.url("/api/v2.0/users"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    api.post(
        "/users",
        a,
        json!({"username": "bob", "password": "Bob-pass-12"}),
    )
    .await
    .error(403, "FORBIDDEN");
    api.post(
        "/users",
        ANON,
        json!({"username": "bob", "password": "Bob-pass-12"}),
    )
    .await
    .error(401, "UNAUTHORIZED");
    assert!(api.can_login(a).await);

    // Listing: administrators only, paged, filtered.
    let bob = api.user("bob", "Some-pass-12").await;
    for n in ["carol", "dave"] {
        api.user(n, "Some-pass-12").await;
    }
    let page = api.get("/users?page=1&page_size=2", ADMIN).await;
    assert_eq!(page.ok(200).as_array().unwrap().len(), 2);
    assert_eq!(page.header("x-total-count"), "5");
    assert!(
        page.header("link")
            .contains("page=2&page_size=2>; rel=\"next\"")
    );
    let last = api.get("/users?page=3&page_size=2", ADMIN).await;
    assert_eq!(last.ok(200)[0]["username"], "dave");
    assert!(!last.header("link").contains("next"));
    let found = api.get("/users?q=username%3D~aro", ADMIN).await;
    assert_eq!(found.ok(200)[0]["username"], "carol");
    assert_eq!(found.header("x-total-count"), "1");
    api.get("/users?page=0", ADMIN)
        .await
        .error(400, "BAD_REQUEST");
    api.get("/users?page_size=1000", ADMIN)
        .await
        .error(400, "BAD_REQUEST");
    api.get("/users?q=email%3Dx", ADMIN)
        .await
        .error(400, "BAD_REQUEST");
    api.get("/users", a).await.error(403, "FORBIDDEN");
    api.get("/users", ANON).await.error(401, "UNAUTHORIZED");
    let search = api.get("/users/search?username=bo", a).await;
    assert_eq!(
        search.ok(200),
        &json!([{"user_id": bob, "username": "bob"}])
    );
    api.get("/users/search", a).await.error(400, "BAD_REQUEST");
    api.get("/users/search?username=bo", ANON)
        .await
        .error(401, "UNAUTHORIZED");

    // Reading and changing a profile: administrators, or the user itself.
    let me = api.get("/users/current", a).await;
    assert_eq!(me.ok(200)["username"], "alice");
    assert_eq!(me.body["email"], "alice@example.com");
    assert_eq!(me.body["sysadmin_flag"], false);
    api.get("/users/current", ANON)
        .await
        .error(401, "UNAUTHORIZED");
    assert_eq!(
        api.get(&format!("/users/{alice}"), a).await.ok(200)["user_id"],
        alice
    );
    api.get(&format!("/users/{}", bob), a)
        .await
        .error(403, "FORBIDDEN");
    api.get("/users/9999", ADMIN).await.error(404, "NOT_FOUND");
    api.get("/users/abc", ADMIN).await.error(400, "BAD_REQUEST");
    api.put(
        &format!("/users/{alice}"),
        a,
        json!({"realname": "Alice A."}),
    )
    .await
    .ok(200);
    let me = api.get(&format!("/users/{alice}"), ADMIN).await;
    assert_eq!(
        (&me.body["realname"], &me.body["email"]),
        (&json!("Alice A."), &json!("alice@example.com"))
    );
    api.put(&format!("/users/{}", bob), a, json!({"realname": "x"}))
        .await
        .error(403, "FORBIDDEN");
    api.put(&format!("/users/{alice}"), ANON, json!({"realname": "x"}))
        .await
        .error(401, "UNAUTHORIZED");
    api.put(&format!("/users/{alice}"), a, json!({"realname": 5}))
        .await
        .error(400, "BAD_REQUEST");

    // Passwords.
    let path = format!("/users/{alice}/password");
    api.put(
        &path,
        a,
        json!({"old_password": "wrong", "new_password": "Alice-pass-2"}),
    )
    .await
    .error(403, "FORBIDDEN");
    api.put(&path, a, json!({"new_password": "Alice-pass-2"}))
        .await
        .error(400, "BAD_REQUEST");
    api.put(
        &path,
        a,
        json!({"old_password": "Alice-pass-1", "new_password": "Alice-pass-1"}),
    )
    .await
    .error(400, "BAD_REQUEST");
    api.put(
        &path,
        a,
        json!({"old_password": "Alice-pass-1", "new_password": "short"}),
    )
    .await
    .error(400, "BAD_REQUEST");
    api.put(
        &path,
        a,
        json!({"old_password": "Alice-pass-1", "new_password": "Alice-pass-2"}),
    )
    .await
    .ok(200);
    assert!(
        !api.can_login(a).await,
        "the old password stops working at once"
    );
    let a = ("alice", "Alice-pass-2");
    assert!(api.can_login(a).await);
    api.put(
        &format!("/users/{}/password", bob),
        a,
        json!({"new_password": "Bob-pass-123"}),
    )
    .await
    .error(403, "FORBIDDEN");
    // An administrator sets anyone's password without the old one.
    api.put(
        &format!("/users/{}/password", bob),
        ADMIN,
        json!({"new_password": "Bob-pass-123"}),
    )
    .await
    .ok(200);
    let b = ("bob", "Bob-pass-123");
    assert!(api.can_login(b).await);

    // System administration.
    api.put(
        &format!("/users/{alice}/sysadmin"),
        a,
        json!({"sysadmin_flag": true}),
    )
    .await
    .error(403, "FORBIDDEN");
    api.put(
        &format!("/users/{alice}/sysadmin"),
        ADMIN,
        json!({"sysadmin_flag": true}),
    )
    .await
    .ok(200);
    assert_eq!(
        api.get("/users", a).await.ok(200).as_array().unwrap().len(),
        5
    );
    assert_eq!(
        api.get("/users/current", a).await.body["sysadmin_flag"],
        true
    );
    let own = api
        .put(
            &format!("/users/{alice}/sysadmin"),
            a,
            json!({"sysadmin_flag": false}),
        )
        .await
        .error(403, "FORBIDDEN");
    assert!(own.contains("another administrator"), "{own}");
    api.put(
        &format!("/users/{alice}/sysadmin"),
        ADMIN,
        json!({"sysadmin": "yes"}),
    )
    .await
    .error(400, "BAD_REQUEST");
    api.put(
        &format!("/users/{alice}/sysadmin"),
        ADMIN,
        json!({"sysadmin_flag": false}),
    )
    .await
    .ok(200);
    api.get("/users", a).await.error(403, "FORBIDDEN");

    // Disabling and deleting.
    api.put(
        &format!("/users/{bob}/disabled"),
        a,
        json!({"disabled": true}),
    )
    .await
    .error(403, "FORBIDDEN");
    api.put(
        &format!("/users/{bob}/disabled"),
        ADMIN,
        json!({"disabled": true}),
    )
    .await
    .ok(200);
    assert!(!api.can_login(b).await, "a disabled user cannot log in");
    assert_eq!(
        api.get(&format!("/users/{bob}"), ADMIN).await.body["disabled"],
        true
    );
    api.put(
        &format!("/users/{bob}/disabled"),
        ADMIN,
        json!({"disabled": false}),
    )
    .await
    .ok(200);
    assert!(api.can_login(b).await);
    api.delete(&format!("/users/{bob}"), a)
        .await
        .error(403, "FORBIDDEN");
    api.delete(&format!("/users/{bob}"), ADMIN).await.ok(200);
    assert!(!api.can_login(b).await, "a deleted user cannot log in");
    api.get(&format!("/users/{bob}"), ADMIN)
        .await
        .error(404, "NOT_FOUND");
    api.delete(&format!("/users/{bob}"), ADMIN)
        .await
        .error(404, "NOT_FOUND");
    let admin_id = api.get("/users/current", ADMIN).await.body["user_id"]
        .as_i64()
        .unwrap();
    api.delete(&format!("/users/{admin_id}"), ADMIN)
        .await
        .error(403, "FORBIDDEN");
    api.put(
        &format!("/users/{admin_id}/disabled"),
        ADMIN,
        json!({"disabled": true}),
    )
    .await
    .error(403, "FORBIDDEN");
    assert!(
        !api.b.log().contains("Alice-pass"),
        "passwords never reach the log"
    );
}

async fn projects_and_members_follow_roles(backend: Backend) {
    let api = Api::start_on(backend).await;
    let (a, b, g) = (
        ("alice", "Alice-pass-1"),
        ("bob", "Bob-pass-123"),
        ("gus", "Gus-pass-123"),
    );
    api.user("alice", a.1).await;
    let bob = api.user("bob", b.1).await;
    api.user("gus", g.1).await;

    // Any user may create a project (project_creation = everyone) and becomes its admin.
    let team = api
        .post(
            "/projects",
            a,
            json!({"project_name": "team", "metadata": {"public": "false"}}),
        )
        .await
        .created_id();
    api.post("/projects", a, json!({"project_name": "team"}))
        .await
        .error(409, "CONFLICT");
    for bad in ["Team", "a/b", "-x", ""] {
        api.post("/projects", a, json!({"project_name": bad}))
            .await
            .error(400, "BAD_REQUEST");
    }
    api.post(
        "/projects",
        a,
        json!({"project_name": "x", "metadata": {"public": "maybe"}}),
    )
    .await
    .error(400, "BAD_REQUEST");
    api.post("/projects", ANON, json!({"project_name": "anon"}))
        .await
        .error(401, "UNAUTHORIZED");
    let mine = api.get("/projects/team", a).await;
    assert_eq!(mine.ok(200)["project_id"], team);
    assert_eq!(mine.body["owner_name"], "alice");
    assert_eq!(mine.body["current_user_role_id"], 1);
    assert_eq!(mine.body["metadata"]["public"], "false");
    assert_eq!(
        api.get(&format!("/projects/{team}"), a).await.ok(200)["name"],
        "team"
    );
    let by_name = api
        .c
        .get(api.b.url("/api/v2.0/projects/team"))
        .basic_auth("alice", Some(a.1))
        .header("x-is-resource-name", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.status(), 200);

    // Visibility: private projects are invisible to outsiders.
    api.get("/projects/team", b).await.error(404, "NOT_FOUND");
    api.get("/projects/team", ANON)
        .await
        .error(401, "UNAUTHORIZED");
    api.get("/projects/nosuch", b).await.error(404, "NOT_FOUND");
    let names = |r: &Reply| -> Vec<String> {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&api.get("/projects", ANON).await), ["library"]);
    assert_eq!(names(&api.get("/projects", b).await), ["library"]);
    assert_eq!(names(&api.get("/projects", a).await), ["library", "team"]);
    assert_eq!(
        names(&api.get("/projects", ADMIN).await),
        ["library", "team"]
    );
    assert_eq!(names(&api.get("/projects?name=tea", ADMIN).await), ["team"]);
    assert_eq!(
        names(&api.get("/projects?public=true", ADMIN).await),
        ["library"]
    );
    api.get("/projects?public=maybe", ADMIN)
        .await
        .error(400, "BAD_REQUEST");
    let exists = |name: &str, who| {
        let c = api.c.clone();
        let url = api
            .b
            .url(&format!("/api/v2.0/projects?project_name={name}"));
        async move {
            let mut req = c.head(url);
            if let Some((u, p)) = who {
                req = req.basic_auth(u, Some(p));
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(exists("team", Some(b)).await, 200);
    assert_eq!(exists("nosuch", Some(b)).await, 404);
    assert_eq!(exists("team", None).await, 401);

    // Members.
    let members = format!("/projects/{team}/members");
    let bob_member = api
        .post(
            &members,
            a,
            json!({"role_id": 2, "member_user": {"username": "bob"}}),
        )
        .await
        .created_id();
    api.post(
        &members,
        a,
        json!({"role_id": 3, "member_user": {"user_id": bob}}),
    )
    .await
    .error(409, "CONFLICT");
    api.post(
        &members,
        a,
        json!({"role_id": 3, "member_user": {"username": "nobody"}}),
    )
    .await
    .error(404, "NOT_FOUND");
    api.post(
        &members,
        a,
        json!({"role_id": 9, "member_user": {"username": "gus"}}),
    )
    .await
    .error(400, "BAD_REQUEST");
    api.post(&members, a, json!({"role_id": 3}))
        .await
        .error(400, "BAD_REQUEST");
    api.post(
        &members,
        a,
        json!({"role_id": 3, "member_group": {"ldap_group_dn": "not a dn"}}),
    )
    .await
    .error(400, "BAD_REQUEST");
    api.post(
        &members,
        a,
        json!({"role_id": 3, "member_group": {"group_type": 2, "ldap_group_dn": "cn=x"}}),
    )
    .await
    .error(400, "BAD_REQUEST");
    let group = api
        .post(
            &members,
            a,
            json!({"role_id": 3, "member_group": {"group_type": 1, "ldap_group_dn": "cn=ops,ou=groups,dc=example,dc=org"}}),
        )
        .await
        .created_id();
    let gus = api
        .post(
            &members,
            a,
            json!({"role_id": 5, "member_user": {"username": "gus"}}),
        )
        .await
        .created_id();
    // A developer sees the members but may not manage them.
    let list = api.get(&members, b).await;
    assert_eq!(list.header("x-total-count"), "4");
    let entries: Vec<(String, String, String)> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["entity_name"].as_str().unwrap().into(),
                m["entity_type"].as_str().unwrap().into(),
                m["role_name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("alice".into(), "u".into(), "projectAdmin".into()),
            ("bob".into(), "u".into(), "developer".into()),
            ("gus".into(), "u".into(), "limitedGuest".into()),
            (
                "cn=ops,ou=groups,dc=example,dc=org".into(),
                "g".into(),
                "guest".into()
            ),
        ]
    );
    assert_eq!(
        api.get(&format!("{members}?entityname=bo"), b)
            .await
            .header("x-total-count"),
        "1"
    );
    let one = api.get(&format!("{members}/{group}"), b).await;
    assert_eq!(one.ok(200)["role_id"], 3);
    api.get(&format!("{members}/9999"), b)
        .await
        .error(404, "NOT_FOUND");
    api.post(
        &members,
        b,
        json!({"role_id": 2, "member_user": {"username": "gus"}}),
    )
    .await
    .error(403, "FORBIDDEN");
    // A limited guest sees the project but not its members.
    assert_eq!(
        api.get("/projects/team", g).await.ok(200)["current_user_role_id"],
        5
    );
    api.get(&members, g).await.error(403, "FORBIDDEN");
    // Roles decide registry access.
    assert_eq!(api.granted(b, "team/app").await, ["pull", "push"]);
    api.put(&format!("{members}/{bob_member}"), b, json!({"role_id": 1}))
        .await
        .error(403, "FORBIDDEN");
    api.put(&format!("{members}/{bob_member}"), a, json!({"role_id": 4}))
        .await
        .ok(200);
    assert_eq!(api.granted(b, "team/app").await, ["pull", "push", "delete"]);
    api.put(&format!("{members}/{bob_member}"), a, json!({"role_id": 0}))
        .await
        .error(400, "BAD_REQUEST");
    api.delete(&format!("{members}/{gus}"), b)
        .await
        .error(403, "FORBIDDEN");
    api.delete(&format!("{members}/{gus}"), a).await.ok(200);
    api.delete(&format!("{members}/{gus}"), a)
        .await
        .error(404, "NOT_FOUND");
    api.get("/projects/team", g).await.error(404, "NOT_FOUND");
    assert!(api.granted(g, "team/app").await.is_empty());

    // Changing the project: its admins only.
    api.put("/projects/team", b, json!({"metadata": {"public": "true"}}))
        .await
        .error(403, "FORBIDDEN");
    api.put("/projects/team", a, json!({"metadata": {"public": "true"}}))
        .await
        .ok(200);
    assert_eq!(
        names(&api.get("/projects", ANON).await),
        ["library", "team"]
    );
    assert_eq!(api.granted(g, "team/app").await, ["pull"]);
    api.put("/projects/team", g, json!({"public": false}))
        .await
        .error(403, "FORBIDDEN");
    api.put("/projects/team", ANON, json!({"public": false}))
        .await
        .error(401, "UNAUTHORIZED");

    // Deleting: not while it has repositories.
    api.push(b, "team/app", "v1", "one").await;
    assert_eq!(api.get("/projects/team", a).await.body["repo_count"], 1);
    api.delete("/projects/team", b)
        .await
        .error(403, "FORBIDDEN");
    let full = api
        .delete("/projects/team", a)
        .await
        .error(412, "PRECONDITION");
    assert!(full.contains("1 repositories"), "{full}");
    api.delete("/projects/team/repositories/app", b)
        .await
        .ok(200);
    api.delete("/projects/team", a).await.ok(200);
    api.get("/projects/team", a).await.error(404, "NOT_FOUND");
    assert!(api.granted(b, "team/app").await.is_empty());
    let denied = api
        .c
        .put(api.b.url("/v2/team/app/manifests/v2"))
        .basic_auth("bob", Some(b.1))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    assert!(
        denied
            .text()
            .await
            .unwrap()
            .contains("project team does not exist")
    );
}

#[tokio::test]
async fn project_creation_can_be_limited_to_administrators() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("berth.toml");
    std::fs::write(&config, "[auth]\nproject_creation = \"adminonly\"\n").unwrap();
    let b = Berth::start_in(
        dir.path(),
        &[
            ("BERTH_AUTH_ENABLED", "true"),
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_CONFIG", config.to_str().unwrap()),
        ],
    )
    .await;
    let api = Api::with(b);
    api.user("alice", "Alice-pass-1").await;
    let refused = api
        .post(
            "/projects",
            ("alice", "Alice-pass-1"),
            json!({"project_name": "mine"}),
        )
        .await
        .error(403, "FORBIDDEN");
    assert!(refused.contains("adminonly"), "{refused}");
    assert_eq!(
        api.get("/systeminfo", ANON).await.body["project_creation_restriction"],
        "adminonly"
    );
    api.post(
        "/projects",
        ADMIN,
        json!({"project_name": "mine", "public": true}),
    )
    .await
    .created_id();
    assert_eq!(
        api.get("/projects/mine", ANON).await.ok(200)["public"],
        true
    );
}

fn access(actions: &[&str]) -> Vec<Value> {
    actions
        .iter()
        .map(|a| json!({"resource": "repository", "action": a}))
        .collect()
}

async fn robot_accounts_show_their_secret_once_and_obey_their_permissions(backend: Backend) {
    let api = Api::start_on(backend).await;
    let (a, b) = (("alice", "Alice-pass-1"), ("bob", "Bob-pass-123"));
    api.user("alice", a.1).await;
    api.user("bob", b.1).await;
    let team = api
        .post("/projects", a, json!({"project_name": "team"}))
        .await
        .created_id();
    api.post(
        &format!("/projects/{team}/members"),
        a,
        json!({"role_id": 2, "member_user": {"username": "bob"}}),
    )
    .await
    .created_id();

    // A system robot (administrators only) with permissions in two projects.
    let system = json!({
        "name": "ci", "level": "system", "duration": -1, "description": "CI",
        "permissions": [
            {"kind": "project", "namespace": "team", "access": access(&["pull", "push"])},
            {"kind": "project", "namespace": "library", "access": access(&["pull"])},
        ]
    });
    api.post("/robots", a, system.clone())
        .await
        .error(403, "FORBIDDEN");
    let created = api.post("/robots", ADMIN, system.clone()).await;
    let ci = created.created_id();
    assert_eq!(created.body["name"], "robot$ci");
    assert_eq!(created.body["expires_at"], -1);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    let robot = ("robot$ci", secret.as_str());
    assert_eq!(api.granted(robot, "team/app").await, ["pull", "push"]);
    assert_eq!(api.granted(robot, "library/x").await, ["pull"]);
    api.post("/robots", ADMIN, system)
        .await
        .error(409, "CONFLICT");
    let shown = api.get(&format!("/robots/{ci}"), ADMIN).await;
    assert_eq!(shown.ok(200)["level"], "system");
    assert!(
        shown.body.get("secret").is_none(),
        "the secret is shown once"
    );
    assert!(!shown.body.to_string().contains(&secret));
    assert_eq!(shown.body["permissions"][0]["namespace"], "team");

    // Bad requests.
    for bad in [
        json!({"name": "x", "level": "galaxy", "permissions": []}),
        json!({"name": "Bad Name", "level": "system", "permissions": []}),
        json!({"name": "x", "level": "system", "duration": -5, "permissions": []}),
        json!({"name": "x", "level": "system", "permissions": [{"kind": "project", "namespace": "team", "access": access(&["push"])}]}),
        json!({"name": "x", "level": "system", "permissions": [{"kind": "project", "namespace": "nosuch", "access": access(&["pull"])}]}),
        json!({"name": "x", "level": "system", "permissions": [{"kind": "project", "namespace": "team", "access": [{"resource": "scan", "action": "create"}]}]}),
        json!({"name": "x", "level": "project", "permissions": []}),
        json!({"name": "x", "level": "project", "permissions": [{"kind": "project", "namespace": "*", "access": access(&["pull"])}]}),
        json!({"level": "system"}),
    ] {
        api.post("/robots", ADMIN, bad.clone())
            .await
            .error(400, "BAD_REQUEST");
    }

    // A project robot: created by the project's admin, named after the project.
    let project_robot = json!({
        "name": "deploy", "level": "project", "duration": 7,
        "permissions": [{"kind": "project", "namespace": "team", "access": access(&["pull"])}]
    });
    api.post("/robots", b, project_robot.clone())
        .await
        .error(403, "FORBIDDEN");
    let created = api.post("/robots", a, project_robot).await;
    let deploy = created.created_id();
    assert_eq!(created.body["name"], "robot$team+deploy");
    let in_a_week = created.body["expires_at"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((in_a_week - now - 7 * 86_400).abs() < 60);
    let deploy_secret = created.body["secret"].as_str().unwrap().to_owned();
    let d = ("robot$team+deploy", deploy_secret.as_str());
    assert_eq!(api.granted(d, "team/app").await, ["pull"]);
    assert!(api.granted(d, "library/app").await.is_empty());

    // Listing: administrators everything; members their project's robots.
    let all = api.get("/robots", ADMIN).await;
    assert_eq!(all.header("x-total-count"), "2");
    let query = format!("/robots?q=Level%3Dproject,ProjectID%3D{team}");
    let listed = api.get(&query, b).await;
    assert_eq!(listed.ok(200)[0]["name"], "robot$team+deploy");
    assert_eq!(listed.header("x-total-count"), "1");
    api.get("/robots", b).await.error(403, "FORBIDDEN");
    api.get("/robots?q=ProjectID%3Dabc", ADMIN)
        .await
        .error(400, "BAD_REQUEST");
    api.get(&format!("/robots/{deploy}"), b).await.ok(200);
    api.get(&format!("/robots/{ci}"), a)
        .await
        .error(403, "FORBIDDEN");
    api.get("/robots/9999", ADMIN).await.error(404, "NOT_FOUND");
    api.get("/robots/x", ADMIN).await.error(400, "BAD_REQUEST");
    api.get("/robots", ANON).await.error(401, "UNAUTHORIZED");

    // Robots use the management API within their permissions only.
    let r = api.get("/projects", robot).await;
    assert_eq!(r.ok(200).as_array().unwrap().len(), 2);
    api.get("/users", robot).await.error(403, "FORBIDDEN");
    api.get("/users/current", robot)
        .await
        .error(403, "FORBIDDEN");
    api.post("/projects", robot, json!({"project_name": "robots"}))
        .await
        .error(403, "FORBIDDEN");
    api.get("/robots", robot).await.error(403, "FORBIDDEN");

    // Refreshing the secret: the old one stops working.
    let path = format!("/robots/{deploy}");
    api.send(Method::PATCH, &path, b, Some(json!({})))
        .await
        .error(403, "FORBIDDEN");
    let refreshed = api.send(Method::PATCH, &path, a, Some(json!({}))).await;
    let new_secret = refreshed.ok(200)["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, deploy_secret);
    assert!(!api.can_login(d).await);
    let d = ("robot$team+deploy", new_secret.as_str());
    assert!(api.can_login(d).await);
    api.send(Method::PATCH, &path, a, Some(json!({"secret": "weak"})))
        .await
        .error(400, "BAD_REQUEST");
    api.send(
        Method::PATCH,
        &path,
        a,
        Some(json!({"secret": "Chosen-secret-1"})),
    )
    .await
    .ok(200);
    let d = ("robot$team+deploy", "Chosen-secret-1");
    assert!(api.can_login(d).await);

    // Changing it: permissions, disable; a project robot stays in its project.
    api.put(&path, a, json!({"permissions": [{"kind": "project", "namespace": "team", "access": access(&["pull", "push", "delete"])}]}))
        .await
        .ok(200);
    assert_eq!(api.granted(d, "team/app").await, ["pull", "push", "delete"]);
    api.put(&path, a, json!({"permissions": [{"kind": "project", "namespace": "library", "access": access(&["pull"])}]}))
        .await
        .error(400, "BAD_REQUEST");
    api.put(&path, b, json!({"disable": true}))
        .await
        .error(403, "FORBIDDEN");
    api.put(&path, a, json!({"disable": true, "description": "off"}))
        .await
        .ok(200);
    assert!(!api.can_login(d).await, "a disabled robot cannot log in");
    let shown = api.get(&path, a).await;
    assert_eq!(
        (&shown.body["disable"], &shown.body["description"]),
        (&json!(true), &json!("off"))
    );
    api.put(&path, a, json!({"disable": false, "duration": -1}))
        .await
        .ok(200);
    assert!(api.can_login(d).await);
    assert_eq!(api.get(&path, a).await.body["expires_at"], -1);
    api.put(&path, a, json!({"duration": -3}))
        .await
        .error(400, "BAD_REQUEST");

    // Deleting.
    api.delete(&path, b).await.error(403, "FORBIDDEN");
    api.delete(&path, a).await.ok(200);
    assert!(!api.can_login(d).await);
    api.get(&path, a).await.error(404, "NOT_FOUND");
    api.delete(&format!("/robots/{ci}"), ADMIN).await.ok(200);
    assert!(!api.can_login(robot).await);
}

async fn repositories_artifacts_and_tags(backend: Backend) {
    let api = Api::start_on(backend).await;
    let (m, d, g) = (
        ("mia", "Mia-pass-123"),
        ("dev", "Dev-pass-123"),
        ("gia", "Gia-pass-123"),
    );
    for (name, password) in [m, d, g] {
        api.user(name, password).await;
    }
    let team = api
        .post("/projects", ADMIN, json!({"project_name": "team"}))
        .await
        .created_id();
    for (name, role) in [("mia", 4), ("dev", 2), ("gia", 3)] {
        api.post(
            &format!("/projects/{team}/members"),
            ADMIN,
            json!({"role_id": role, "member_user": {"username": name}}),
        )
        .await
        .created_id();
    }
    let v1 = api.push(d, "team/app/web", "v1", "one").await;
    let v2 = api.push(d, "team/app/web", "v2", "two").await;
    api.push(d, "team/db", "latest", "three").await;
    api.push(ADMIN, "library/hello", "latest", "four").await;

    // Repositories.
    let repos = api.get("/projects/team/repositories", g).await;
    let names: Vec<&str> = repos
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team/app/web", "team/db"]);
    assert_eq!(repos.body[0]["artifact_count"], 2);
    assert_eq!(repos.body[0]["project_id"], team);
    let filtered = api.get("/projects/team/repositories?q=name%3D~db", g).await;
    assert_eq!(filtered.header("x-total-count"), "1");
    let web = "/projects/team/repositories/app%252Fweb";
    assert_eq!(api.get(web, g).await.ok(200)["name"], "team/app/web");
    assert_eq!(
        api.get("/projects/team/repositories/app%2Fweb", g)
            .await
            .ok(200)["name"],
        "team/app/web"
    );
    api.get("/projects/team/repositories/nosuch", g)
        .await
        .error(404, "NOT_FOUND");
    api.get("/projects/team/repositories/Bad%2520Name", g)
        .await
        .error(400, "BAD_REQUEST");
    api.get("/projects/team/repositories", ANON)
        .await
        .error(401, "UNAUTHORIZED");
    for (who, total) in [(ADMIN, "3"), (g, "3"), (ANON, "1")] {
        let r = api.get("/repositories", who).await;
        assert_eq!(
            r.header("x-total-count"),
            total,
            "anonymous callers see public projects only"
        );
    }

    // Outsiders do not see a private project's content; a robot sees what it may pull.
    api.user("out", "Out-pass-123").await;
    let out = ("out", "Out-pass-123");
    api.get(web, out).await.error(404, "NOT_FOUND");
    api.get(&format!("{web}/artifacts"), out)
        .await
        .error(404, "NOT_FOUND");
    api.get(&format!("{web}/artifacts/v1"), out)
        .await
        .error(404, "NOT_FOUND");
    assert_eq!(
        api.get("/repositories", out).await.header("x-total-count"),
        "1"
    );
    let (robot, secret) = support::api_robot(
        &api.b,
        json!({"name": "reader", "level": "system", "permissions": [
            {"kind": "project", "namespace": "team", "access": access(&["pull"])}]}),
    )
    .await;
    let r = (robot.as_str(), secret.as_str());
    assert_eq!(
        api.get(&format!("{web}/artifacts"), r)
            .await
            .header("x-total-count"),
        "2"
    );
    assert_eq!(
        api.get("/repositories", r).await.header("x-total-count"),
        "3"
    );
    api.delete(&format!("{web}/artifacts/v1"), r)
        .await
        .error(403, "FORBIDDEN");

    // Artifacts, newest first, with tags and sizes.
    let artifacts = api.get(&format!("{web}/artifacts"), g).await;
    let list = artifacts.ok(200).as_array().unwrap();
    assert_eq!(artifacts.header("x-total-count"), "2");
    assert_eq!(list.len(), 2);
    let digests: Vec<&str> = list.iter().map(|a| a["digest"].as_str().unwrap()).collect();
    assert!(digests.contains(&v1.as_str()) && digests.contains(&v2.as_str()));
    let first = api.get(&format!("{web}/artifacts/v1"), g).await;
    assert_eq!(first.ok(200)["digest"], v1);
    assert_eq!(first.body["type"], "IMAGE");
    assert_eq!(
        first.body["manifest_media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(first.body["tags"][0]["name"], "v1");
    assert!(
        first.body["size"].as_u64().unwrap() > 300,
        "manifest + config + layer"
    );
    assert_eq!(
        api.get(&format!("{web}/artifacts/{v1}"), g).await.ok(200)["digest"],
        v1
    );
    let by_tag = api.get(&format!("{web}/artifacts?q=tags%3Dv2"), g).await;
    assert_eq!(by_tag.ok(200)[0]["digest"], v2);
    assert_eq!(by_tag.header("x-total-count"), "1");
    api.get(&format!("{web}/artifacts/nosuch"), g)
        .await
        .error(404, "NOT_FOUND");
    api.get(&format!("{web}/artifacts/sha256:abc"), g)
        .await
        .error(400, "BAD_REQUEST");
    api.get(&format!("{web}/artifacts?q=size%3D1"), g)
        .await
        .error(400, "BAD_REQUEST");

    // Tags: developers add, maintainers delete; a tag is never moved silently.
    let tags = format!("{web}/artifacts/{v1}/tags");
    api.post(&tags, g, json!({"name": "stable"}))
        .await
        .error(403, "FORBIDDEN");
    api.post(&tags, d, json!({"name": "stable"})).await.ok(201);
    let pulled = api
        .c
        .get(api.b.url("/v2/team/app/web/manifests/stable"))
        .basic_auth(g.0, Some(g.1))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.headers()["docker-content-digest"], v1.as_str());
    api.post(&tags, d, json!({"name": "stable"}))
        .await
        .error(409, "CONFLICT");
    let moved = api
        .post(&tags, d, json!({"name": "v2"}))
        .await
        .error(409, "CONFLICT");
    assert!(moved.contains(&v2), "{moved}");
    api.post(&tags, d, json!({"name": "-bad"}))
        .await
        .error(400, "BAD_REQUEST");
    let listed = api.get(&tags, g).await;
    assert_eq!(listed.header("x-total-count"), "2");
    assert_eq!(listed.body[0]["name"], "stable");
    api.delete(&format!("{tags}/stable"), d)
        .await
        .error(403, "FORBIDDEN");
    api.delete(&format!("{tags}/v2"), m)
        .await
        .error(404, "NOT_FOUND");
    api.delete(&format!("{tags}/stable"), m).await.ok(200);
    assert_eq!(api.get(&tags, g).await.header("x-total-count"), "1");

    // Deleting artifacts: maintainers; an index's children only after the index.
    let c = reqwest::Client::new();
    let manifest = c
        .get(api.b.url("/v2/team/app/web/manifests/v2"))
        .basic_auth(m.0, Some(m.1))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let child = support::sha256(&manifest);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{child}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        manifest.len()
    );
    let r = c
        .put(api.b.url("/v2/team/app/web/manifests/multi"))
        .basic_auth(d.0, Some(d.1))
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let listed = api.get(&format!("{web}/artifacts"), g).await;
    assert_eq!(
        listed.header("x-total-count"),
        "2",
        "the child is shown under its index"
    );
    let multi = api.get(&format!("{web}/artifacts/multi"), g).await;
    assert_eq!(
        multi.ok(200)["references"][0]["child_digest"],
        child.to_string()
    );
    api.delete(&format!("{web}/artifacts/{v2}"), d)
        .await
        .error(403, "FORBIDDEN");
    let refused = api
        .delete(&format!("{web}/artifacts/{v2}"), m)
        .await
        .error(412, "PRECONDITION");
    assert!(refused.contains("index"), "{refused}");
    api.delete(&format!("{web}/artifacts/multi"), m)
        .await
        .ok(200);
    api.delete(&format!("{web}/artifacts/{v2}"), m)
        .await
        .ok(200);
    let gone = c
        .get(api.b.url(&format!("/v2/team/app/web/manifests/{v2}")))
        .basic_auth(m.0, Some(m.1))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    api.get(&format!("{web}/artifacts/{v2}"), g)
        .await
        .error(404, "NOT_FOUND");

    // Deleting a repository: maintainers.
    api.delete(web, d).await.error(403, "FORBIDDEN");
    api.delete(web, m).await.ok(200);
    api.get(web, g).await.error(404, "NOT_FOUND");
    api.delete(web, m).await.error(404, "NOT_FOUND");
    let tags_list = c
        .get(api.b.url("/v2/team/app/web/tags/list"))
        .basic_auth(m.0, Some(m.1))
        .send()
        .await
        .unwrap();
    assert_eq!(tags_list.status(), 404);
    assert_eq!(api.get("/projects/team", g).await.body["repo_count"], 1);
}
