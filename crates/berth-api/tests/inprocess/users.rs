//! Users: the password policy, reserved names, and administrators' own accounts.

use axum::http::StatusCode;
use serde_json::json;

use crate::client::{ADMIN, ADMIN_PASSWORD, API, TestApp};

/// The names of every user, as the administrator lists them.
async fn usernames(app: &TestApp) -> Vec<String> {
    let reply = app
        .as_admin()
        .get(&format!("{API}/users?page_size=100"))
        .await;
    reply.expect(StatusCode::OK);
    let mut names: Vec<String> = reply
        .body
        .as_array()
        .expect("a list of users")
        .iter()
        .map(|u| u["username"].as_str().expect("a username").to_owned())
        .collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn weak_passwords_are_refused_with_the_policy() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    let policy =
        "a password needs at least one upper-case letter, one lower-case letter and one digit";
    for (password, expected) in [
        ("password", policy.to_owned()),
        ("PASSWORD1", policy.to_owned()),
        ("Password", policy.to_owned()),
        (
            "Sh0rt",
            "a password must have 8 to 128 characters, not 5".to_owned(),
        ),
        (
            "Aa1",
            "a password must have 8 to 128 characters, not 3".to_owned(),
        ),
    ] {
        let message = admin
            .post_json(
                &format!("{API}/users"),
                &json!({"username": "weak", "password": password}),
            )
            .await
            .harbor_error(StatusCode::BAD_REQUEST);
        assert_eq!(message, expected, "{password}");
    }
    assert_eq!(usernames(&app).await, [ADMIN], "no user was created");
    // The same user with a password that meets the policy, which then logs in.
    admin.create_user("weak", "Strong-pass-1").await;
    assert_eq!(
        app.as_user("weak", "Strong-pass-1").v2_login().await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn names_reserved_for_robots_and_credentials_are_refused() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    for (name, expected) in [
        (
            "robot$ci",
            "usernames starting with robot$ are reserved for robot accounts",
        ),
        (
            "robot$",
            "usernames starting with robot$ are reserved for robot accounts",
        ),
        ("a:b", "a username cannot contain ':'"),
        ("a b", "a username cannot contain ' '"),
        ("", "a username has 1 to 255 bytes"),
    ] {
        let message = admin
            .post_json(
                &format!("{API}/users"),
                &json!({"username": name, "password": "Good-pass-1"}),
            )
            .await
            .harbor_error(StatusCode::BAD_REQUEST);
        assert_eq!(message, expected, "{name:?}");
    }
    assert_eq!(usernames(&app).await, [ADMIN]);
    // `robot` without the `$` is an ordinary name.
    admin.create_user("robot", "Good-pass-1").await;
    assert_eq!(usernames(&app).await, [ADMIN, "robot"]);
}

#[tokio::test]
async fn an_administrator_may_not_disable_demote_or_delete_their_own_account() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    let me = admin.get(&format!("{API}/users/current")).await;
    me.expect(StatusCode::OK);
    let admin_id = me.body["user_id"].as_i64().expect("a user id");
    let refusals = [
        (
            admin
                .put_json(
                    &format!("{API}/users/{admin_id}/disabled"),
                    &json!({"disabled": true}),
                )
                .await,
            "you may not disable your own account; ask another administrator",
        ),
        (
            admin
                .put_json(
                    &format!("{API}/users/{admin_id}/sysadmin"),
                    &json!({"sysadmin_flag": false}),
                )
                .await,
            "you may not change the administrator flag of your own account; ask another administrator",
        ),
        (
            admin.delete(&format!("{API}/users/{admin_id}")).await,
            "you may not delete your own account; ask another administrator",
        ),
    ];
    for (reply, expected) in refusals {
        assert_eq!(reply.harbor_error(StatusCode::FORBIDDEN), expected);
    }
    // Nothing changed: the account still logs in, as an enabled administrator.
    let me = app
        .as_user(ADMIN, ADMIN_PASSWORD)
        .get(&format!("{API}/users/current"))
        .await;
    me.expect(StatusCode::OK);
    assert_eq!(
        (&me.body["disabled"], &me.body["sysadmin_flag"]),
        (&json!(false), &json!(true))
    );
    // The same requests on another account succeed.
    let bob = admin.create_user("bob", "Bob-pass-123").await;
    admin
        .put_json(
            &format!("{API}/users/{bob}/disabled"),
            &json!({"disabled": true}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        app.as_user("bob", "Bob-pass-123").v2_login().await,
        StatusCode::UNAUTHORIZED,
        "a disabled user cannot log in"
    );
    admin
        .delete(&format!("{API}/users/{bob}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(usernames(&app).await, [ADMIN]);
}
