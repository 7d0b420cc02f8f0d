//! The OCI Distribution API, endpoint by endpoint, against the real `berth` binary: every
//! success path and every error path, with the status codes and error codes of the spec.

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::Client;
use serde_json::Value;
use support::{
    Berth, expect_error, expect_refusal, image_manifest, push_blob, push_image, sha256, status_of,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One HTTP/1.1 exchange over a raw socket, tolerating a server that answers and closes before
/// the whole body was sent (as a registry does with an oversized upload). Returns the status
/// and the response text.
fn raw_http(addr: &str, head: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    // Read until the headers and the (small, JSON) body have arrived or the server closes.
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        if response.windows(4).any(|w| w == b"\r\n\r\n") && response.ends_with(b"}") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn base_health_and_unknown_routes() {
    let b = Berth::start().await;
    let c = client();
    let r = c.get(b.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
    assert_eq!(header(&r, "x-request-id").len(), 36);
    assert_eq!(r.text().await.unwrap(), "{}");
    assert_eq!(status_of(c.head(b.url("/v2"))).await, 200);
    // A request id sent by the client is kept.
    let r = c
        .get(b.url("/v2/"))
        .header("x-request-id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-request-id"), "trace-me");

    assert_eq!(status_of(c.get(b.url("/healthz"))).await, 200);
    let r = c.get(b.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["database"]["ok"].clone(), v["storage"]["ok"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );

    let r = c.get(b.url("/v2/a/things/x")).send().await.unwrap();
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
    expect_error(r, 404, "NAME_INVALID").await;
    let r = c
        .patch(b.url("/v2/a/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "allow"), "GET, HEAD, PUT, DELETE");
    expect_error(r, 405, "UNSUPPORTED").await;
    expect_refusal(c.post(b.url("/v2/_catalog")), 405, "UNSUPPORTED").await;
}

#[tokio::test]
async fn repository_names_are_validated_and_may_be_deep() {
    let b = Berth::start().await;
    let c = client();
    // No repository can have these names: 404, before anything else looks at them.
    for bad in ["UPPER/case", "a//b", "a_", "-a/b", "a/b.", "a..b"] {
        let r = c
            .get(b.url(&format!("/v2/{bad}/tags/list")))
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "NAME_INVALID").await;
    }
    let long = "a".repeat(256);
    expect_refusal(
        c.get(b.url(&format!("/v2/{long}/tags/list"))),
        404,
        "NAME_INVALID",
    )
    .await;
    let deep = "org/team/group/app/component";
    let (m, _) = push_image(&c, &b, deep, "v1", "deep").await;
    let r = c
        .get(b.url(&format!("/v2/{deep}/manifests/v1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), m);
    let r = c
        .get(b.url("/v2/never/pushed/tags/list"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NAME_UNKNOWN").await;
}

#[tokio::test]
async fn monolithic_uploads_and_blob_reads() {
    let b = Berth::start().await;
    let c = client();
    let data = b"monolithic blob contents".to_vec();
    let d = sha256(&data);
    // Single request: POST ?digest= with the body.
    let r = c
        .post(b.url(&format!("/v2/m/blobs/uploads/?digest={d}")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/m/blobs/{d}"));
    assert_eq!(header(&r, "docker-content-digest"), d.as_str());
    // POST then PUT ?digest= with the body.
    let other = b"second blob".to_vec();
    let od = sha256(&other);
    let r = c.post(b.url("/v2/m/blobs/uploads/")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let loc = header(&r, "location").to_owned();
    assert!(loc.starts_with("/v2/m/blobs/uploads/"), "{loc}");
    assert_eq!(header(&r, "range"), "0-0");
    assert!(!header(&r, "docker-upload-uuid").is_empty());
    let r = c
        .put(b.url(&format!("{loc}?digest={od}")))
        .body(other.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/m/blobs/{od}"));

    let r = c
        .get(b.url(&format!("/v2/m/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), data.len().to_string());
    assert_eq!(header(&r, "docker-content-digest"), d.as_str());
    assert_eq!(header(&r, "content-type"), "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap(), data);
    let r = c
        .head(b.url(&format!("/v2/m/blobs/{od}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), other.len().to_string());
    assert_eq!(header(&r, "docker-content-digest"), od.as_str());
    assert!(r.bytes().await.unwrap().is_empty());

    // Unknown, malformed and unsupported digests.
    let unknown = sha256(b"never pushed");
    expect_refusal(
        c.get(b.url(&format!("/v2/m/blobs/{unknown}"))),
        404,
        "BLOB_UNKNOWN",
    )
    .await;
    let r = c
        .head(b.url(&format!("/v2/m/blobs/{unknown}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    expect_refusal(
        c.get(b.url("/v2/m/blobs/sha256:abc")),
        400,
        "DIGEST_INVALID",
    )
    .await;
    expect_refusal(c.get(b.url("/v2/m/blobs/md5:abc")), 400, "DIGEST_INVALID").await;
    // The blob exists, but not in this repository.
    expect_refusal(
        c.get(b.url(&format!("/v2/elsewhere/blobs/{d}"))),
        404,
        "BLOB_UNKNOWN",
    )
    .await;
    // Empty blob.
    let e = push_blob(&c, &b, "m", b"").await;
    let r = c
        .get(b.url(&format!("/v2/m/blobs/{e}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.bytes().await.unwrap().len()),
        (200, 0)
    );
}

#[tokio::test]
async fn content_that_does_not_match_its_digest_never_becomes_visible() {
    let b = Berth::start().await;
    let c = client();
    let claimed = sha256(b"what the client claims");
    let r = c
        .post(b.url(&format!("/v2/w/blobs/uploads/?digest={claimed}")))
        .body("something else")
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 400, "DIGEST_INVALID").await;
    assert_eq!(v["errors"][0]["detail"]["expected"], claimed.as_str());
    assert_eq!(
        v["errors"][0]["detail"]["actual"],
        sha256(b"something else").as_str()
    );
    expect_refusal(
        c.get(b.url(&format!("/v2/w/blobs/{claimed}"))),
        404,
        "BLOB_UNKNOWN",
    )
    .await;
    // Through a session: the session is discarded with the bad bytes.
    let r = c.post(b.url("/v2/w/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location").to_owned();
    c.patch(b.url(&loc))
        .body("also wrong")
        .send()
        .await
        .unwrap();
    let r = c
        .put(b.url(&format!("{loc}?digest={claimed}")))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "DIGEST_INVALID").await;
    expect_refusal(
        c.get(b.url(&format!("/v2/w/blobs/{claimed}"))),
        404,
        "BLOB_UNKNOWN",
    )
    .await;
    expect_refusal(c.get(b.url(&loc)), 404, "BLOB_UPLOAD_UNKNOWN").await;
    // Nothing of either attempt is left in storage.
    let uploads = std::fs::read_dir(b.data_dir.join("storage/uploads"))
        .unwrap()
        .count();
    assert_eq!(uploads, 0);
    let blob_file = b
        .data_dir
        .join("storage/blobs/sha256")
        .join(&claimed.hex()[..2])
        .join(claimed.hex());
    assert!(!blob_file.exists());
}

#[tokio::test]
async fn streamed_upload_as_docker_does_it_and_sha512() {
    let b = Berth::start().await;
    let c = client();
    let data = support::random_bytes(3 << 20, 7);
    let d = sha256(&data);
    let r = c.post(b.url("/v2/s/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location").to_owned();
    // One streamed PATCH, no Content-Range.
    let r = c
        .patch(b.url(&loc))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), format!("0-{}", data.len() - 1));
    assert_eq!(header(&r, "location"), loc);
    let r = c.get(b.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "range"), format!("0-{}", data.len() - 1));
    assert_eq!(header(&r, "location"), loc);
    let r = c
        .put(b.url(&format!("{loc}?digest={d}")))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        c.get(b.url(&format!("/v2/s/blobs/{d}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        data
    );

    // sha512: verified by re-reading the upload (the running hash is sha256).
    let d512 =
        berth_core::DigestHasher::digest_of(berth_core::DigestAlgorithm::Sha512, &data[..1000]);
    let r = c.post(b.url("/v2/s/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location").to_owned();
    c.patch(b.url(&loc))
        .body(data[..1000].to_vec())
        .send()
        .await
        .unwrap();
    let r = c
        .put(b.url(&format!("{loc}?digest={d512}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = c
        .get(b.url(&format!("/v2/s/blobs/{d512}")))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "docker-content-digest"), d512.as_str());
    assert_eq!(r.bytes().await.unwrap(), &data[..1000]);
}

#[tokio::test]
async fn chunked_uploads_enforce_order() {
    let b = Berth::start().await;
    let c = client();
    let data = support::random_bytes(42, 3);
    let (first, second) = data.split_at(22);
    let d = sha256(&data);
    let r = c
        .post(b.url("/v2/ch/blobs/uploads/"))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    let loc = header(&r, "location").to_owned();
    // Out of order: the second chunk first.
    let r = c
        .patch(b.url(&loc))
        .header("content-range", "22-41")
        .body(second.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "range"), "0-0");
    expect_error(r, 416, "RANGE_INVALID").await;
    let r = c
        .patch(b.url(&loc))
        .header("content-range", "0-21")
        .body(first.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), "0-21");
    // Retrying the first chunk overlaps what was received.
    let r = c
        .patch(b.url(&loc))
        .header("content-range", "0-21")
        .body(first.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "range"), "0-21");
    expect_error(r, 416, "RANGE_INVALID").await;
    let r = c
        .patch(b.url(&loc))
        .header("content-range", "10-30")
        .body(vec![0u8; 21])
        .send()
        .await
        .unwrap();
    expect_error(r, 416, "RANGE_INVALID").await;
    // Malformed Content-Range; Content-Range and Content-Length that disagree.
    let r = c
        .patch(b.url(&loc))
        .header("content-range", "twenty-two")
        .body(second.to_vec())
        .send()
        .await
        .unwrap();
    expect_error(r, 416, "RANGE_INVALID").await;
    let r = c
        .patch(b.url(&loc))
        .header("content-range", "22-50")
        .body(second.to_vec())
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "SIZE_INVALID").await;
    // Status after the refusals is unchanged.
    let r = c.get(b.url(&loc)).send().await.unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "range")), (204, "0-21"));
    // The final chunk with the PUT.
    let r = c
        .put(b.url(&format!("{loc}?digest={d}")))
        .header("content-range", "22-41")
        .body(second.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert_eq!(
        c.get(b.url(&format!("/v2/ch/blobs/{d}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        data
    );
}

#[tokio::test]
async fn upload_session_errors() {
    let b = Berth::start().await;
    let c = client();
    let unknown = "/v2/u/blobs/uploads/0b0e1a4c-0000-4000-8000-000000000000";
    let d = sha256(b"x");
    expect_refusal(c.get(b.url(unknown)), 404, "BLOB_UPLOAD_UNKNOWN").await;
    expect_refusal(
        c.patch(b.url(unknown)).body("x"),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_refusal(
        c.put(b.url(&format!("{unknown}?digest={d}"))),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_refusal(c.delete(b.url(unknown)), 404, "BLOB_UPLOAD_UNKNOWN").await;
    expect_refusal(
        c.get(b.url("/v2/u/blobs/uploads/not%20an%20id")),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;

    let r = c.post(b.url("/v2/u/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location").to_owned();
    let id = loc.rsplit('/').next().unwrap().to_owned();
    // A session belongs to its repository.
    expect_refusal(
        c.get(b.url(&format!("/v2/other/blobs/uploads/{id}"))),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    // Finishing needs a valid digest.
    expect_refusal(c.put(b.url(&loc)), 400, "DIGEST_INVALID").await;
    expect_refusal(
        c.put(b.url(&format!("{loc}?digest=sha256:nope"))),
        400,
        "DIGEST_INVALID",
    )
    .await;
    // The failed finishes left the session usable.
    assert_eq!(status_of(c.get(b.url(&loc))).await, 204);
    // Cancel.
    assert_eq!(status_of(c.delete(b.url(&loc))).await, 204);
    expect_refusal(c.get(b.url(&loc)), 404, "BLOB_UPLOAD_UNKNOWN").await;
    expect_refusal(
        c.post(b.url("/v2/u/blobs/uploads/?digest=sha256:zz"))
            .body("x"),
        400,
        "DIGEST_INVALID",
    )
    .await;
}

#[tokio::test]
async fn one_writer_per_session_at_a_time() {
    let b = Berth::start().await;
    let c = client();
    let r = c.post(b.url("/v2/cc/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location").to_owned();
    // A PATCH that keeps its body open holds the session. Its first part is larger than the
    // writer's 1 MiB buffer, so bytes on disk prove the server is writing it.
    let first = support::random_bytes(2 << 20, 21);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|v| (Ok::<_, std::io::Error>(v), rx))
    });
    tx.send(first.clone()).unwrap();
    let slow = tokio::spawn(
        c.patch(b.url(&loc))
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    let upload = b
        .data_dir
        .join("storage/uploads")
        .join(loc.rsplit('/').next().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::metadata(&upload).map_or(0, |m| m.len()) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first writer never wrote"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let busy = c
        .patch(b.url(&loc))
        .body("second writer")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&busy, "retry-after"), "1");
    expect_error(busy, 409, "BLOB_UPLOAD_INVALID").await;
    // The first writer finishes; the session has exactly its bytes and takes the next chunk.
    tx.send(b"and the rest".to_vec()).unwrap();
    drop(tx);
    let r = slow.await.unwrap().unwrap();
    assert_eq!(r.status(), 202);
    let mut expected = first;
    expected.extend_from_slice(b"and the rest");
    assert_eq!(header(&r, "range"), format!("0-{}", expected.len() - 1));
    let r = c.patch(b.url(&loc)).body("!").send().await.unwrap();
    assert_eq!(r.status(), 202);
    expected.push(b'!');
    let d = sha256(&expected);
    assert_eq!(
        status_of(c.put(b.url(&format!("{loc}?digest={d}")))).await,
        201
    );
    assert!(
        c.get(b.url(&format!("/v2/cc/blobs/{d}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            == expected
    );
}

#[tokio::test]
async fn cross_repository_mount() {
    let b = Berth::start().await;
    let c = client();
    let d = push_blob(&c, &b, "src/repo", b"shared layer").await;
    let r = c
        .post(b.url(&format!(
            "/v2/dst/repo/blobs/uploads/?mount={d}&from=src/repo"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/dst/repo/blobs/{d}"));
    assert_eq!(header(&r, "docker-content-digest"), d.as_str());
    assert_eq!(
        c.get(b.url(&format!("/v2/dst/repo/blobs/{d}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        &b"shared layer"[..]
    );
    // Automatic mount: no `from`, the registry finds the blob.
    let r = c
        .post(b.url(&format!("/v2/auto/blobs/uploads/?mount={d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Not mountable: a session to upload into instead.
    let missing = sha256(b"missing");
    for q in [
        format!("mount={missing}&from=src/repo"),
        format!("mount={missing}"),
        format!("mount={d}&from=no/such"),
    ] {
        let r = c
            .post(b.url(&format!("/v2/dst2/blobs/uploads/?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{q}");
        assert!(header(&r, "location").starts_with("/v2/dst2/blobs/uploads/"));
    }
    expect_refusal(
        c.post(b.url("/v2/dst/blobs/uploads/?mount=sha256:bad&from=src/repo")),
        400,
        "DIGEST_INVALID",
    )
    .await;
    expect_refusal(
        c.post(b.url(&format!("/v2/dst/blobs/uploads/?mount={d}&from=Bad//Name"))),
        400,
        "NAME_INVALID",
    )
    .await;
}

#[tokio::test]
async fn manifests_push_and_pull() {
    let b = Berth::start().await;
    let c = client();
    let (m, d) = push_image(&c, &b, "img", "v1", "one").await;
    for reference in ["v1", d.as_str()] {
        let r = c
            .get(b.url(&format!("/v2/img/manifests/{reference}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), d.as_str());
        assert_eq!(header(&r, "content-length"), m.len().to_string());
        assert_eq!(r.text().await.unwrap(), m);
        let r = c
            .head(b.url(&format!("/v2/img/manifests/{reference}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status().as_u16(), header(&r, "docker-content-digest")),
            (200, d.as_str())
        );
        assert_eq!(header(&r, "content-length"), m.len().to_string());
    }
    // Push by digest; Location names the digest.
    let r = c
        .put(b.url(&format!("/v2/img/manifests/{d}")))
        .header("content-type", OCI_MANIFEST)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/img/manifests/{d}"));
    // Retagging moves the tag.
    let (_, d2) = push_image(&c, &b, "img", "v1", "two").await;
    let r = c.head(b.url("/v2/img/manifests/v1")).send().await.unwrap();
    assert_eq!(header(&r, "docker-content-digest"), d2.as_str());
    // Content negotiation on tags: an index is not served to a client that only takes manifests.
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        m.len()
    );
    let r = c
        .put(b.url("/v2/img/manifests/multi"))
        .header("content-type", OCI_INDEX)
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = c
        .get(b.url("/v2/img/manifests/multi"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "MANIFEST_UNKNOWN").await;
    let r = c
        .get(b.url("/v2/img/manifests/multi"))
        .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), header(&r, "content-type")),
        (200, OCI_INDEX)
    );
    // Docker schema 2 and manifest lists are stored and served with their own type.
    let docker = m
        .replace(
            OCI_MANIFEST,
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .replace(
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.docker.container.image.v1+json",
        );
    let r = c
        .put(b.url("/v2/img/manifests/docker"))
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .body(docker)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = c
        .get(b.url("/v2/img/manifests/docker"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&r, "content-type"),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[tokio::test]
async fn manifest_push_errors() {
    let b = Berth::start().await;
    let c = client();
    let (m, _) = push_image(&c, &b, "e", "ok", "base").await;
    let put = |reference: &str, ct: &str, body: Vec<u8>| {
        c.put(b.url(&format!("/v2/e/manifests/{reference}")))
            .header("content-type", ct.to_owned())
            .body(body)
            .send()
    };
    // A layer that was never pushed.
    let missing = sha256(b"not pushed");
    let config = br#"{"architecture":"amd64","os":"linux","seed":"base"}"#;
    let bad = image_manifest((&sha256(config), config.len()), &[(&missing, 10)], "");
    let v = expect_error(
        put("t", OCI_MANIFEST, bad.into_bytes()).await.unwrap(),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    )
    .await;
    assert_eq!(v["errors"][0]["detail"]["digest"], missing.as_str());
    // A declared size that is wrong.
    let wrong_size = m.replace("\"size\":1000", "\"size\":1001");
    assert_ne!(wrong_size, m);
    expect_error(
        put("t", OCI_MANIFEST, wrong_size.into_bytes())
            .await
            .unwrap(),
        400,
        "MANIFEST_INVALID",
    )
    .await;
    // An index whose entry was never pushed.
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{missing}","size":3}}]}}"#
    );
    expect_error(
        put("t", OCI_INDEX, index.into_bytes()).await.unwrap(),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    )
    .await;
    // Malformed JSON, wrong shapes, unsupported and mismatched media types.
    expect_error(
        put("t", OCI_MANIFEST, b"blablabla".to_vec()).await.unwrap(),
        400,
        "MANIFEST_INVALID",
    )
    .await;
    expect_error(
        put("t", OCI_MANIFEST, br#"{"schemaVersion":2}"#.to_vec())
            .await
            .unwrap(),
        400,
        "MANIFEST_INVALID",
    )
    .await;
    expect_error(
        put(
            "t",
            "text/plain",
            br#"{"schemaVersion":2,"mediaType":"text/plain","config":{}}"#.to_vec(),
        )
        .await
        .unwrap(),
        400,
        "MANIFEST_INVALID",
    )
    .await;
    let v = expect_error(
        put("t", OCI_INDEX, m.clone().into_bytes()).await.unwrap(),
        400,
        "MANIFEST_INVALID",
    )
    .await;
    assert_eq!(v["errors"][0]["detail"]["contentType"], OCI_INDEX);
    // Docker schema 1 is refused with a message that says so.
    let schema1 = br#"{"schemaVersion":1,"name":"e","tag":"t","architecture":"amd64","fsLayers":[],"history":[]}"#;
    let v = expect_error(
        put(
            "t",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            schema1.to_vec(),
        )
        .await
        .unwrap(),
        400,
        "MANIFEST_INVALID",
    )
    .await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("schema 1")
    );
    // Over 4 MiB: 413, with or without a Content-Length. Refused from the headers when the
    // length is declared (before the body is sent), and after 4 MiB when it is streamed.
    let huge = format!(
        "{{\"schemaVersion\":2,\"pad\":\"{}\"}}",
        "x".repeat(4 << 20)
    );
    let head = format!(
        "PUT /v2/e/manifests/t HTTP/1.1\r\nHost: x\r\nContent-Type: {OCI_MANIFEST}\r\nContent-Length: {}\r\n\r\n",
        huge.len()
    );
    let (status, body) = raw_http(&b.addr, &head, b"");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("SIZE_INVALID"), "{body}");
    let head = format!(
        "PUT /v2/e/manifests/t HTTP/1.1\r\nHost: x\r\nContent-Type: {OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut chunked = Vec::new();
    for chunk in huge.as_bytes().chunks(65536) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, body) = raw_http(&b.addr, &head, &chunked);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("SIZE_INVALID"), "{body}");
    // By digest, the digest must match; tags must be valid.
    let other = sha256(b"other");
    expect_error(
        put(other.as_str(), OCI_MANIFEST, m.clone().into_bytes())
            .await
            .unwrap(),
        400,
        "DIGEST_INVALID",
    )
    .await;
    expect_error(
        put("sha256:totallywrong", OCI_MANIFEST, b"blablabla".to_vec())
            .await
            .unwrap(),
        400,
        "DIGEST_INVALID",
    )
    .await;
    expect_error(
        put(".bad-tag", OCI_MANIFEST, m.clone().into_bytes())
            .await
            .unwrap(),
        400,
        "TAG_INVALID",
    )
    .await;
    expect_error(
        put(&"t".repeat(129), OCI_MANIFEST, m.into_bytes())
            .await
            .unwrap(),
        400,
        "TAG_INVALID",
    )
    .await;
    // Nothing of the failed pushes is visible.
    let tags: Value = c
        .get(b.url("/v2/e/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["ok"]));
    // Reads of what does not exist.
    expect_refusal(
        c.get(b.url("/v2/e/manifests/nope")),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_refusal(
        c.get(b.url("/v2/e/manifests/.INVALID_MANIFEST_NAME")),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    assert_eq!(status_of(c.head(b.url("/v2/e/manifests/nope"))).await, 404);
    expect_refusal(
        c.get(b.url(&format!("/v2/e/manifests/{other}"))),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_refusal(
        c.get(b.url("/v2/e/manifests/sha256:totallywrong")),
        400,
        "DIGEST_INVALID",
    )
    .await;
    expect_refusal(
        c.get(b.url("/v2/nothing/manifests/latest")),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn tags_list_is_sorted_and_paginated() {
    let b = Berth::start().await;
    let c = client();
    let (m, _) = push_image(&c, &b, "t", "zeta", "t").await;
    for tag in ["alpha", "Beta", "gamma", "1.0", "_x"] {
        let r = c
            .put(b.url(&format!("/v2/t/manifests/{tag}")))
            .header("content-type", OCI_MANIFEST)
            .body(m.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let all: Value = c
        .get(b.url("/v2/t/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["name"], "t");
    assert_eq!(
        all["tags"],
        serde_json::json!(["1.0", "Beta", "_x", "alpha", "gamma", "zeta"])
    );
    let r = c.get(b.url("/v2/t/tags/list?n=2")).send().await.unwrap();
    assert_eq!(
        header(&r, "link"),
        "</v2/t/tags/list?n=2&last=Beta>; rel=\"next\""
    );
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], serde_json::json!(["1.0", "Beta"]));
    let r = c
        .get(b.url("/v2/t/tags/list?n=2&last=Beta"))
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], serde_json::json!(["_x", "alpha"]));
    let r = c
        .get(b.url("/v2/t/tags/list?n=2&last=gamma"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none());
    assert_eq!(
        r.json::<Value>().await.unwrap()["tags"],
        serde_json::json!(["zeta"])
    );
    let r = c.get(b.url("/v2/t/tags/list?n=0")).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["tags"],
        serde_json::json!([])
    );
    let r = c
        .get(b.url("/v2/t/tags/list?last=zeta"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["tags"],
        serde_json::json!([])
    );
    expect_refusal(
        c.get(b.url("/v2/t/tags/list?n=-1")),
        400,
        "PAGINATION_NUMBER_INVALID",
    )
    .await;
    expect_refusal(
        c.get(b.url("/v2/t/tags/list?n=many")),
        400,
        "PAGINATION_NUMBER_INVALID",
    )
    .await;
}

#[tokio::test]
async fn catalog_is_paginated() {
    let b = Berth::start().await;
    let c = client();
    for repo in ["c/three", "a/one", "b/two"] {
        push_blob(&c, &b, repo, repo.as_bytes()).await;
    }
    let all: Value = c
        .get(b.url("/v2/_catalog"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        all["repositories"],
        serde_json::json!(["a/one", "b/two", "c/three"])
    );
    let r = c.get(b.url("/v2/_catalog?n=1")).send().await.unwrap();
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?n=1&last=a%2Fone>; rel=\"next\""
    );
    let r = c
        .get(b.url("/v2/_catalog?n=1&last=a%2Fone"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["repositories"],
        serde_json::json!(["b/two"])
    );
    expect_refusal(
        c.get(b.url("/v2/_catalog?n=x")),
        400,
        "PAGINATION_NUMBER_INVALID",
    )
    .await;
}

#[tokio::test]
async fn referrers_api() {
    let b = Berth::start().await;
    let c = client();
    let (subject_m, subject) = push_image(&c, &b, "ref", "v1", "subject").await;
    let empty = push_blob(&c, &b, "ref", b"{}").await;
    let sbom = push_blob(&c, &b, "ref", b"sbom contents").await;
    let subject_desc = format!(
        r#""subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":{}}},"#,
        subject_m.len()
    );
    // Artifact type from the artifactType field, and from the config's media type.
    let a = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sbom",{subject_desc}"config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[{{"mediaType":"text/plain","digest":"{sbom}","size":13}}],"annotations":{{"org.example":"a"}}}}"#
    );
    let bm = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",{subject_desc}"config":{{"mediaType":"application/vnd.example.signature","digest":"{empty}","size":2}},"layers":[],"annotations":{{"org.example":"b"}}}}"#
    );
    for body in [&a, &bm] {
        let d = sha256(body.as_bytes());
        let r = c
            .put(b.url(&format!("/v2/ref/manifests/{d}")))
            .header("content-type", OCI_MANIFEST)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        assert_eq!(header(&r, "oci-subject"), subject.as_str());
    }
    // A referrer whose subject was never pushed is accepted and listed.
    let ghost = sha256(b"ghost subject");
    let c_body = a.replace(subject.as_str(), ghost.as_str());
    let r = c
        .put(b.url("/v2/ref/manifests/ghost"))
        .header("content-type", OCI_MANIFEST)
        .body(c_body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "oci-subject"), ghost.as_str());

    let r = c
        .get(b.url(&format!("/v2/ref/referrers/{subject}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    assert!(r.headers().get("oci-filters-applied").is_none());
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let by_type = |t: &str| {
        entries
            .iter()
            .find(|e| e["artifactType"] == t)
            .unwrap()
            .clone()
    };
    let sbom_entry = by_type("application/vnd.example.sbom");
    assert_eq!(sbom_entry["digest"], sha256(a.as_bytes()).as_str());
    assert_eq!(sbom_entry["size"], a.len());
    assert_eq!(sbom_entry["mediaType"], OCI_MANIFEST);
    assert_eq!(sbom_entry["annotations"]["org.example"], "a");
    assert_eq!(
        by_type("application/vnd.example.signature")["annotations"]["org.example"],
        "b"
    );

    let r = c
        .get(b.url(&format!(
            "/v2/ref/referrers/{subject}?artifactType=application/vnd.example.signature"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let filtered: Value = r.json().await.unwrap();
    assert_eq!(filtered["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        filtered["manifests"][0]["digest"],
        sha256(bm.as_bytes()).as_str()
    );

    let r = c
        .get(b.url(&format!("/v2/ref/referrers/{ghost}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["manifests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Nothing refers to it, or the repository does not exist: an empty index, never 404.
    for path in [
        format!("/v2/ref/referrers/{}", sha256(b"none")),
        format!("/v2/nope/referrers/{subject}"),
    ] {
        let r = c.get(b.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap()["manifests"],
            serde_json::json!([])
        );
    }
    expect_refusal(
        c.get(b.url("/v2/ref/referrers/sha256:nope")),
        400,
        "DIGEST_INVALID",
    )
    .await;
}

#[tokio::test]
async fn content_management() {
    let b = Berth::start().await;
    let c = client();
    let (m, d) = push_image(&c, &b, "cm", "v1", "cm").await;
    c.put(b.url("/v2/cm/manifests/v2"))
        .header("content-type", OCI_MANIFEST)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    // Deleting a tag removes only the tag.
    assert_eq!(status_of(c.delete(b.url("/v2/cm/manifests/v1"))).await, 202);
    expect_refusal(c.get(b.url("/v2/cm/manifests/v1")), 404, "MANIFEST_UNKNOWN").await;
    assert_eq!(
        status_of(c.get(b.url(&format!("/v2/cm/manifests/{d}")))).await,
        200
    );
    expect_refusal(
        c.delete(b.url("/v2/cm/manifests/v1")),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_refusal(c.delete(b.url("/v2/cm/manifests/.bad")), 400, "TAG_INVALID").await;
    expect_refusal(
        c.delete(b.url("/v2/cm/manifests/sha256:bad")),
        400,
        "DIGEST_INVALID",
    )
    .await;

    // A manifest listed by an index cannot be deleted before the index.
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{}}}]}}"#,
        m.len()
    );
    let idx = sha256(index.as_bytes());
    c.put(b.url("/v2/cm/manifests/list"))
        .header("content-type", OCI_INDEX)
        .body(index)
        .send()
        .await
        .unwrap();
    let v = expect_refusal(
        c.delete(b.url(&format!("/v2/cm/manifests/{d}"))),
        405,
        "UNSUPPORTED",
    )
    .await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(idx.as_str())
    );
    // A blob a manifest uses cannot be deleted.
    let layer = sha256("layer-cm".repeat(100).as_bytes());
    expect_refusal(
        c.delete(b.url(&format!("/v2/cm/blobs/{layer}"))),
        405,
        "UNSUPPORTED",
    )
    .await;

    assert_eq!(
        status_of(c.delete(b.url(&format!("/v2/cm/manifests/{idx}")))).await,
        202
    );
    assert_eq!(
        status_of(c.delete(b.url(&format!("/v2/cm/manifests/{d}")))).await,
        202
    );
    expect_refusal(
        c.get(b.url(&format!("/v2/cm/manifests/{d}"))),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_refusal(
        c.delete(b.url(&format!("/v2/cm/manifests/{d}"))),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    // Its remaining tag went with it.
    let tags: Value = c
        .get(b.url("/v2/cm/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!([]));
    // Now the blob can go.
    assert_eq!(
        status_of(c.delete(b.url(&format!("/v2/cm/blobs/{layer}")))).await,
        202
    );
    expect_refusal(
        c.get(b.url(&format!("/v2/cm/blobs/{layer}"))),
        404,
        "BLOB_UNKNOWN",
    )
    .await;
    expect_refusal(
        c.delete(b.url(&format!("/v2/cm/blobs/{layer}"))),
        404,
        "BLOB_UNKNOWN",
    )
    .await;
    expect_refusal(
        c.delete(b.url("/v2/cm/blobs/sha256:bad")),
        400,
        "DIGEST_INVALID",
    )
    .await;
}

#[tokio::test]
async fn blob_range_reads() {
    let b = Berth::start().await;
    let c = client();
    let data = support::random_bytes(10_000, 11);
    let d = push_blob(&c, &b, "rg", &data).await;
    let get = |range: &str| {
        c.get(b.url(&format!("/v2/rg/blobs/{d}")))
            .header("range", range.to_owned())
            .send()
    };
    for (range, start, end) in [
        ("bytes=0-99", 0, 100),
        ("bytes=9990-", 9990, 10_000),
        ("bytes=-10", 9990, 10_000),
        ("bytes=5000-99999", 5000, 10_000),
    ] {
        let r = get(range).await.unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes {start}-{}/10000", end - 1)
        );
        assert_eq!(header(&r, "content-length"), (end - start).to_string());
        assert_eq!(r.bytes().await.unwrap(), &data[start..end], "{range}");
    }
    for bad in ["bytes=10000-", "bytes=50-10", "bytes=abc", "bytes=-0"] {
        let r = get(bad).await.unwrap();
        assert_eq!(header(&r, "content-range"), "bytes */10000", "{bad}");
        expect_error(r, 416, "RANGE_INVALID").await;
    }
    // Other units and multiple ranges are ignored: the whole blob.
    for ignored in ["items=0-1", "bytes=0-1,5-6"] {
        let r = get(ignored).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().len(), 10_000);
    }
}
