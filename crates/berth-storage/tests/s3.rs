//! The S3 driver against a real Ceph RGW, what only S3 has: uploads in parts of every size,
//! commit by server-side copy and by multipart assembly, ranges across parts, presigned URLs,
//! key prefixes, a missing bucket and wrong credentials. One RGW serves every case (it takes
//! ~15 s to start). What every driver does is in `drivers.rs`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use berth_core::{Digest, DigestAlgorithm, DigestHasher, UploadHasher};
use berth_storage::{
    BlobPage, BlobStore, ByteStream, LocalLocks, S3Settings, S3Store, StorageError, UploadLocks,
};
use berth_testkit::CephRgw;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256(data: &[u8]) -> Digest {
    DigestHasher::digest_of(DigestAlgorithm::Sha256, data)
}

fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
    futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed()
}

async fn read(store: &S3Store, d: &Digest, range: std::ops::Range<u64>) -> Vec<u8> {
    let parts: Vec<Bytes> = store
        .read(d, range)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    parts.concat()
}

/// Waits until the upload's lease, given up in the background by a dropped writer, is free.
async fn writer(store: &S3Store, id: &str) -> Box<dyn berth_storage::UploadWriter> {
    for _ in 0..100 {
        match store.upload_writer(id).await {
            Err(StorageError::Busy { .. }) => tokio::time::sleep(Duration::from_millis(10)).await,
            other => return other.unwrap(),
        }
    }
    panic!("upload {id} stayed busy");
}

/// Appends `chunks` (each its own PATCH) and commits; returns the digest and what a reader gets.
async fn upload(store: &S3Store, id: &str, chunks: &[Vec<u8>]) -> (Digest, Vec<u8>) {
    store.start_upload(id).await.unwrap();
    let mut offset = 0;
    let mut hasher = UploadHasher::default();
    for chunk in chunks {
        let mut w = writer(store, id).await;
        let appended = w
            .append(offset, hasher, body(vec![chunk.clone()]))
            .await
            .unwrap();
        assert_eq!(appended.written, chunk.len() as u64);
        assert!(appended.interrupted.is_none());
        hasher = appended.hasher;
        offset += appended.written;
    }
    let all = chunks.concat();
    let d = sha256(&all);
    assert_eq!(hasher.digest(), d, "the running hash covers every byte");
    writer(store, id).await.commit(&d, offset).await.unwrap();
    (d.clone(), read(store, &d, 0..offset).await)
}

