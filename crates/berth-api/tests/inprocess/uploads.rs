//! Blob uploads on `/v2` (with the administrator's Basic credentials): chunk order, digest
//! verification, single-request uploads, and who may upload.

use axum::http::{Method, StatusCode};
use berth_core::{Digest, DigestAlgorithm, DigestHasher};

use crate::client::{API, Client, EXTERNAL_URL, Reply, SERVICE, TestApp};

const REPO: &str = "library/app";

fn sha256(data: &[u8]) -> Digest {
    DigestHasher::digest_of(DigestAlgorithm::Sha256, data)
}

/// Opens an upload session in [`REPO`]; returns its `Location` and id.
async fn start_session(who: &Client<'_>) -> (String, String) {
    let reply = who
        .send(
            Method::POST,
            &format!("/v2/{REPO}/blobs/uploads/"),
            &[],
            Vec::new(),
        )
        .await;
    reply.expect(StatusCode::ACCEPTED);
    let location = reply.header("location").to_owned();
    let id = location
        .strip_prefix(&format!("/v2/{REPO}/blobs/uploads/"))
        .unwrap_or_else(|| panic!("Location {location:?}"))
        .to_owned();
    assert!(!id.is_empty(), "{location}");
    assert_eq!(reply.header("range"), "0-0");
    assert_eq!(reply.header("docker-upload-uuid"), id);
    (location, id)
}

/// `PATCH location` with a chunk and its `Content-Range`.
async fn patch_range(who: &Client<'_>, location: &str, range: &str, chunk: &[u8]) -> Reply {
    who.send(
        Method::PATCH,
        location,
        &[("content-range", range)],
        chunk.to_vec(),
    )
    .await
}

/// Asserts the session headers of a refused chunk: where to continue, and what was received.
#[track_caller]
fn assert_session_headers(reply: &Reply, location: &str, id: &str, range: &str) {
    assert_eq!(reply.header("location"), location);
    assert_eq!(reply.header("range"), range);
    assert_eq!(reply.header("docker-upload-uuid"), id);
}

