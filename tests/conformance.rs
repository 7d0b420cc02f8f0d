//! The OCI Distribution Specification v1.1 workflows (pull, push, content discovery, content
//! management, with the optional parts), run in order against one repository as a conformance
//! run does: content is shared between the workflows, so setup and teardown of one meet the
//! others' leftovers.

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::{Client, Response};
use serde_json::{Value, json};
use support::{Berth, random_bytes, sha256};

const NS: &str = "conformance/registry";
const CROSS: &str = "conformance/crossmount";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

struct Run {
    b: Berth,
    c: Client,
    /// Whether a mount without `from` is done (201) rather than declined with a new upload
    /// session (202): Berth mounts from anywhere only for callers who may pull from anywhere.
    automatic_mount: bool,
}

fn h(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map_or(String::new(), |v| v.to_str().unwrap().to_owned())
}

fn ok_or(status: u16, also: &[u16]) -> bool {
    (200..300).contains(&status) || also.contains(&status)
}

fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(data).to_string(), "size": data.len()})
}

impl Run {
    fn url(&self, path: &str) -> String {
        self.b.url(path)
    }

    /// POST for a session, then PUT the whole blob: the path every workflow's setup uses.
    async fn put_blob(&self, repo: &str, data: &[u8]) {
        let r = self
            .c
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let loc = h(&r, "location");
        let r = self
            .c
            .put(self.url(&format!("{loc}?digest={}", sha256(data))))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert!(!h(&r, "location").is_empty());
    }

