//! Robot accounts: permissions, project robots, lifetimes and secret refreshes.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::client::{API, EXTERNAL_URL, SERVICE, TestApp, access};

/// How many robot accounts the administrator sees.
async fn robot_count(app: &TestApp) -> String {
    let reply = app.as_admin().get(&format!("{API}/robots")).await;
    reply.expect(StatusCode::OK);
    reply.header("x-total-count").to_owned()
}

/// A system robot with `actions` in `library`.
fn system_robot(name: &str, actions: &[&str], duration: i64) -> Value {
    json!({
        "name": name, "level": "system", "duration": duration,
        "permissions": [{"kind": "project", "namespace": "library", "access": access(actions)}],
    })
}

#[tokio::test]
async fn a_robot_that_may_push_must_also_pull() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    let expected = "push needs pull as well in library (clients check what the registry has \
                    before pushing)";
    for actions in [vec!["push"], vec!["push", "delete"]] {
        let message = admin
            .post_json(&format!("{API}/robots"), &system_robot("ci", &actions, -1))
            .await
            .harbor_error(StatusCode::BAD_REQUEST);
        assert_eq!(message, expected, "{actions:?}");
    }
    // `tag:create` is push too.
    let tag_create = json!({
        "name": "ci", "level": "system",
        "permissions": [{"kind": "project", "namespace": "library",
                         "access": [{"resource": "tag", "action": "create"}]}],
    });
    let message = admin
        .post_json(&format!("{API}/robots"), &tag_create)
        .await
        .harbor_error(StatusCode::BAD_REQUEST);
    assert_eq!(message, expected);
    assert_eq!(robot_count(&app).await, "0", "no robot was created");
    // With pull it is accepted.
    let robot = admin
        .create_robot(&system_robot("ci", &["push", "pull"], -1))
        .await;
    assert_eq!(robot.name, "robot$ci");
    assert_eq!(robot_count(&app).await, "1");
}

#[tokio::test]
async fn a_project_robot_has_permissions_in_exactly_one_project() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    admin.create_user("alice", "Alice-pass-1").await;
    admin.create_user("bob", "Bob-pass-123").await;
    let alice = app.as_user("alice", "Alice-pass-1");
    let team = alice.create_project("team").await;
    alice.create_project("other").await;
    alice.add_member(team, "bob", 2).await;
    let robot = |permissions: Value| json!({"name": "deploy", "level": "project", "duration": 7, "permissions": permissions});
    let pull = |namespace: &str| json!({"kind": "project", "namespace": namespace, "access": access(&["pull"])});
    let exactly_one = "a project robot has permissions in exactly one project";
    for (permissions, expected) in [
        (json!([pull("team"), pull("other")]), exactly_one),
        (json!([]), exactly_one),
        (
            json!([pull("*")]),
            "only system robots may have permissions in every project (*)",
        ),
        (json!([pull("nosuch")]), "project nosuch does not exist"),
    ] {
        let message = alice
            .post_json(&format!("{API}/robots"), &robot(permissions.clone()))
            .await
            .harbor_error(StatusCode::BAD_REQUEST);
        assert_eq!(message, expected, "{permissions}");
    }
    // A developer may not create the project's robots.
    let message = app
        .as_user("bob", "Bob-pass-123")
        .post_json(&format!("{API}/robots"), &robot(json!([pull("team")])))
        .await
        .harbor_error(StatusCode::FORBIDDEN);
    assert_eq!(
        message,
        "a developer in this project may not manage the robot accounts of project team"
    );
    assert_eq!(robot_count(&app).await, "0", "no robot was created");
    // One project, by its admin: accepted, and named after the project.
    let created = alice.create_robot(&robot(json!([pull("team")]))).await;
    assert_eq!(created.name, "robot$team+deploy");
    assert_eq!(robot_count(&app).await, "1");
}

