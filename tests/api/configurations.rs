//! `/configurations`: the settings changed at run time, in Harbor's shapes, on both
//! databases; their effect on tokens and project creation; pinned settings.

use serde_json::json;

use crate::support::api::{ADMIN, ANON, Api, Backend, on_both_databases};

on_both_databases!(administrators_change_settings_that_apply_at_once);

async fn administrators_change_settings_that_apply_at_once(backend: Backend) {
    let api = Api::start_on(backend).await;
    api.user("dev", "Dev-pass-123").await;
    let dev = ("dev", "Dev-pass-123");
    let now = api.get("/configurations", ADMIN).await;
    let body = now.ok(200);
    assert_eq!(
        body["auth_mode"],
        json!({"value": "db_auth", "editable": true})
    );
    assert_eq!(body["token_expiration"]["value"], 30);
    assert_eq!(body["project_creation_restriction"]["value"], "everyone");
    assert!(body["ldap_verify_cert"]["value"].as_bool().unwrap());
    assert!(body.get("ldap_search_password").is_none(), "never shown");
    api.get("/configurations", ANON)
        .await
        .error(401, "UNAUTHORIZED");
    api.get("/configurations", dev)
        .await
        .error(403, "FORBIDDEN");
    api.put("/configurations", dev, json!({"token_expiration": 5}))
        .await
        .error(403, "FORBIDDEN");

    // Refused as a whole: nothing changes.
    for bad in [
        json!({"token_expiration": 0}),
        json!({"token_expiration": "soon"}),
        json!({"token_expiration": 5, "email_host": "smtp"}),
        json!({"auth_mode": "oidc_auth"}),
        json!({"auth_mode": "ldap_auth"}),
        json!({"ldap_verify_cert": "maybe"}),
        json!(["token_expiration"]),
    ] {
        let message = api
            .put("/configurations", ADMIN, bad.clone())
            .await
            .error(400, "BAD_REQUEST");
        assert!(!message.is_empty(), "{bad}");
    }
    let unchanged = api.get("/configurations", ADMIN).await;
    assert_eq!(unchanged.body["token_expiration"]["value"], 30);
    assert_eq!(unchanged.body["auth_mode"]["value"], "db_auth");

    // Numbers as strings, as some of Harbor's clients send them.
    api.put(
        "/configurations",
        ADMIN,
        json!({"token_expiration": "5", "project_creation_restriction": "adminonly"}),
    )
    .await
    .ok(200);
    let changed = api.get("/configurations", ADMIN).await;
    assert_eq!(changed.body["token_expiration"]["value"], 5);
    let token = api
        .c
        .get(api.b.url("/service/token?service=berth-registry"))
        .basic_auth("dev", Some("Dev-pass-123"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], 300, "{token}");
    let info = api.get("/systeminfo", ANON).await;
    assert_eq!(info.body["project_creation_restriction"], "adminonly");
    api.post("/projects", dev, json!({"project_name": "devs"}))
        .await
        .error(403, "FORBIDDEN");
    api.post("/projects", ADMIN, json!({"project_name": "ops"}))
        .await
        .ok(201);

    // The change is in the audit log, by the administrator, naming the keys.
    let log = api
        .get("/audit-logs?q=resource_type%3Dconfiguration", ADMIN)
        .await;
    let entries = log.ok(200).as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["username"], "admin");
    assert_eq!(entries[0]["operation"], "update");
    assert_eq!(
        entries[0]["resource"],
        "project_creation_restriction, token_expiration"
    );
    // The same values again change nothing, and record nothing.
    api.put("/configurations", ADMIN, json!({"token_expiration": 5}))
        .await
        .ok(200);
    let log = api
        .get("/audit-logs?q=resource_type%3Dconfiguration", ADMIN)
        .await;
    assert_eq!(log.ok(200).as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn pinned_settings_are_read_only() {
    let api = Api::start_with(
        Backend::Sqlite,
        &[("BERTH_SETTINGS_PINNED", "token_expiration,ldap")],
    )
    .await;
    let now = api.get("/configurations", ADMIN).await;
    let body = now.ok(200);
    assert_eq!(body["token_expiration"]["editable"], false);
    assert_eq!(body["ldap_url"]["editable"], false);
    assert_eq!(body["auth_mode"]["editable"], true);
    let message = api
        .put("/configurations", ADMIN, json!({"token_expiration": 5}))
        .await
        .error(403, "FORBIDDEN");
    assert!(message.contains("pinned"), "{message}");
    api.put(
        "/configurations",
        ADMIN,
        json!({"project_creation_restriction": "adminonly"}),
    )
    .await
    .ok(200);
    // An LDAP test needs a directory's address: none here.
    let r = api.post("/ldap/ping", ADMIN, json!({})).await;
    r.error(400, "BAD_REQUEST");
}