    async fn put_manifest(&self, reference: &str, media_type: &str, body: &[u8]) -> Response {
        self.c
            .put(self.url(&format!("/v2/{NS}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    async fn status(&self, method: reqwest::Method, path: &str) -> u16 {
        self.c
            .request(method, self.url(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn tags(&self, query: &str) -> Vec<String> {
        let r = self
            .c
            .get(self.url(&format!("/v2/{NS}/tags/list{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect()
    }
}

/// Pretty-printed JSON, as Go's MarshalIndent writes it: the bytes, not the value, are hashed.
fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

#[tokio::test]
async fn distribution_spec_workflows_in_sequence() {
    workflows(Run {
        b: Berth::start().await,
        c: Client::new(),
        automatic_mount: true,
    })
    .await;
}

/// The same run with authentication on, as a user with credentials runs it against a
/// registry that requires them: the project exists, and every request carries Basic
/// credentials (which Berth, like Harbor, accepts on /v2).
#[tokio::test]
async fn distribution_spec_workflows_with_authentication() {
    let b = Berth::start_with_auth().await;
    support::api_member(&b, "runner", "Runner-pass-1", "conformance", 4).await;
    let anonymous = Client::new();
    assert_eq!(
        anonymous
            .get(b.url(&format!("/v2/{NS}/tags/list")))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let run = Run {
        b,
        c: support::basic_client("runner", "Runner-pass-1"),
        automatic_mount: false,
    };
    workflows(run).await;
}

async fn workflows(run: Run) {
    let del = reqwest::Method::DELETE;
    let get = reqwest::Method::GET;
    let head = reqwest::Method::HEAD;

    // Shared content: one config per workflow, one layer, image manifests with unknown fields.
    let configs: Vec<Vec<u8>> = (0..5)
        .map(|i| pretty(&json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "author": format!("workflow-{i}-{}", sha256(&random_bytes(8, i)).hex())})))
        .collect();
    let layer = random_bytes(200, 99);
    let manifests: Vec<Vec<u8>> = configs
        .iter()
        .map(|cfg| {
            let mut config = descriptor("application/vnd.oci.image.config.v1+json", cfg);
            config["data"] = json!("aGVsbG8=");
            config["newUnspecifiedField"] = json!("aGVsbG8gd29ybGQ=");
            pretty(&json!({"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &layer)]}))
        })
        .collect();
    let digest = |i: usize| sha256(&manifests[i]).to_string();
    let dummy = sha256(b"hello world").to_string();

    // ---- pull ------------------------------------------------------------------------------
    run.put_blob(NS, &configs[0]).await;
    run.put_blob(NS, &configs[1]).await;
    run.put_blob(NS, &layer).await;
    assert_eq!(
        run.put_manifest("tagtest0", MANIFEST, &manifests[0])
            .await
            .status(),
        201
    );
    assert_eq!(
        run.put_manifest(&digest(1), MANIFEST, &manifests[1])
            .await
            .status(),
        201
    );
    assert_eq!(
        run.status(head.clone(), &format!("/v2/{NS}/blobs/{dummy}"))
            .await,
        404
    );
    let r = run
        .c
        .head(run.url(&format!("/v2/{NS}/blobs/{}", sha256(&configs[0]))))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), h(&r, "docker-content-digest")),
        (200, sha256(&configs[0]).to_string())
    );
    assert_eq!(
        run.status(
            get.clone(),
            &format!("/v2/{NS}/blobs/{}", sha256(&configs[0]))
        )
        .await,
        200
    );
    assert_eq!(
        run.status(
            head.clone(),
            &format!("/v2/{NS}/manifests/.INVALID_MANIFEST_NAME")
        )
        .await,
        404
    );
    for (reference, expected) in [
        (digest(0), digest(0)),
        (digest(1), digest(1)),
        ("tagtest0".to_owned(), digest(0)),
    ] {
        for method in [head.clone(), get.clone()] {
            let r = run
                .c
                .request(method, run.url(&format!("/v2/{NS}/manifests/{reference}")))
                .header("accept", MANIFEST)
                .send()
                .await
                .unwrap();
            assert_eq!(
                (r.status().as_u16(), h(&r, "docker-content-digest")),
                (200, expected.clone())
            );
        }
    }
    let r = run
        .c
        .get(run.url(&format!("/v2/{NS}/manifests/sha256:totallywrong")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "DIGEST_INVALID");
    for d in [digest(0), digest(1)] {
        assert!(ok_or(
            run.status(del.clone(), &format!("/v2/{NS}/manifests/{d}"))
                .await,
            &[405]
        ));
    }
    for blob in [&configs[0], &configs[1], &layer] {
        assert!(ok_or(
            run.status(del.clone(), &format!("/v2/{NS}/blobs/{}", sha256(blob)))
                .await,
            &[404, 405]
        ));
    }

    // ---- push ------------------------------------------------------------------------------
    let blob_a = random_bytes(42, 1);
    let r = run
        .c
        .post(run.url(&format!("/v2/{NS}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    let loc = h(&r, "location");
    let r = run
        .c
        .patch(run.url(&loc))
        .header("content-type", "application/octet-stream")
        .body(blob_a.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = run
        .c
        .put(run.url(&format!("{}?digest={}", h(&r, "location"), sha256(&blob_a))))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        run.status(get.clone(), &format!("/v2/{NS}/blobs/{dummy}"))
            .await,
        404
    );
    let r = run
        .c
        .post(run.url(&format!(
            "/v2/{NS}/blobs/uploads/?digest={}",
            sha256(&configs[1])
        )))
        .body(configs[1].clone())
        .send()
        .await
        .unwrap();
    assert!(!h(&r, "location").is_empty());
    assert_eq!(r.status(), 201);
    assert_eq!(
        run.status(
            get.clone(),
            &format!("/v2/{NS}/blobs/{}", sha256(&configs[1]))
        )
        .await,
        200
    );
    run.put_blob(NS, &layer).await;
    // Chunked: out of order, then in order, a stale retry, status, the rest.
    let blob_b = random_bytes(42, 2);
    let (first, second) = blob_b.split_at(22);
    let r = run
        .c
        .post(run.url(&format!("/v2/{NS}/blobs/uploads/")))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    let r = run
        .c
        .patch(run.url(&h(&r, "location")))
        .header("content-range", "22-41")
        .body(second.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = run
        .c
        .post(run.url(&format!("/v2/{NS}/blobs/uploads/")))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    let session = h(&r, "location");
    let r = run
        .c
        .patch(run.url(&session))
        .header("content-range", "0-21")
        .body(first.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), h(&r, "range")),
        (202, "0-21".to_owned())
    );
    let r = run
        .c
        .patch(run.url(&session))
        .header("content-range", "0-21")
        .body(first.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = run.c.get(run.url(&session)).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), h(&r, "range")),
        (204, "0-21".to_owned())
    );
    assert!(!h(&r, "location").is_empty());
    let r = run
        .c
        .patch(run.url(&h(&r, "location")))
        .header("content-range", "22-41")
        .body(second.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = run
        .c
        .put(run.url(&format!("{}?digest={}", h(&r, "location"), sha256(&blob_b))))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Cross-repository mount: without `from` for an unknown blob, with `from`, automatic.
    let r = run
        .c
        .post(run.url(&format!("/v2/{CROSS}/blobs/uploads/?mount={dummy}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(!h(&r, "location").is_empty());
    let r = run
        .c
        .post(run.url(&format!(
            "/v2/{CROSS}/blobs/uploads/?mount={}&from={NS}",
            sha256(&blob_a)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        h(&r, "location"),
        format!("/v2/{CROSS}/blobs/{}", sha256(&blob_a))
    );
    assert_eq!(run.status(get.clone(), &h(&r, "location")).await, 200);
    let r = run
        .c
        .post(run.url(&format!(
            "/v2/{CROSS}/blobs/uploads/?mount={}",
            sha256(&blob_a)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), if run.automatic_mount { 201 } else { 202 });
    // Manifests: four tags, one with no layers and no mediaType field.
    assert_eq!(
        run.status(
            get.clone(),
            &format!("/v2/{NS}/manifests/.INVALID_MANIFEST_NAME")
        )
        .await,
        404
    );
    for i in 0..4 {
        let r = run
            .put_manifest(&format!("test{i}"), MANIFEST, &manifests[1])
            .await;
        assert_eq!(r.status(), 201);
        assert!(!h(&r, "location").is_empty());
    }
    let empty_layers = pretty(
        &json!({"schemaVersion": 2, "config": descriptor("application/vnd.oci.image.config.v1+json", &configs[1]), "layers": []}),
    );
    assert_eq!(
        run.put_manifest("emptylayer", MANIFEST, &empty_layers)
            .await
            .status(),
        201
    );
    let r = run
        .c
        .get(run.url(&format!("/v2/{NS}/manifests/{}", digest(1))))
        .header("accept", MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for d in [digest(1), sha256(&empty_layers).to_string()] {
        assert!(ok_or(
            run.status(del.clone(), &format!("/v2/{NS}/manifests/{d}"))
                .await,
            &[405]
        ));
    }
    for blob in [&configs[1], &layer] {
        assert!(ok_or(
            run.status(del.clone(), &format!("/v2/{NS}/blobs/{}", sha256(blob)))
                .await,
            &[404, 405]
        ));
    }

    // ---- content discovery -----------------------------------------------------------------
    run.put_blob(NS, &configs[2]).await;
    run.put_blob(NS, &layer).await;
    for i in 0..4 {
        assert_eq!(
            run.put_manifest(&format!("test{i}"), MANIFEST, &manifests[2])
                .await
                .status(),
            201
        );
    }
    let empty_json = b"{}";
    assert_eq!(
        sha256(empty_json).to_string(),
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    let (ref_a, ref_b) = (
        b"artifact A contents".to_vec(),
        b"artifact B contents".to_vec(),
    );
    let (type_a, type_b) = ("application/vnd.example.a", "application/vnd.example.b");
    let subject = descriptor(MANIFEST, &manifests[4]);
    let empty_desc = descriptor("application/vnd.oci.empty.v1+json", empty_json);
    let by_config = |data: &[u8], t: &str, s: &Value, note: &str| {
        pretty(
            &json!({"schemaVersion": 2, "mediaType": MANIFEST, "config": descriptor(t, data), "subject": s, "layers": [empty_desc], "annotations": {"org.example.test": note}}),
        )
    };
    let by_field = |data: &[u8], t: &str, s: &Value, note: &str| {
        pretty(
            &json!({"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": t, "config": empty_desc, "subject": s, "layers": [descriptor(t, data)], "annotations": {"org.example.test": note}}),
        )
    };
    let a_config = by_config(&ref_a, type_a, &subject, "a config");
    let a_layer = by_field(&ref_a, type_a, &subject, "a layer");
    let b_config = by_config(&ref_b, type_b, &subject, "b config");
    let b_layer = by_field(&ref_b, type_b, &subject, "b layer");
    let c_layer = by_field(
        &ref_b,
        type_b,
        &descriptor(MANIFEST, &manifests[3]),
        "c layer",
    );
    let index = pretty(
        &json!({"schemaVersion": 2, "mediaType": INDEX, "artifactType": "application/vnd.example.index",
        "manifests": [descriptor(MANIFEST, &a_config), descriptor(MANIFEST, &a_layer)], "subject": subject, "annotations": {"org.example.test": "index"}}),
    );
    run.put_blob(NS, empty_json).await;
    run.put_blob(NS, &ref_a).await;
    // Referrers pushed before their subject exists.
    for (body, media_type) in [(&a_config, MANIFEST), (&a_layer, MANIFEST), (&index, INDEX)] {
        let r = run
            .put_manifest(&sha256(body).to_string(), media_type, body)
            .await;
        assert_eq!(
            (r.status().as_u16(), h(&r, "oci-subject")),
            (201, digest(4))
        );
    }
    run.put_blob(NS, &configs[4]).await;
    assert_eq!(
        run.put_manifest("tagtest0", MANIFEST, &manifests[4])
            .await
            .status(),
        201
    );
    run.put_blob(NS, &ref_b).await;
    for body in [&b_config, &b_layer] {
        let r = run
            .put_manifest(&sha256(body).to_string(), MANIFEST, body)
            .await;
        assert_eq!(
            (r.status().as_u16(), h(&r, "oci-subject")),
            (201, digest(4))
        );
    }
    let r = run
        .put_manifest(&sha256(&c_layer).to_string(), MANIFEST, &c_layer)
        .await;
    assert_eq!(
        (r.status().as_u16(), h(&r, "oci-subject")),
        (201, digest(3))
    );
    // Tags.
    let all = run.tags("").await;
    assert_eq!(all, vec!["tagtest0", "test0", "test1", "test2", "test3"]);
    let half = all.len() / 2;
    let page = run.tags(&format!("?n={half}")).await;
    assert_eq!(page.len(), half);
    let next = run
        .tags(&format!("?n={half}&last={}", page[half - 1]))
        .await;
    assert!(next.len() <= half && !next.contains(&page[half - 1]));
    // Referrers.
    let referrers = |query: String| {
        let c = run.c.clone();
        let url = run.url(&query);
        async move {
            let r = c.get(url).send().await.unwrap();
            assert_eq!(
                (r.status().as_u16(), h(&r, "content-type")),
                (200, INDEX.to_owned())
            );
            let filtered = h(&r, "oci-filters-applied");
            (
                r.json::<Value>().await.unwrap()["manifests"]
                    .as_array()
                    .unwrap()
                    .clone(),
                filtered,
            )
        }
    };
    assert!(
        referrers(format!("/v2/{NS}/referrers/{dummy}"))
            .await
            .0
            .is_empty()
    );
    let (all_refs, _) = referrers(format!("/v2/{NS}/referrers/{}", digest(4))).await;
    assert_eq!(all_refs.len(), 5);
    let notes: Vec<&str> = all_refs
        .iter()
        .map(|d| d["annotations"]["org.example.test"].as_str().unwrap())
        .collect();
    for note in ["a config", "a layer", "index", "b config", "b layer"] {
        assert!(notes.contains(&note), "{note} missing from {notes:?}");
    }
    assert!(
        all_refs
            .iter()
            .all(|d| d["annotations"].as_object().unwrap().len() == 1)
    );
    let (only_a, filters) = referrers(format!(
        "/v2/{NS}/referrers/{}?artifactType={type_a}",
        digest(4)
    ))
    .await;
    assert_eq!((only_a.len(), filters.as_str()), (2, "artifactType"));
    assert!(only_a.iter().all(|d| d["artifactType"] == type_a));
    let (to_missing, _) = referrers(format!("/v2/{NS}/referrers/{}", digest(3))).await;
    assert_eq!(to_missing.len(), 1);
    assert_eq!(to_missing[0]["digest"], sha256(&c_layer).to_string());
    // Teardown: manifests first (404 allowed: some share content), then blobs.
    for body in [
        &index,
        &manifests[2],
        &manifests[4],
        &a_config,
        &a_layer,
        &b_config,
        &b_layer,
        &c_layer,
    ] {
        assert!(ok_or(
            run.status(del.clone(), &format!("/v2/{NS}/manifests/{}", sha256(body)))
                .await,
            &[404, 405]
        ));
    }
    assert!(ok_or(
        run.status(del.clone(), &format!("/v2/{NS}/manifests/tagtest0"))
            .await,
        &[404, 405]
    ));
    for blob in [
        &configs[2],
        &layer,
        &configs[4],
        &ref_a,
        &ref_b,
        &empty_json.to_vec(),
    ] {
        assert!(ok_or(
            run.status(del.clone(), &format!("/v2/{NS}/blobs/{}", sha256(blob)))
                .await,
            &[404, 405]
        ));
    }

    // ---- content management ----------------------------------------------------------------
    run.put_blob(NS, &configs[3]).await;
    run.put_blob(NS, &layer).await;
    assert_eq!(
        run.put_manifest("tagtest0", MANIFEST, &manifests[3])
            .await
            .status(),
        201
    );
    let before = run.tags("").await.len();
    assert_eq!(
        run.status(del.clone(), &format!("/v2/{NS}/manifests/tagtest0"))
            .await,
        202
    );
    assert_eq!(
        run.status(del.clone(), &format!("/v2/{NS}/manifests/{}", digest(3)))
            .await,
        202
    );
    assert_eq!(
        run.status(get.clone(), &format!("/v2/{NS}/manifests/{}", digest(3)))
            .await,
        404
    );
    assert!(run.tags("").await.len() < before);
    assert_eq!(
        run.status(
            del.clone(),
            &format!("/v2/{NS}/blobs/{}", sha256(&configs[3]))
        )
        .await,
        202
    );
    assert_eq!(
        run.status(del.clone(), &format!("/v2/{NS}/blobs/{}", sha256(&layer)))
            .await,
        202
    );
    assert_eq!(
        run.status(
            get.clone(),
            &format!("/v2/{NS}/blobs/{}", sha256(&configs[3]))
        )
        .await,
        404
    );
}
