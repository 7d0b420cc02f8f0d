//! Robot accounts: their secret, shown once, and their permissions.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::api::{ADMIN, ANON, Api, Backend, on_both_databases};

on_both_databases!(robot_accounts_show_their_secret_once_and_obey_their_permissions);

/// Repository permissions with these actions (also used by `artifacts`).
pub(crate) fn access(actions: &[&str]) -> Vec<Value> {
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
    let system_only = api.get("/robots?q=Level%3Dsystem", ADMIN).await;
    assert_eq!(system_only.ok(200)[0]["name"], "robot$ci");
    assert_eq!(system_only.header("x-total-count"), "1");
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
