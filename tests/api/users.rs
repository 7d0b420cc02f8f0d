//! Users: creation, listing and search, profiles, passwords, system administrators,
//! disabling and deleting.

use serde_json::json;

use crate::support::ADMIN_PASSWORD;
use crate::support::api::{ADMIN, ANON, Api, Backend, on_both_databases};

on_both_databases!(users_are_managed_by_administrators_and_themselves);

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
