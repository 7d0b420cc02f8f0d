//! Projects and their members, by role, and `auth.project_creation`.

use serde_json::json;

use crate::support::api::{ADMIN, ANON, Api, Backend, Reply, on_both_databases};
use crate::support::{ADMIN_PASSWORD, Berth};

on_both_databases!(projects_and_members_follow_roles);

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
