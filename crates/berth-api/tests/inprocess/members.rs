//! Project members: directory groups need a distinguished name; roles and users must exist.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::client::{API, Client, TestApp};

/// The (name, type, role) of every member of `project`.
async fn members(who: &Client<'_>, project: i64) -> Vec<(String, String, String)> {
    let reply = who.get(&format!("{API}/projects/{project}/members")).await;
    reply.expect(StatusCode::OK);
    reply
        .body
        .as_array()
        .expect("a list of members")
        .iter()
        .map(|m| {
            let text = |key: &str| m[key].as_str().expect("a member field").to_owned();
            (text("entity_name"), text("entity_type"), text("role_name"))
        })
        .collect()
}

fn member(name: &str, kind: &str, role: &str) -> (String, String, String) {
    (name.into(), kind.into(), role.into())
}

#[tokio::test]
async fn a_group_member_needs_a_distinguished_name() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    let team = admin.create_project("team").await;
    let path = format!("{API}/projects/{team}/members");
    let refusals: [(Value, &str); 5] = [
        (
            json!({"role_id": 3, "member_group": {"ldap_group_dn": "not a dn"}}),
            "ldap_group_dn \"not a dn\" is not a distinguished name",
        ),
        (
            json!({"role_id": 3, "member_group": {"group_type": 1, "ldap_group_dn": "  "}}),
            "the group needs a distinguished name",
        ),
        (
            json!({"role_id": 3, "member_group": {"group_type": 1}}),
            "member_group needs ldap_group_dn",
        ),
        (
            json!({"role_id": 3, "member_group": {"group_type": 2, "ldap_group_dn": "cn=ops,dc=example,dc=org"}}),
            "only LDAP groups (group_type 1) can be members on this registry",
        ),
        (
            json!({"role_id": 3, "member_user": {"username": "admin"}, "member_group": {"ldap_group_dn": "cn=ops,dc=example,dc=org"}}),
            "give exactly one of member_user and member_group",
        ),
    ];
    for (body, expected) in refusals {
        let message = admin
            .post_json(&path, &body)
            .await
            .harbor_error(StatusCode::BAD_REQUEST);
        assert_eq!(message, expected, "{body}");
    }
    assert_eq!(
        members(&admin, team).await,
        [member("admin", "u", "projectAdmin")],
        "no group was added"
    );
    // A distinguished name is accepted.
    admin
        .post_json(
            &path,
            &json!({"role_id": 3, "member_group": {"group_type": 1, "ldap_group_dn": "cn=ops,ou=groups,dc=example,dc=org"}}),
        )
        .await
        .created_id(&format!("projects/{team}/members"));
    assert_eq!(
        members(&admin, team).await,
        [
            member("admin", "u", "projectAdmin"),
            member("cn=ops,ou=groups,dc=example,dc=org", "g", "guest"),
        ]
    );
}

#[tokio::test]
async fn a_member_needs_a_known_role_and_a_known_user() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    admin.create_user("alice", "Alice-pass-1").await;
    admin.create_user("bob", "Bob-pass-123").await;
    let alice = app.as_user("alice", "Alice-pass-1");
    let team = alice.create_project("team").await;
    let path = format!("{API}/projects/{team}/members");
    for role_id in [0, 6, 9] {
        let message = alice
            .post_json(
                &path,
                &json!({"role_id": role_id, "member_user": {"username": "bob"}}),
            )
            .await
            .harbor_error(StatusCode::BAD_REQUEST);
        assert!(
            message.starts_with(&format!("role_id {role_id} is not a role: 1 projectAdmin")),
            "{message}"
        );
    }
    let message = alice
        .post_json(
            &path,
            &json!({"role_id": 2, "member_user": {"username": "nobody"}}),
        )
        .await
        .harbor_error(StatusCode::NOT_FOUND);
    assert_eq!(message, "no such user");
    let message = alice
        .post_json(&path, &json!({"role_id": 2, "member_user": {}}))
        .await
        .harbor_error(StatusCode::BAD_REQUEST);
    assert_eq!(message, "member_user needs user_id or username");
    // A known user with a known role joins once.
    alice.add_member(team, "bob", 2).await;
    let message = alice
        .post_json(
            &path,
            &json!({"role_id": 3, "member_user": {"username": "bob"}}),
        )
        .await
        .harbor_error(StatusCode::CONFLICT);
    assert!(
        message.starts_with("bob is a member of project team already"),
        "{message}"
    );
    assert_eq!(
        members(&alice, team).await,
        [
            member("alice", "u", "projectAdmin"),
            member("bob", "u", "developer"),
        ]
    );
}