#[tokio::test]
async fn local_leases_expire_and_belong_to_their_holder() {
    let locks = LocalLocks::default();
    let short = Duration::from_millis(100);
    assert!(locks.lock("u", "a", short).await.unwrap());
    assert!(!locks.lock("u", "b", short).await.unwrap());
    assert!(locks.lock("u", "a", short).await.unwrap(), "renewed");
    locks.unlock("u", "b").await;
    assert!(
        !locks.lock("u", "b", short).await.unwrap(),
        "only the holder unlocks"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        locks.lock("u", "b", short).await.unwrap(),
        "taken over after expiry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_s3_driver_against_ceph_rgw() {
    let rgw = tokio::task::spawn_blocking(CephRgw::start).await.unwrap();
    let settings = S3Settings {
        endpoint: Some(rgw.endpoint.clone()),
        region: "default".into(),
        bucket: "registry".into(),
        prefix: "berth/".into(),
        path_style: true,
        credentials: Some((rgw.access_key.clone(), rgw.secret_key.clone(), None)),
        part_size: 5 << 20,
        writer_lease: Duration::from_secs(2),
        redirect: None,
    };
    let locks: Arc<LocalLocks> = Arc::new(LocalLocks::default());
    let store = S3Store::new(&settings, locks.clone()).unwrap();

    // A missing bucket is reported as such; then it is created.
    let missing = store.check().await.unwrap_err().to_string();
    assert!(missing.contains("does not exist"), "{missing}");
    let admin = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("default"))
            .endpoint_url(&rgw.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                &rgw.access_key,
                &rgw.secret_key,
                None,
                None,
                "test",
            ))
            .build(),
    );
    admin
        .create_bucket()
        .bucket("registry")
        .send()
        .await
        .unwrap();
    store.check().await.unwrap();
    // Wrong credentials are refused; a part size below S3's minimum is refused.
    let wrong = S3Store::new(
        &S3Settings {
            credentials: Some((rgw.access_key.clone(), "wrong".into(), None)),
            ..settings.clone()
        },
        locks.clone(),
    )
    .unwrap();
    assert!(wrong.check().await.is_err());
    assert!(
        S3Store::new(
            &S3Settings {
                part_size: 1 << 20,
                ..settings.clone()
            },
            locks.clone()
        )
        .is_err()
    );

    // Sizes: small appends, one part, a large stream split into parts, many small parts,
    // small parts around a large one, nothing.
    let mb = 1 << 20;
    for (id, chunks) in [
        ("small", vec![b"hello ".to_vec(), b"world".to_vec()]),
        ("one-part", vec![random(3 * mb, 1)]),
        ("large-stream", vec![random(12 * mb + 5, 2)]),
        ("many-small", (0..7).map(|i| random(mb, 10 + i)).collect()),
        (
            "mixed",
            vec![random(mb, 20), random(6 * mb, 21), random(mb, 22)],
        ),
        ("empty", vec![]),
    ] {
        let (d, back) = upload(&store, id, &chunks).await;
        assert!(back == chunks.concat(), "{id}: blob differs");
        assert_eq!(sha256(&back), d, "{id}");
        assert!(
            matches!(
                store.upload_writer(id).await,
                Err(StorageError::NotFound { .. })
            ),
            "{id}: the upload is gone once committed"
        );
    }
    // Presigned downloads: only when asked for; the URL serves the blob to anyone holding it.
    assert_eq!(
        store.download_url(&sha256(b"hello world")).await.unwrap(),
        None
    );
    let presigning = S3Store::new(
        &S3Settings {
            redirect: Some(Duration::from_secs(60)),
            ..settings.clone()
        },
        locks.clone(),
    )
    .unwrap();
    let url = presigning
        .download_url(&sha256(b"hello world"))
        .await
        .unwrap()
        .unwrap();
    let fetched = berth_testkit::run(std::process::Command::new("curl").args(["-sf", &url]));
    assert_eq!(fetched, "hello world");
    // Ranges, across part boundaries.
    let data = random(12 * mb + 5, 2);
    let d = sha256(&data);
    let five = 5 * mb as u64;
    for range in [0..1, five - 3..five + 3, 12 * mb as u64..12 * mb as u64 + 5] {
        let expected = &data[range.start as usize..range.end as usize];
        assert!(
            read(&store, &d, range.clone()).await == expected,
            "{range:?}"
        );
    }

    // Another prefix in the same bucket is another store: it lists none of these blobs, and
    // deleting through it leaves them alone.
    let other = S3Store::new(
        &S3Settings {
            prefix: "other/".into(),
            ..settings.clone()
        },
        locks.clone(),
    )
    .unwrap();
    assert_eq!(
        other.list_blobs(None, 100).await.unwrap(),
        BlobPage::default()
    );
    other.delete_blobs(std::slice::from_ref(&d)).await.unwrap();
    assert_eq!(other.stat_blob(&d).await.unwrap(), None);
    let listed = store.list_blobs(None, 100).await.unwrap();
    assert_eq!(listed.blobs.len(), 6, "{listed:?}");
    assert_eq!(listed.next, None);
    let info = store.stat_blob(&d).await.unwrap().unwrap();
    assert_eq!(info.size, 12 * mb as u64 + 5, "assembled from parts");
    assert!(
        listed
            .blobs
            .iter()
            .any(|b| (&b.digest, b.size) == (&d, info.size)),
        "{listed:?}"
    );
}
