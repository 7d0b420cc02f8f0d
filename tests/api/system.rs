//! The system endpoints (ping, health, system info), the fallbacks, and every operation of
//! the OpenAPI document routed.

use reqwest::Method;
use serde_json::json;

use crate::support::api::{ADMIN, ANON, Api};

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
