//! Repositories, artifacts and tags.

use serde_json::json;

use crate::robots::access;
use crate::support;
use crate::support::api::{ADMIN, ANON, Api, Backend, on_both_databases};

on_both_databases!(repositories_artifacts_and_tags);

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
