//! Purging abandoned uploads against the real SQLite store and filesystem driver.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use berth_core::UploadHasher;
use berth_jobs::{PurgeReport, purge_abandoned_uploads};
use berth_meta::{MetadataStore, PoolSettings};
use berth_storage::{BlobStore, FilesystemStore};
use bytes::Bytes;
use futures_util::StreamExt;

#[tokio::test]
async fn purges_only_what_nobody_uses() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetadataStore::connect(
        &format!("sqlite://{}/m.db", dir.path().display()),
        &PoolSettings::default(),
    )
    .await
    .unwrap();
    meta.migrate().await.unwrap();
    let blobs = FilesystemStore::open(dir.path().join("storage"), false).unwrap();
    let day = Duration::from_secs(86_400);

    // A session, a session being written, a file without a session, a session without a file.
    for id in ["idle", "busy"] {
        blobs.start_upload(id).await.unwrap();
        meta.create_upload(id, "r").await.unwrap();
    }
    blobs.start_upload("orphan-file").await.unwrap();
    meta.create_upload("orphan-row", "r").await.unwrap();
    let mut writer = blobs.upload_writer("busy").await.unwrap();
    let body = futures_util::stream::iter(vec![Ok(Bytes::from_static(b"data"))]).boxed();
    writer
        .append(0, UploadHasher::default(), body)
        .await
        .unwrap();

    // Nothing is old yet.
    let now = SystemTime::now();
    assert_eq!(
        purge_abandoned_uploads(&meta, &blobs, day, now)
            .await
            .unwrap(),
        PurgeReport::default()
    );
    assert_eq!(blobs.list_uploads().await.unwrap().len(), 3);

    // Two days later: everything idle goes, the upload being written stays.
    let later = now + 2 * day;
    let report = purge_abandoned_uploads(&meta, &blobs, day, later)
        .await
        .unwrap();
    assert_eq!(
        report,
        PurgeReport {
            purged: 2,
            busy: 1,
            orphan_rows: 1
        }
    );
    let left: Vec<String> = blobs
        .list_uploads()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(left, vec!["busy"]);
    assert!(meta.upload("r", "busy").await.unwrap().is_some());
    assert!(meta.upload("r", "idle").await.unwrap().is_none());
    assert!(meta.upload("r", "orphan-row").await.unwrap().is_none());
    // Once its writer is done with it and it is idle too, it goes as well.
    drop(writer);
    let report = purge_abandoned_uploads(&meta, &blobs, day, later)
        .await
        .unwrap();
    assert_eq!(report.purged, 1);
    assert!(blobs.list_uploads().await.unwrap().is_empty());
}