#[tokio::test]
async fn a_chunk_must_start_where_the_session_ends() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    let (location, id) = start_session(&admin).await;
    let data = b"0123456789abcdef";

    // The first chunk must start at 0.
    let refused = patch_range(&admin, &location, "5-9", &data[5..10]).await;
    assert_eq!(
        refused.oci_error(StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID"),
        "chunk starts at byte 5, but the upload has 0 bytes: send the chunk that starts at 0"
    );
    assert_session_headers(&refused, &location, &id, "0-0");
    let status = admin.get(&location).await;
    status.expect(StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-0", "nothing was stored");

    // In order, it is accepted; an overlapping chunk is refused with the session's size.
    patch_range(&admin, &location, "0-4", &data[..5])
        .await
        .expect(StatusCode::ACCEPTED);
    let refused = patch_range(&admin, &location, "2-6", &data[2..7]).await;
    assert_eq!(
        refused.oci_error(StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID"),
        "chunk starts at byte 2, but the upload has 5 bytes: send the chunk that starts at 5"
    );
    assert_session_headers(&refused, &location, &id, "0-4");
    // A malformed range is refused the same way.
    let refused = patch_range(&admin, &location, "five-nine", &data[5..10]).await;
    refused.oci_error(StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID");
    assert_session_headers(&refused, &location, &id, "0-4");

    // The rest, then the finish: the blob is the bytes sent in order.
    let accepted = patch_range(&admin, &location, "5-15", &data[5..]).await;
    accepted.expect(StatusCode::ACCEPTED);
    assert_eq!(accepted.header("range"), "0-15");
    let digest = sha256(data);
    admin
        .send(
            Method::PUT,
            &format!("{location}?digest={digest}"),
            &[],
            Vec::new(),
        )
        .await
        .expect(StatusCode::CREATED);
    let blob = admin.get(&format!("/v2/{REPO}/blobs/{digest}")).await;
    blob.expect(StatusCode::OK);
    assert_eq!(&blob.bytes[..], data);
}

#[tokio::test]
async fn a_wrong_digest_discards_the_session() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    let (location, _) = start_session(&admin).await;
    let sent = b"the bytes that were sent";
    let accepted = admin
        .send(Method::PATCH, &location, &[], sent.to_vec())
        .await;
    accepted.expect(StatusCode::ACCEPTED);
    assert_eq!(accepted.header("range"), format!("0-{}", sent.len() - 1));

    // A malformed digest is refused and leaves the session usable.
    admin
        .send(
            Method::PUT,
            &format!("{location}?digest=sha256:nope"),
            &[],
            Vec::new(),
        )
        .await
        .oci_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    admin.get(&location).await.expect(StatusCode::NO_CONTENT);

    // A well-formed digest of other content ends it.
    let claimed = sha256(b"what the client claims");
    let actual = sha256(sent);
    let refused = admin
        .send(
            Method::PUT,
            &format!("{location}?digest={claimed}"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        refused.oci_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
        format!(
            "the uploaded content ({} bytes) has digest {actual}, not {claimed}; the upload was discarded",
            sent.len()
        )
    );
    assert_eq!(
        refused.body["errors"][0]["detail"],
        serde_json::json!({"expected": claimed.as_str(), "actual": actual.as_str(), "size": sent.len()})
    );
    admin
        .get(&location)
        .await
        .oci_error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN");
    admin
        .send(
            Method::PUT,
            &format!("{location}?digest={actual}"),
            &[],
            Vec::new(),
        )
        .await
        .oci_error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN");
    // Neither digest became a blob, and nothing of the session is left in storage.
    for digest in [&claimed, &actual] {
        admin
            .get(&format!("/v2/{REPO}/blobs/{digest}"))
            .await
            .oci_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN");
    }
    let uploads = std::fs::read_dir(app.dir.path().join("storage/uploads"))
        .expect("the uploads directory")
        .count();
    assert_eq!(uploads, 0, "the session's bytes are gone");
}

#[tokio::test]
async fn a_single_request_upload_creates_the_blob() {
    let app = TestApp::start().await;
    let admin = app.as_admin();
    let data = b"monolithic blob contents".to_vec();
    let digest = sha256(&data);
    let created = admin
        .send(
            Method::POST,
            &format!("/v2/{REPO}/blobs/uploads/?digest={digest}"),
            &[("content-type", "application/octet-stream")],
            data.clone(),
        )
        .await;
    created.expect(StatusCode::CREATED);
    assert_eq!(
        created.header("location"),
        format!("/v2/{REPO}/blobs/{digest}")
    );
    assert_eq!(created.header("docker-content-digest"), digest.as_str());
    let head = admin.head(&format!("/v2/{REPO}/blobs/{digest}")).await;
    head.expect(StatusCode::OK);
    assert_eq!(head.header("content-length"), data.len().to_string());
    assert_eq!(head.header("docker-content-digest"), digest.as_str());
    let blob = admin.get(&format!("/v2/{REPO}/blobs/{digest}")).await;
    blob.expect(StatusCode::OK);
    assert_eq!(blob.bytes, data);
    // Only in the repository it was pushed to.
    admin
        .get(&format!("/v2/library/other/blobs/{digest}"))
        .await
        .oci_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN");

    // A single request whose content is not its digest leaves nothing.
    let claimed = sha256(b"claimed");
    admin
        .send(
            Method::POST,
            &format!("/v2/{REPO}/blobs/uploads/?digest={claimed}"),
            &[],
            b"something else".to_vec(),
        )
        .await
        .oci_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    admin
        .head(&format!("/v2/{REPO}/blobs/{claimed}"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn uploads_need_credentials_and_push_access() {
    let app = TestApp::start().await;
    let start = format!("/v2/{REPO}/blobs/uploads/");
    let anonymous = app
        .anonymous()
        .send(Method::POST, &start, &[], Vec::new())
        .await;
    assert_eq!(
        anonymous.oci_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        "authentication required"
    );
    assert_eq!(
        anonymous.header("www-authenticate"),
        format!(
            "Bearer realm=\"{EXTERNAL_URL}/service/token\",service=\"{SERVICE}\",scope=\"repository:{REPO}:pull,push\""
        )
    );
    // A user who is not a member of the (public) project may pull but not push.
    app.as_admin().create_user("alice", "Alice-pass-1").await;
    let alice = app.as_user("alice", "Alice-pass-1");
    let denied = alice.send(Method::POST, &start, &[], Vec::new()).await;
    assert_eq!(
        denied.oci_error(StatusCode::FORBIDDEN, "DENIED"),
        "requested access to the resource is denied: alice is not a member of project library"
    );
    // As a developer of the project, the same request opens a session.
    let library = app.as_admin().get(&format!("{API}/projects/library")).await;
    library.expect(StatusCode::OK);
    let library_id = library.body["project_id"].as_i64().expect("a project id");
    app.as_admin().add_member(library_id, "alice", 2).await;
    start_session(&alice).await;
}
