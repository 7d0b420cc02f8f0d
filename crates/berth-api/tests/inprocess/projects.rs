//! Creating projects: the naming rule and duplicates.

use axum::http::StatusCode;
use serde_json::json;

use crate::client::{API, TestApp};

/// The rule every refusal of a project name states.
const NAME_RULE: &str =
    "is invalid: use 1 to 255 lower-case letters and digits, separated by single '.', '_' or '-'";

/// The names of the projects the administrator sees, sorted.
async fn project_names(app: &TestApp) -> Vec<String> {
    let reply = app
        .as_admin()
        .get(&format!("{API}/projects?page_size=100"))
        .await;
    reply.expect(StatusCode::OK);
    let mut names: Vec<String> = reply
        .body
        .as_array()
        .expect("a list of projects")
        .iter()
        .map(|p| p["name"].as_str().expect("a project name").to_owned())
        .collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn project_names_that_break_the_rule_are_refused_with_the_rule() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    let too_long = "a".repeat(256);
    for bad in ["Team", "a--b", too_long.as_str(), "-x", "x-", "a/b", ""] {
        let message = admin
            .post_json(&format!("{API}/projects"), &json!({"project_name": bad}))
            .await
            .harbor_error(StatusCode::BAD_REQUEST);
        assert!(
            message.starts_with(&format!("project name {bad:?} {NAME_RULE}")),
            "{bad:?}: {message}"
        );
    }
    assert_eq!(project_names(&app).await, ["library"], "none was created");
    // The longest name the rule allows is accepted.
    let longest = "a".repeat(255);
    admin.create_project(&longest).await;
    assert_eq!(project_names(&app).await, [longest.as_str(), "library"]);
}

#[tokio::test]
async fn a_project_name_is_taken_once() {
    let app = TestApp::start().await;
    app.as_admin().create_user("alice", "Alice-pass-1").await;
    let alice = app.as_user("alice", "Alice-pass-1");
    let team = alice.create_project("team").await;
    for who in [&alice, &app.as_admin()] {
        let message = who
            .post_json(&format!("{API}/projects"), &json!({"project_name": "team"}))
            .await
            .harbor_error(StatusCode::CONFLICT);
        assert_eq!(message, "project team exists already");
    }
    // The first project is untouched.
    let shown = alice.get(&format!("{API}/projects/team")).await;
    shown.expect(StatusCode::OK);
    assert_eq!(shown.body["project_id"], team);
    assert_eq!(shown.body["owner_name"], "alice");
    assert_eq!(project_names(&app).await, ["library", "team"]);
}

#[tokio::test]
async fn anonymous_callers_may_not_create_projects() {
    let app = TestApp::start().await;
    let message = app
        .anonymous()
        .post_json(&format!("{API}/projects"), &json!({"project_name": "mine"}))
        .await
        .harbor_error(StatusCode::UNAUTHORIZED);
    assert!(message.starts_with("authentication required"), "{message}");
    assert_eq!(project_names(&app).await, ["library"]);
}