#[tokio::test]
async fn robot_durations_outside_their_range_are_refused() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    for duration in [-5, -2, 36_501] {
        let message = admin
            .post_json(
                &format!("{API}/robots"),
                &system_robot("ci", &["pull"], duration),
            )
            .await
            .harbor_error(StatusCode::BAD_REQUEST);
        assert_eq!(
            message,
            format!("duration {duration} is not a number of days from 1 to 36500, or -1 for never")
        );
    }
    assert_eq!(robot_count(&app).await, "0", "no robot was created");
    // The longest lifetime is accepted; changing it follows the same rule.
    let robot = admin
        .create_robot(&system_robot("ci", &["pull"], 36_500))
        .await;
    let path = format!("{API}/robots/{}", robot.id);
    let message = admin
        .put_json(&path, &json!({"duration": 36_501}))
        .await
        .harbor_error(StatusCode::BAD_REQUEST);
    assert_eq!(
        message,
        "duration 36501 is not a number of days from 1 to 36500, or -1 for never"
    );
    let shown = admin.get(&path).await;
    shown.expect(StatusCode::OK);
    assert_eq!(shown.body["duration"], 36_500, "the refused change left it");
    admin
        .put_json(&path, &json!({"duration": -1}))
        .await
        .expect(StatusCode::OK);
    let shown = admin.get(&path).await;
    shown.expect(StatusCode::OK);
    assert_eq!(
        (&shown.body["duration"], &shown.body["expires_at"]),
        (&json!(-1), &json!(-1))
    );
}

#[tokio::test]
async fn a_refreshed_robot_secret_replaces_the_old_one_at_once() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    admin.create_user("alice", "Alice-pass-1").await;
    let robot = admin.create_robot(&system_robot("ci", &["pull"], -1)).await;
    assert_eq!(robot.secret.len(), 32);
    let old = app.as_user(&robot.name, &robot.secret);
    // The old secret works (and is now in the credential cache).
    assert_eq!(old.v2_login().await, StatusCode::OK);
    old.get(&format!("{API}/projects"))
        .await
        .expect(StatusCode::OK);

    let path = format!("{API}/robots/{}", robot.id);
    let message = app
        .as_user("alice", "Alice-pass-1")
        .patch_json(&path, &json!({}))
        .await
        .harbor_error(StatusCode::FORBIDDEN);
    assert_eq!(
        message,
        "only system administrators may see and manage system robot accounts"
    );
    let refreshed = admin.patch_json(&path, &json!({})).await;
    refreshed.expect(StatusCode::OK);
    let secret = refreshed.body["secret"]
        .as_str()
        .expect("the new secret")
        .to_owned();
    assert_eq!(secret.len(), 32);
    assert_ne!(secret, robot.secret);

    // The new secret authenticates, with Basic, on /v2 and on the management API.
    let new = app.as_user(&robot.name, &secret);
    assert_eq!(new.v2_login().await, StatusCode::OK);
    new.get(&format!("{API}/projects"))
        .await
        .expect(StatusCode::OK);
    // The old one no longer does, anywhere.
    let refused = old.get("/v2/").await;
    assert_eq!(
        refused.oci_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        "invalid username or password"
    );
    assert_eq!(
        refused.header("www-authenticate"),
        format!("Bearer realm=\"{EXTERNAL_URL}/service/token\",service=\"{SERVICE}\"")
    );
    assert_eq!(
        old.get(&format!("{API}/projects"))
            .await
            .harbor_error(StatusCode::UNAUTHORIZED),
        "invalid username or password"
    );

    // A chosen secret must meet the password policy.
    let message = admin
        .patch_json(&path, &json!({"secret": "weak"}))
        .await
        .harbor_error(StatusCode::BAD_REQUEST);
    assert_eq!(message, "a password must have 8 to 128 characters, not 4");
    assert_eq!(new.v2_login().await, StatusCode::OK, "the refusal kept it");
    let chosen = admin
        .patch_json(&path, &json!({"secret": "Chosen-secret-1"}))
        .await;
    chosen.expect(StatusCode::OK);
    assert_eq!(chosen.body["secret"], "Chosen-secret-1");
    assert_eq!(
        app.as_user(&robot.name, "Chosen-secret-1").v2_login().await,
        StatusCode::OK
    );
    assert_eq!(new.v2_login().await, StatusCode::UNAUTHORIZED);
}
