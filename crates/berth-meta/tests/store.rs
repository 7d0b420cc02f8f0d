//! The metadata store suite. Every case runs against every backend the store supports: SQLite,
//! and a private MariaDB server started for the test.

#![allow(clippy::unwrap_used)]

use berth_core::{Digest, DigestAlgorithm, DigestHasher, Reference};
use berth_meta::{
    AuditEntry, AuditField, AuditQuery, AuditTerm, AuditValue, BlobUnlink, Heartbeat, JobEnd,
    JobFilter, JobState, ManifestDelete, ManifestPut, MetadataStore, NewExecution, NewJob,
    NewManifest, Page, PoolSettings,
};

fn digest(s: &str) -> Digest {
    DigestHasher::digest_of(DigestAlgorithm::Sha256, s.as_bytes())
}

async fn sqlite() -> (tempfile::TempDir, MetadataStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/meta.db", dir.path().display());
    let store = MetadataStore::connect(&url, &PoolSettings::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    // A second migrate is a no-op (several nodes start at once).
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    (dir, store)
}

async fn mariadb() -> (berth_testkit::MariaDb, MetadataStore) {
    let db = tokio::task::spawn_blocking(berth_testkit::MariaDb::start)
        .await
        .unwrap();
    let url = db.database("berth");
    let store = MetadataStore::connect(&url, &PoolSettings::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    (db, store)
}

/// Runs a case on every backend, as `<case>::sqlite` and `<case>::mariadb`.
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test]
            async fn sqlite() {
                let (_dir, s) = super::sqlite().await;
                super::$case(&s).await;
            }

            #[tokio::test]
            async fn mariadb() {
                let (_db, s) = super::mariadb().await;
                super::$case(&s).await;
            }
        }
    )*};
}

on_every_backend!(
    blobs_link_mount_and_unlink,
    manifests_check_references_and_tags,
    referrers_by_subject_and_artifact_type,
    upload_sessions_record_and_finish,
    users_projects_members_and_keys,
    project_listings_follow_visibility_and_deletion_cleans_up,
    job_leases_go_to_one_holder_at_a_time,
    cluster_secrets_are_the_first_stored,
    audit_entries_commit_with_their_change,
    audit_log_queries_purges_and_forgets,
    jobs_are_claimed_once_and_fenced,
    schedules_fire_once_per_occurrence,
    settings_are_stored_with_their_audit_entry,
    listings_count_an_index_with_its_children_and_referrers_under_subjects,
);

/// The lookup cache, as deployments use it: a single node caching in process (writes and reads
/// through one store), and two nodes sharing MariaDB and a Redis cache (writes through one,
/// reads through the other), and two nodes without Redis (nothing cached).
mod lookups {
    use std::time::Duration;

    use berth_meta::{MetadataStore, PoolSettings};

    const TTL: Duration = Duration::from_secs(300);

    #[tokio::test]
    async fn in_process() {
        let (_dir, s) = super::sqlite().await;
        let s = s.cache_in_process(TTL);
        assert_eq!(s.cache_place(), "in process");
        super::lookups_follow_every_write(&s, &s).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn in_redis_across_nodes() {
        let (db, writer) = super::mariadb().await;
        let redis = tokio::task::spawn_blocking(berth_testkit::Redis::start)
            .await
            .unwrap();
        let spec = berth_shared::RedisSpec::parse(&redis.url()).unwrap();
        let reader = MetadataStore::connect(&db.url("berth"), &PoolSettings::default())
            .await
            .unwrap()
            .cache_in_redis(TTL);
        assert!(reader.cache_place().contains("not connected"));
        let writer = writer.cache_in_redis(TTL);
        for s in [&reader, &writer] {
            s.share_cache(berth_shared::Shared::connect(&spec).await.unwrap());
            assert_eq!(s.cache_place(), "redis");
        }
        super::lookups_follow_every_write(&writer, &reader).await;
        super::lookups_follow_every_write(&reader, &reader).await;
        // Redis gone: reads go to the database and stay right; writes still succeed.
        redis.server.kill();
        super::lookups_follow_every_write(&writer, &reader).await;
    }

    #[tokio::test]
    async fn nowhere_across_nodes() {
        let (db, writer) = super::mariadb().await;
        let reader = MetadataStore::connect(&db.url("berth"), &PoolSettings::default())
            .await
            .unwrap();
        assert_eq!(reader.cache_place(), "none");
        super::lookups_follow_every_write(&writer, &reader).await;
    }
}

/// Reads through `r` after every kind of write through `w` see the write at once, with the
/// reads repeated so that the second comes from the cache where there is one.
async fn lookups_follow_every_write(w: &MetadataStore, r: &MetadataStore) {
    use berth_meta::{ProjectDelete, TagCreate};
    let repo = format!("cached/app-{}", uuid_like());
    let repo = repo.as_str();
    let tag = |t: &str| t.parse::<Reference>().unwrap();
    async fn seen(r: &MetadataStore, repo: &str, reference: &Reference) -> Option<String> {
        let first = r.manifest(repo, reference).await.unwrap().map(|m| m.digest);
        let again = r.manifest(repo, reference).await.unwrap().map(|m| m.digest);
        assert_eq!(first, again);
        first
    }
    async fn tags(r: &MetadataStore, repo: &str) -> Option<Vec<String>> {
        let first = r
            .list_tags(repo, None, None)
            .await
            .unwrap()
            .map(|t| t.to_vec());
        let again = r.list_tags(repo, None, None).await.unwrap();
        assert_eq!(first, again.map(|t| t.to_vec()));
        if let Some(all) = &first {
            // Pages cut from the (cached) list agree with it.
            let page = r
                .list_tags(repo, all.first().map(String::as_str), Some(1))
                .await
                .unwrap();
            assert_eq!(
                page.unwrap().to_vec(),
                all.iter().skip(1).take(1).cloned().collect::<Vec<_>>()
            );
        }
        first
    }
    async fn size(r: &MetadataStore, repo: &str, d: &Digest) -> Option<u64> {
        let first = r.repository_blob(repo, d).await.unwrap();
        assert_eq!(first, r.repository_blob(repo, d).await.unwrap());
        first
    }
    let (a, b, layer) = (
        digest(&format!("{repo}a")),
        digest(&format!("{repo}b")),
        digest(repo),
    );
    w.link_blob(repo, &layer, 7, None).await.unwrap();
    assert_eq!(size(r, repo, &layer).await, Some(7));
    w.put_manifest(repo, &manifest(&a, vec![(&layer, 7)], Some("v1")))
        .await
        .unwrap();
    assert_eq!(seen(r, repo, &tag("v1")).await, Some(a.to_string()));
    assert_eq!(tags(r, repo).await.unwrap(), ["v1"]);
    let by_digest = r
        .manifest(repo, &Reference::Digest(a.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (by_digest.media_type.as_str(), by_digest.content.as_slice()),
        ("application/vnd.oci.image.manifest.v1+json", &b"{}"[..])
    );
    assert_eq!(
        r.manifest(repo, &Reference::Digest(a.clone()))
            .await
            .unwrap()
            .unwrap()
            .content,
        b"{}"
    );
    // The tag moves.
    w.put_manifest(repo, &manifest(&b, vec![(&layer, 7)], Some("v1")))
        .await
        .unwrap();
    assert_eq!(seen(r, repo, &tag("v1")).await, Some(b.to_string()));
    // A new tag (never a move) and a deleted one.
    assert_eq!(
        w.create_tag(repo, "v2", a.as_str()).await.unwrap(),
        TagCreate::Created
    );
    assert_eq!(seen(r, repo, &tag("v2")).await, Some(a.to_string()));
    assert_eq!(tags(r, repo).await.unwrap(), ["v1", "v2"]);
    assert!(w.delete_tag(repo, "v2").await.unwrap());
    assert_eq!(seen(r, repo, &tag("v2")).await, None);
    assert_eq!(tags(r, repo).await.unwrap(), ["v1"]);
    // Deleting a manifest takes its tags; its digest no longer resolves.
    assert_eq!(
        seen(r, repo, &Reference::Digest(b.clone())).await,
        Some(b.to_string())
    );
    assert_eq!(
        w.delete_manifest(repo, &b).await.unwrap(),
        ManifestDelete::Deleted
    );
    assert_eq!(seen(r, repo, &tag("v1")).await, None);
    assert_eq!(seen(r, repo, &Reference::Digest(b.clone())).await, None);
    assert_eq!(tags(r, repo).await.unwrap(), Vec::<String>::new());
    // An unlinked blob is gone.
    assert_eq!(
        w.delete_manifest(repo, &a).await.unwrap(),
        ManifestDelete::Deleted
    );
    assert_eq!(size(r, repo, &layer).await, Some(7));
    assert_eq!(
        w.unlink_blob(repo, &layer).await.unwrap(),
        BlobUnlink::Unlinked
    );
    assert_eq!(size(r, repo, &layer).await, None);
    // A deleted repository.
    w.link_blob(repo, &layer, 7, None).await.unwrap();
    w.put_manifest(repo, &manifest(&a, vec![(&layer, 7)], Some("v3")))
        .await
        .unwrap();
    assert_eq!(seen(r, repo, &tag("v3")).await, Some(a.to_string()));
    assert_eq!(size(r, repo, &layer).await, Some(7));
    assert_eq!(tags(r, repo).await.unwrap(), ["v3"]);
    assert!(w.delete_repository(repo).await.unwrap());
    assert_eq!(seen(r, repo, &tag("v3")).await, None);
    assert_eq!(tags(r, repo).await, None);
    assert_eq!(size(r, repo, &layer).await, None);
    // A deleted project takes its (empty) repositories' blob links.
    let project = format!("proj-{}", uuid_like());
    let in_project = format!("{project}/app");
    let id = w
        .create_project(&project, false, None)
        .await
        .unwrap()
        .unwrap();
    w.link_blob(&in_project, &layer, 7, None).await.unwrap();
    assert_eq!(size(r, &in_project, &layer).await, Some(7));
    assert_eq!(w.delete_project(id).await.unwrap(), ProjectDelete::Deleted);
    assert_eq!(size(r, &in_project, &layer).await, None);
}

/// A name part unique to this run (several cases share a Redis).
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn manifest<'a>(
    d: &'a Digest,
    blobs: Vec<(&'a Digest, u64)>,
    tag: Option<&'a str>,
) -> NewManifest<'a> {
    NewManifest {
        digest: d,
        media_type: "application/vnd.oci.image.manifest.v1+json",
        artifact_type: None,
        subject: None,
        annotations: None,
        content: b"{}",
        blobs,
        manifests: Vec::new(),
        tag,
    }
}

async fn blobs_link_mount_and_unlink(s: &MetadataStore) {
    let a = digest("a");
    assert_eq!(s.repository_blob("lib/x", &a).await.unwrap(), None);
    s.link_blob("lib/x", &a, 1, None).await.unwrap();
    assert_eq!(s.repository_blob("lib/x", &a).await.unwrap(), Some(1));
    assert_eq!(s.repository_blob("lib/y", &a).await.unwrap(), None);
    // Mount from a repository that does not hold it: nothing, and no repository is created.
    assert!(!s.mount_blob("lib/z", &a, Some("lib/nope")).await.unwrap());
    assert_eq!(s.list_repositories(None, 10).await.unwrap(), vec!["lib/x"]);
    assert!(s.mount_blob("lib/y", &a, Some("lib/x")).await.unwrap());
    assert!(s.mount_blob("lib/w", &a, None).await.unwrap());
    assert!(!s.mount_blob("lib/w", &digest("other"), None).await.unwrap());
    assert_eq!(s.repository_blob("lib/y", &a).await.unwrap(), Some(1));
    assert_eq!(
        s.list_repositories(Some("lib/w"), 1).await.unwrap(),
        vec!["lib/x"]
    );
    // A blob a manifest uses cannot be unlinked; once the manifest is gone it can.
    let m = digest("m");
    assert_eq!(
        s.put_manifest("lib/x", &manifest(&m, vec![(&a, 1)], None))
            .await
            .unwrap(),
        ManifestPut::Stored
    );
    assert_eq!(
        s.unlink_blob("lib/x", &a).await.unwrap(),
        BlobUnlink::ReferencedBy(m.to_string())
    );
    assert_eq!(
        s.delete_manifest("lib/x", &m).await.unwrap(),
        ManifestDelete::Deleted
    );
    assert_eq!(
        s.unlink_blob("lib/x", &a).await.unwrap(),
        BlobUnlink::Unlinked
    );
    assert_eq!(
        s.unlink_blob("lib/x", &a).await.unwrap(),
        BlobUnlink::Unknown
    );
    assert_eq!(
        s.unlink_blob("nope", &a).await.unwrap(),
        BlobUnlink::Unknown
    );
}

async fn manifests_check_references_and_tags(s: &MetadataStore) {
    let (cfg, layer, m) = (digest("cfg"), digest("layer"), digest("m"));
    s.link_blob("r", &cfg, 3, None).await.unwrap();
    assert_eq!(
        s.put_manifest("r", &manifest(&m, vec![(&cfg, 3), (&layer, 5)], Some("v1")))
            .await
            .unwrap(),
        ManifestPut::MissingReference(layer.clone())
    );
    s.link_blob("r", &layer, 5, None).await.unwrap();
    assert_eq!(
        s.put_manifest("r", &manifest(&m, vec![(&cfg, 4)], None))
            .await
            .unwrap(),
        ManifestPut::SizeMismatch {
            digest: cfg.clone(),
            declared: 4,
            actual: 3
        }
    );
    assert_eq!(
        s.put_manifest("r", &manifest(&m, vec![(&cfg, 3), (&layer, 5)], Some("v1")))
            .await
            .unwrap(),
        ManifestPut::Stored
    );
    // Idempotent, and a second tag.
    assert_eq!(
        s.put_manifest("r", &manifest(&m, vec![(&cfg, 3), (&layer, 5)], Some("v2")))
            .await
            .unwrap(),
        ManifestPut::Stored
    );
    let by_tag = s
        .manifest("r", &"v1".parse::<Reference>().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_tag.digest, m.to_string());
    assert_eq!(by_tag.content, b"{}");
    let by_digest = s
        .manifest("r", &Reference::Digest(m.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        by_digest.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(
        s.manifest("other", &Reference::Digest(m.clone()))
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(
        s.list_tags("r", None, None)
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
        vec!["v1", "v2"]
    );
    assert_eq!(
        s.list_tags("r", Some("v1"), Some(5))
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
        vec!["v2"]
    );
    assert_eq!(
        s.list_tags("r", None, Some(1))
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
        vec!["v1"]
    );
    assert!(
        s.list_tags("r", None, Some(0))
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    assert!(s.list_tags("missing", None, None).await.unwrap().is_none());

    // An index pins its children.
    let idx = digest("idx");
    let mut index = manifest(&idx, Vec::new(), Some("multi"));
    index.media_type = "application/vnd.oci.image.index.v1+json";
    index.manifests = vec![(&m, 2)];
    assert_eq!(
        s.put_manifest("r", &index).await.unwrap(),
        ManifestPut::Stored
    );
    assert_eq!(
        s.delete_manifest("r", &m).await.unwrap(),
        ManifestDelete::ReferencedBy(idx.to_string())
    );
    assert!(s.delete_tag("r", "v1").await.unwrap());
    assert!(!s.delete_tag("r", "v1").await.unwrap());
    assert_eq!(
        s.delete_manifest("r", &idx).await.unwrap(),
        ManifestDelete::Deleted
    );
    assert_eq!(
        s.delete_manifest("r", &m).await.unwrap(),
        ManifestDelete::Deleted
    );
    assert_eq!(
        s.delete_manifest("r", &m).await.unwrap(),
        ManifestDelete::Unknown
    );
    // Deleting the manifest removed its remaining tag.
    assert!(
        s.list_tags("r", None, None)
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
}

async fn referrers_by_subject_and_artifact_type(s: &MetadataStore) {
    let subject = digest("subject");
    let (a, b) = (digest("a"), digest("b"));
    for (d, t) in [(&a, "application/x-sbom"), (&b, "application/x-sig")] {
        let mut m = manifest(d, Vec::new(), None);
        m.subject = Some(&subject);
        m.artifact_type = Some(t);
        m.annotations = Some(r#"{"k":"v"}"#.to_owned());
        assert_eq!(s.put_manifest("r", &m).await.unwrap(), ManifestPut::Stored);
    }
    let all = s.referrers("r", &subject, None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].annotations.as_deref(), Some(r#"{"k":"v"}"#));
    let sigs = s
        .referrers("r", &subject, Some("application/x-sig"))
        .await
        .unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].digest, b.to_string());
    assert!(
        s.referrers("other", &subject, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn upload_sessions_record_and_finish(s: &MetadataStore) {
    s.create_upload("u1", "r").await.unwrap();
    assert!(s.upload("other", "u1").await.unwrap().is_none());
    let u = s.upload("r", "u1").await.unwrap().unwrap();
    assert_eq!((u.size, u.hash_state.clone()), (0, None));
    assert!(s.record_upload("u1", 0, 5, Some(b"state")).await.unwrap());
    // A writer that started from a stale size records nothing.
    assert!(!s.record_upload("u1", 0, 9, Some(b"other")).await.unwrap());
    let u = s.upload("r", "u1").await.unwrap().unwrap();
    assert_eq!((u.size, u.hash_state.as_deref()), (5, Some(&b"state"[..])));
    assert!(s.record_upload("u1", 5, 7, None).await.unwrap());
    assert_eq!(s.upload("r", "u1").await.unwrap().unwrap().hash_state, None);
    let d = digest("blob");
    s.link_blob("r", &d, 7, Some("u1")).await.unwrap();
    assert!(s.upload("r", "u1").await.unwrap().is_none());
    assert!(!s.record_upload("u1", 7, 8, None).await.unwrap());
    assert_eq!(s.repository_blob("r", &d).await.unwrap(), Some(7));
    s.create_upload("u2", "r").await.unwrap();
    assert!(s.upload_updated_at("u2").await.unwrap().is_some());
    assert!(s.upload_updated_at("u1").await.unwrap().is_none());
    assert!(s.delete_upload("r", "u2").await.unwrap());
    assert!(!s.delete_upload("r", "u2").await.unwrap());
    s.create_upload("u3", "r").await.unwrap();
    assert!(s.forget_upload("u3").await.unwrap());
    assert!(!s.forget_upload("u3").await.unwrap());
}

#[tokio::test]
async fn unsupported_url_is_reported() {
    let err = MetadataStore::connect("postgres://x/y", &PoolSettings::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unsupported database URL"),
        "{err}"
    );
}

async fn users_projects_members_and_keys(s: &MetadataStore) {
    // `library` exists and is public from the start.
    let library = s.project("library").await.unwrap().unwrap();
    assert!(library.public);
    assert_eq!(s.count_users().await.unwrap(), 0);
    let alice = s
        .create_user("alice", Some("hash-a"), false)
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.create_user("alice", Some("other"), true)
            .await
            .unwrap()
            .is_none()
    );
    let u = s.user("alice").await.unwrap().unwrap();
    assert_eq!(
        (u.id, u.password_hash.as_deref(), u.sysadmin, u.disabled),
        (alice, Some("hash-a"), false, false)
    );
    assert!(s.set_password(alice, "hash-b").await.unwrap());
    assert!(!s.set_password(alice + 1000, "x").await.unwrap());
    assert_eq!(
        s.user("alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("hash-b")
    );
    assert!(s.user("nobody").await.unwrap().is_none());

    let team = s
        .create_project("team", false, None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.create_project("team", true, None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!s.project("team").await.unwrap().unwrap().public);
    assert_eq!(s.user_role(team, alice).await.unwrap(), None);
    s.set_user_role(team, alice, "guest").await.unwrap();
    s.set_user_role(team, alice, "developer").await.unwrap();
    assert_eq!(
        s.user_role(team, alice).await.unwrap().as_deref(),
        Some("developer")
    );
    assert_eq!(s.user_role(library.id, alice).await.unwrap(), None);

    let key = |kid: &str, at: i64| berth_meta::StoredKey {
        kid: kid.into(),
        private_pem: "k".into(),
        cert_pem: "c".into(),
        activates_at: at,
        retires_at: None,
    };
    s.insert_signing_key(&key("b", 20)).await.unwrap();
    s.insert_signing_key(&key("a", 10)).await.unwrap();
    s.insert_signing_key(&key("a", 99)).await.unwrap();
    let keys = s.signing_keys(0).await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (k.kid.as_str(), k.activates_at))
            .collect::<Vec<_>>(),
        [("a", 10), ("b", 20)]
    );
    assert_eq!(s.retire_signing_keys_except("b", 50).await.unwrap(), 1);
    assert_eq!(s.signing_keys(49).await.unwrap().len(), 2);
    assert_eq!(s.signing_keys(50).await.unwrap().len(), 1);
}

async fn project_listings_follow_visibility_and_deletion_cleans_up(s: &MetadataStore) {
    use berth_meta::{
        MemberEntity, NewRobot, Page, ProjectDelete, ProjectFilter, ProjectScope, RobotGrant,
        RobotWrite, RobotsOf, TagCreate,
    };
    let all = Page {
        offset: 0,
        limit: 100,
    };
    let alice = s
        .create_user("alice", Some("h"), false)
        .await
        .unwrap()
        .unwrap();
    let team = s
        .create_project("team", false, Some(alice))
        .await
        .unwrap()
        .unwrap();
    let ops = s.create_project("ops", false, None).await.unwrap().unwrap();
    s.create_project("hidden", false, None).await.unwrap();
    // The owner is the project admin.
    assert_eq!(
        s.user_role(team, alice).await.unwrap().as_deref(),
        Some("projectAdmin")
    );
    // Groups match case-insensitively.
    let group = MemberEntity::Group("CN=Ops,DC=example".into());
    let member = s.add_member(ops, &group, "guest").await.unwrap().unwrap();
    assert!(
        s.add_member(ops, &group, "developer")
            .await
            .unwrap()
            .is_none()
    );
    let names = |scope| {
        let s = s.clone();
        async move {
            let filter = ProjectFilter {
                scope,
                name: None,
                public: None,
            };
            let page = s.list_projects(&filter, all).await.unwrap();
            (
                page.items.into_iter().map(|p| p.name).collect::<Vec<_>>(),
                page.total,
            )
        }
    };
    let groups = vec!["cn=ops,dc=example".to_owned()];
    assert_eq!(
        names(ProjectScope::Member {
            user_id: alice,
            groups: &groups
        })
        .await,
        (vec!["library".into(), "ops".into(), "team".into()], 3)
    );
    assert_eq!(
        names(ProjectScope::Member {
            user_id: alice,
            groups: &[]
        })
        .await,
        (vec!["library".into(), "team".into()], 2)
    );
    let hidden = [s.project("hidden").await.unwrap().unwrap().id];
    assert_eq!(
        names(ProjectScope::Ids(&hidden)).await,
        (vec!["hidden".into(), "library".into()], 2)
    );
    assert_eq!(names(ProjectScope::Public).await.1, 1);
    assert_eq!(names(ProjectScope::All).await.1, 4);
    // Paging keeps the total.
    let filter = ProjectFilter {
        scope: ProjectScope::All,
        name: None,
        public: None,
    };
    let second = s
        .list_projects(
            &filter,
            Page {
                offset: 1,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            second.items.len(),
            second.total,
            second.items[0].name.as_str()
        ),
        (2, 4, "library")
    );
    // Members by id.
    assert!(
        s.update_member_role(ops, member, "maintainer")
            .await
            .unwrap()
    );
    assert_eq!(
        s.member(ops, member).await.unwrap().unwrap().role,
        "maintainer"
    );
    assert!(
        s.member(team, member).await.unwrap().is_none(),
        "ids are per project"
    );
    assert!(s.delete_member(ops, member).await.unwrap());
    assert!(!s.delete_member(ops, member).await.unwrap());

    // A project with content cannot be deleted; once empty it goes with its members and robots.
    let (a, m) = (digest("a"), digest("m"));
    s.link_blob("team/app", &a, 1, None).await.unwrap();
    s.put_manifest("team/app", &manifest(&m, vec![(&a, 1)], Some("v1")))
        .await
        .unwrap();
    // `team_x/…` sorts next to `team/…` but is not in the project.
    s.put_manifest("team_x/app", &manifest(&digest("n"), vec![], None))
        .await
        .unwrap();
    s.create_robot(&NewRobot {
        name: "robot$team+ci",
        secret_hash: "h",
        grants: &[RobotGrant {
            project_id: Some(team),
            actions: vec![berth_core::Action::Pull],
        }],
        description: "",
        project_id: Some(team),
        duration_days: -1,
        expires_at: None,
        disabled: false,
    })
    .await
    .unwrap();
    assert_eq!(
        s.list_robots(RobotsOf::Project(team), all)
            .await
            .unwrap()
            .total,
        1
    );
    // A system robot with grants in two projects and everywhere, by id.
    let grant = |project_id, actions: &[&str]| RobotGrant {
        project_id,
        actions: actions.iter().map(|a| a.parse().unwrap()).collect(),
    };
    let system_grants = [
        grant(None, &["pull"]),
        grant(Some(team), &["pull", "push"]),
        grant(Some(ops), &["delete"]),
    ];
    let system = NewRobot {
        name: "robot$ci",
        secret_hash: "h",
        grants: &system_grants,
        description: "",
        project_id: None,
        duration_days: -1,
        expires_at: None,
        disabled: true,
    };
    let RobotWrite::Done(ci) = s.create_robot(&system).await.unwrap() else {
        panic!("not created")
    };
    assert_eq!(s.create_robot(&system).await.unwrap(), RobotWrite::Conflict);
    let stored = s.robot_by_id(ci).await.unwrap().unwrap();
    assert!(
        stored.disabled,
        "created disabled, never enabled in between"
    );
    assert_eq!(stored.grants, system_grants);
    let listed = |of| async move { s.list_robots(of, all).await.unwrap() };
    let system_only = listed(RobotsOf::System).await;
    assert_eq!(system_only.total, 1);
    assert_eq!(system_only.items[0].name, "robot$ci");
    assert_eq!(listed(RobotsOf::All).await.total, 2);
    assert_eq!(listed(RobotsOf::Project(team)).await.total, 1);
    // A grant on a project that does not exist writes nothing at all.
    let missing = [grant(Some(ops), &["pull"]), grant(Some(9_999), &["pull"])];
    assert_eq!(
        s.create_robot(&NewRobot {
            name: "robot$ghost",
            grants: &missing,
            ..system.clone()
        })
        .await
        .unwrap(),
        RobotWrite::UnknownProject(9_999)
    );
    assert!(s.robot("robot$ghost").await.unwrap().is_none());
    let update = |grants| berth_meta::RobotUpdate {
        description: "",
        grants,
        duration_days: -1,
        expires_at: None,
        disabled: false,
    };
    assert_eq!(
        s.update_robot(ci, &update(&missing)).await.unwrap(),
        RobotWrite::UnknownProject(9_999)
    );
    assert_eq!(
        s.robot_by_id(ci).await.unwrap().unwrap().grants,
        system_grants,
        "a failed update changes nothing"
    );
    assert_eq!(
        s.update_robot(9_999, &update(&[])).await.unwrap(),
        RobotWrite::Conflict
    );
    // A repository named exactly as its project belongs to it, for listings and deletion.
    s.put_manifest("team", &manifest(&digest("t"), vec![], Some("v1")))
        .await
        .unwrap();
    let team_repositories = s
        .list_repository_summaries(Some(&["team".to_owned()]), None, all)
        .await
        .unwrap();
    assert_eq!(
        team_repositories
            .items
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["team", "team/app"]
    );
    assert_eq!(
        s.delete_project(team).await.unwrap(),
        ProjectDelete::NotEmpty(2)
    );
    assert!(s.delete_repository("team").await.unwrap());
    assert_eq!(
        s.create_tag("team/app", "v1", m.as_str()).await.unwrap(),
        TagCreate::Exists(m.to_string())
    );
    assert_eq!(
        s.create_tag("team/app", "v2", digest("x").as_str())
            .await
            .unwrap(),
        TagCreate::UnknownArtifact
    );
    assert_eq!(
        s.create_tag("team/app", "v2", m.as_str()).await.unwrap(),
        TagCreate::Created
    );
    assert_eq!(
        s.delete_project(team).await.unwrap(),
        ProjectDelete::NotEmpty(1)
    );
    assert!(s.delete_repository("team/app").await.unwrap());
    assert!(!s.delete_repository("team/app").await.unwrap());
    assert_eq!(
        s.delete_project(team).await.unwrap(),
        ProjectDelete::Deleted
    );
    assert_eq!(
        s.delete_project(team).await.unwrap(),
        ProjectDelete::Unknown
    );
    assert!(s.robot("robot$team+ci").await.unwrap().is_none());
    assert_eq!(
        s.robot_by_id(ci).await.unwrap().unwrap().grants,
        [grant(None, &["pull"]), grant(Some(ops), &["delete"])],
        "grants on a deleted project go with it"
    );
    assert_eq!(s.user_role(team, alice).await.unwrap(), None);
    assert!(s.repository_summary("team_x/app").await.unwrap().is_some());
    // Deleting a user removes its memberships.
    s.set_user_role(ops, alice, "guest").await.unwrap();
    assert!(s.delete_user(alice).await.unwrap());
    assert_eq!(s.list_members(ops, None, all).await.unwrap().total, 0);
}

async fn job_leases_go_to_one_holder_at_a_time(s: &MetadataStore) {
    use std::time::Duration;
    let minute = Duration::from_secs(60);
    assert!(s.acquire_lease("purge", "node-a", minute).await.unwrap());
    assert!(!s.acquire_lease("purge", "node-b", minute).await.unwrap());
    assert!(
        s.acquire_lease("purge", "node-a", minute).await.unwrap(),
        "renewed"
    );
    assert!(
        s.acquire_lease("gc", "node-b", minute).await.unwrap(),
        "leases are per job"
    );
    // Given up: another node takes it at once.
    s.release_lease("purge", "node-a").await.unwrap();
    assert!(s.acquire_lease("purge", "node-b", minute).await.unwrap());
    // Left to expire (a node that died): another node takes it over afterwards.
    assert!(
        s.acquire_lease("expiring", "node-a", Duration::ZERO)
            .await
            .unwrap()
    );
    assert!(!s.acquire_lease("expiring", "node-b", minute).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(s.acquire_lease("expiring", "node-b", minute).await.unwrap());
    assert!(!s.acquire_lease("expiring", "node-a", minute).await.unwrap());
}

async fn cluster_secrets_are_the_first_stored(s: &MetadataStore) {
    assert_eq!(s.cluster_secret("login", "first").await.unwrap(), "first");
    assert_eq!(
        s.cluster_secret("login", "second").await.unwrap(),
        "first",
        "a later node gets the stored one"
    );
    assert_eq!(s.cluster_secret("other", "x").await.unwrap(), "x");
    // Nodes asking at once all get one answer.
    let mut asking = tokio::task::JoinSet::new();
    for i in 0..8 {
        let s = s.clone();
        asking.spawn(async move { s.cluster_secret("race", &format!("c{i}")).await.unwrap() });
    }
    let answers = asking.join_all().await;
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
}

/// Migration 0007 carries robot permissions kept by project name (JSON) over to grants by
/// project id: a project robot's to its own project whatever name it carried, a system robot's
/// to each project that existed under the name when the permission was written, `*` to every
/// project; unreadable JSON to nothing.
mod robot_permissions_migration {
    use std::borrow::Cow;

    use berth_meta::{MetadataStore, PoolSettings, RobotGrant};

    async fn carried_over(url: &str, dir: &str) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        let mut before = sqlx::migrate::Migrator::new(std::path::Path::new(&format!(
            "{}/../../migrations/{dir}",
            env!("CARGO_MANIFEST_DIR")
        )))
        .await
        .unwrap();
        before.migrations = Cow::Owned(
            before
                .migrations
                .iter()
                .filter(|m| m.version < 7)
                .cloned()
                .collect(),
        );
        before.run(&pool).await.unwrap();
        let id = |name: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT id FROM projects WHERE name = ?")
                    .bind(name)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        for (name, created) in [("team", 100), ("ops", 100), ("later", 5_000)] {
            sqlx::query(
                "INSERT INTO projects (name, public, created_at, updated_at) VALUES (?, 0, ?, ?)",
            )
            .bind(name)
            .bind(created)
            .bind(created)
            .execute(&pool)
            .await
            .unwrap();
        }
        let team = id("team").await;
        let ops = id("ops").await;
        // A project named as team's id: the old code matched a project robot's numeric
        // namespace against it.
        sqlx::query(
            "INSERT INTO projects (name, public, created_at, updated_at) VALUES (?, 0, 100, 100)",
        )
        .bind(team.to_string())
        .execute(&pool)
        .await
        .unwrap();
        let robots = [
            ("robot$team+ci", Some(team), format!(r#"[{{"project":"{team}","actions":["pull","push"]}}]"#)),
            (
                "robot$sync",
                None,
                r#"[{"project":"*","actions":["pull"]},{"project":"ops","actions":["pull","push"]},{"project":"later","actions":["delete"]},{"project":"nosuch","actions":["pull"]}]"#.to_owned(),
            ),
            ("robot$broken", None, "not json".to_owned()),
        ];
        for (name, project_id, permissions) in &robots {
            sqlx::query(
                "INSERT INTO robots (name, secret_hash, permissions, expires_at, disabled, created_at, \
                 description, project_id, duration_days, updated_at) \
                 VALUES (?, 'h', ?, NULL, 0, 1000, '', ?, -1, 1000)",
            )
            .bind(*name)
            .bind(permissions.as_str())
            .bind(*project_id)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;

        let store = MetadataStore::connect(url, &PoolSettings::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let grants = |name: &'static str| {
            let store = store.clone();
            async move { store.robot(name).await.unwrap().unwrap().grants }
        };
        let grant = |project_id, actions: &[&str]| RobotGrant {
            project_id,
            actions: actions.iter().map(|a| a.parse().unwrap()).collect(),
        };
        assert_eq!(
            grants("robot$team+ci").await,
            [grant(Some(team), &["pull", "push"])],
            "its own project, not the one named {team}"
        );
        assert_eq!(
            grants("robot$sync").await,
            [grant(None, &["pull"]), grant(Some(ops), &["pull", "push"])],
            "\"later\" was created after the permission was written"
        );
        assert!(grants("robot$broken").await.is_empty());
    }

    #[tokio::test]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/meta.db?mode=rwc", dir.path().display());
        carried_over(&url, "sqlite").await;
    }

    #[tokio::test]
    async fn mariadb() {
        let db = tokio::task::spawn_blocking(berth_testkit::MariaDb::start)
            .await
            .unwrap();
        carried_over(&db.database("berth"), "mysql").await;
    }
}

fn entry(at: i64, who: &str, operation: &str, resource: &str) -> AuditEntry {
    AuditEntry {
        op_time: at,
        project_id: None,
        user_id: None,
        principal: "user".into(),
        username: who.into(),
        operation: operation.into(),
        resource_type: "artifact".into(),
        resource: resource.into(),
        client_address: "192.0.2.7".into(),
        outcome: "success".into(),
        detail: None,
    }
}

const ALL: Page = Page {
    offset: 0,
    limit: 100,
};

async fn audit_count(s: &MetadataStore) -> u64 {
    s.audit_log(&AuditQuery::default(), ALL)
        .await
        .unwrap()
        .total
}

/// An entry written through a recording handle exists exactly when its change committed.
async fn audit_entries_commit_with_their_change(s: &MetadataStore) {
    let (cfg, m) = (digest("audit-cfg"), digest("audit-m"));
    let rec = |what: &str| s.recording(entry(1, "alice", "create", what));
    // Refused by the reference check: nothing stored, nothing recorded.
    let r = rec("missing");
    assert_eq!(
        r.put_manifest("a", &manifest(&m, vec![(&cfg, 3)], Some("v1")))
            .await
            .unwrap(),
        ManifestPut::MissingReference(cfg.clone())
    );
    assert!(!r.recorded());
    assert_eq!(audit_count(s).await, 0);
    // Stored: one entry.
    s.link_blob("a", &cfg, 3, None).await.unwrap();
    let r = rec("stored");
    assert_eq!(
        r.put_manifest("a", &manifest(&m, vec![(&cfg, 3)], Some("v1")))
            .await
            .unwrap(),
        ManifestPut::Stored
    );
    assert!(r.recorded());
    // A tag that does not exist: nothing deleted, nothing recorded; one that does: recorded.
    let r = rec("no tag");
    assert!(!r.delete_tag("a", "nope").await.unwrap());
    assert!(!r.recorded());
    let r = rec("tag");
    assert!(r.delete_tag("a", "v1").await.unwrap());
    assert!(r.recorded());
    // A project created through a recording handle: the entry belongs to the new project.
    let r = rec("project");
    let id = r
        .create_project("audited", false, None)
        .await
        .unwrap()
        .unwrap();
    assert!(r.recorded());
    let page = s.audit_log(&AuditQuery::default(), ALL).await.unwrap();
    let resources: Vec<&str> = page
        .items
        .iter()
        .map(|r| r.entry.resource.as_str())
        .collect();
    assert_eq!(resources, ["project", "tag", "stored"], "newest first");
    assert_eq!(page.items[0].entry.project_id, Some(id));
    // Deleting what does not exist records nothing.
    let r = rec("nobody");
    assert!(!r.delete_user(987_654).await.unwrap());
    assert!(!r.delete_robot(987_654).await.unwrap());
    assert!(!r.recorded());
    // A plain handle records nothing.
    assert!(s.delete_project(id).await.is_ok());
    assert_eq!(audit_count(s).await, 3);
}

async fn audit_log_queries_purges_and_forgets(s: &MetadataStore) {
    let mut rows = vec![
        entry(1_000, "alice", "create", "p/app@sha256:1"),
        entry(2_000, "bob", "pull", "p/app:v1"),
        entry(3_000, "alice", "delete", "p/app@sha256:1"),
        entry(4_000, "carol", "login", "carol"),
        entry(5_000, "alice", "pull", "q/web:latest"),
    ];
    rows[1].project_id = Some(7);
    rows[3].outcome = "failure".into();
    rows[0].user_id = Some(42);
    rows[2].user_id = Some(42);
    s.write_audit(&rows).await.unwrap();
    let find = |terms: Vec<AuditTerm>, sort: Vec<(AuditField, bool)>| {
        let q = AuditQuery {
            project_id: None,
            terms,
            sort,
        };
        async move {
            s.audit_log(&q, ALL)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|r| r.entry.op_time / 1000)
                .collect::<Vec<_>>()
        }
    };
    let text = |t: &str| AuditValue::Text(t.into());
    use AuditField as F;
    assert_eq!(find(vec![], vec![]).await, [5, 4, 3, 2, 1]);
    assert_eq!(
        find(vec![AuditTerm::Equals(F::Username, text("alice"))], vec![]).await,
        [5, 3, 1]
    );
    assert_eq!(
        find(vec![AuditTerm::Contains(F::Resource, "app".into())], vec![]).await,
        [3, 2, 1]
    );
    // Contains is literal: `_` and `%` are not wildcards, and case counts.
    assert!(
        find(vec![AuditTerm::Contains(F::Resource, "a_p".into())], vec![])
            .await
            .is_empty()
    );
    assert!(
        find(vec![AuditTerm::Contains(F::Resource, "APP".into())], vec![])
            .await
            .is_empty()
    );
    let ms = |v: i64| Some(AuditValue::Int(v));
    assert_eq!(
        find(
            vec![AuditTerm::Range(F::OpTime, ms(2_000), ms(4_000))],
            vec![]
        )
        .await,
        [4, 3, 2]
    );
    assert_eq!(
        find(vec![AuditTerm::Range(F::OpTime, ms(4_000), None)], vec![]).await,
        [5, 4]
    );
    assert_eq!(
        find(vec![AuditTerm::Range(F::OpTime, None, ms(1_000))], vec![]).await,
        [1]
    );
    assert_eq!(
        find(
            vec![AuditTerm::AnyOf(
                F::Operation,
                vec![text("login"), text("delete")]
            )],
            vec![]
        )
        .await,
        [4, 3]
    );
    assert_eq!(
        find(
            vec![
                AuditTerm::Equals(F::Operation, text("pull")),
                AuditTerm::Equals(F::Username, text("bob"))
            ],
            vec![]
        )
        .await,
        [2]
    );
    assert_eq!(
        find(vec![AuditTerm::Equals(F::Outcome, text("failure"))], vec![]).await,
        [4]
    );
    assert_eq!(
        find(vec![], vec![(F::Username, false), (F::OpTime, true)]).await,
        [5, 3, 1, 2, 4]
    );
    assert_eq!(
        find(vec![], vec![(F::OpTime, false)]).await,
        [1, 2, 3, 4, 5]
    );
    let project = AuditQuery {
        project_id: Some(7),
        ..AuditQuery::default()
    };
    let page = s.audit_log(&project, ALL).await.unwrap();
    assert_eq!(
        (page.total, page.items[0].entry.username.as_str()),
        (1, "bob")
    );
    let second = s
        .audit_log(
            &AuditQuery::default(),
            Page {
                offset: 2,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(second.total, 5);
    assert_eq!(
        second
            .items
            .iter()
            .map(|r| r.entry.op_time)
            .collect::<Vec<_>>(),
        [3_000, 2_000]
    );
    // Forgetting a user: by id, and by name where only the name was known.
    rows = vec![entry(6_000, "alice", "pull", "p/app:v2")];
    rows[0].resource_type = "user".into();
    rows[0].resource = "alice".into();
    s.write_audit(&rows).await.unwrap();
    assert_eq!(
        s.forget_audit_user(42, "alice", "deleted-user-42")
            .await
            .unwrap(),
        5
    );
    assert!(
        find(vec![AuditTerm::Equals(F::Username, text("alice"))], vec![])
            .await
            .is_empty()
    );
    assert_eq!(
        find(
            vec![AuditTerm::Equals(F::Username, text("deleted-user-42"))],
            vec![]
        )
        .await,
        [6, 5, 3, 1]
    );
    // Purging: the count a dry run gives is what the purge deletes, in batches.
    let ops = vec!["pull".to_owned()];
    assert_eq!(s.count_audit_before(5_500, &ops).await.unwrap(), 2);
    assert_eq!(s.count_audit_before(3_500, &[]).await.unwrap(), 3);
    assert_eq!(s.purge_audit_batch(5_500, &ops).await.unwrap(), 2);
    assert_eq!(s.purge_audit_batch(5_500, &ops).await.unwrap(), 0);
    assert_eq!(find(vec![], vec![]).await, [6, 4, 3, 1]);
    let after = s.audit_after(0, 2).await.unwrap();
    assert_eq!(
        after.iter().map(|r| r.entry.op_time).collect::<Vec<_>>(),
        [1_000, 3_000]
    );
}

fn new_job(kind: &str, run_at: i64) -> NewJob {
    NewJob {
        kind: kind.into(),
        params: "{}".into(),
        max_attempts: 2,
        run_at,
    }
}

fn manual(kind: &str) -> NewExecution {
    NewExecution {
        kind: kind.into(),
        trigger: "manual".into(),
        schedule: None,
        created_by: "admin".into(),
    }
}

async fn jobs_are_claimed_once_and_fenced(s: &MetadataStore) {
    let t = 1_000_000;
    let e = s
        .create_execution(
            &manual("count"),
            &[new_job("count", t), new_job("count", t + 50)],
            t,
        )
        .await
        .unwrap();
    s.create_execution(&manual("other"), &[new_job("other", t)], t)
        .await
        .unwrap();
    // Only due jobs of the kinds asked for, oldest first, one claimant each.
    let a = s.claim_jobs("a", &["count"], t, t + 100, 5).await.unwrap();
    assert_eq!(a.len(), 1);
    let first = &a[0];
    assert_eq!(
        (
            first.state,
            first.attempts,
            first.fence,
            first.holder.as_deref()
        ),
        (JobState::Running, 1, 1, Some("a"))
    );
    assert!(
        s.claim_jobs("b", &["count"], t, t + 100, 5)
            .await
            .unwrap()
            .is_empty()
    );
    let second = s
        .claim_jobs("b", &["count"], t + 60, t + 10_000, 5)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].id, first.id);
    // A paused kind is not claimed.
    s.pause_kind("other", true).await.unwrap();
    assert!(
        s.claim_jobs("b", &["other"], t, t + 100, 5)
            .await
            .unwrap()
            .is_empty()
    );
    s.pause_kind("other", false).await.unwrap();
    assert_eq!(
        s.claim_jobs("b", &["other"], t, t + 100, 5)
            .await
            .unwrap()
            .len(),
        1
    );
    // The holder heartbeats and checkpoints; once its lease expires another node takes the job
    // over with a new fence, and the old holder's writes are refused.
    assert_eq!(
        s.heartbeat_job(first.id, 1, t + 10, t + 200).await.unwrap(),
        Heartbeat::Held { stop: false }
    );
    assert!(
        s.checkpoint_job(first.id, 1, "{\"done\":3}", t + 20)
            .await
            .unwrap()
    );
    assert!(
        s.log_job(first.id, 1, "info", "step 3", t + 20)
            .await
            .unwrap()
    );
    assert!(
        s.claim_jobs("c", &["count"], t + 150, t + 400, 5)
            .await
            .unwrap()
            .is_empty()
    );
    let taken = s
        .claim_jobs("c", &["count"], t + 201, t + 500, 5)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let taken = &taken[0];
    assert_eq!(
        (
            taken.id,
            taken.fence,
            taken.attempts,
            taken.checkpoint.as_deref()
        ),
        (first.id, 2, 2, Some("{\"done\":3}"))
    );
    assert_eq!(
        s.heartbeat_job(first.id, 1, t + 202, t + 600)
            .await
            .unwrap(),
        Heartbeat::Lost
    );
    assert!(!s.checkpoint_job(first.id, 1, "{}", t + 202).await.unwrap());
    assert!(
        !s.log_job(first.id, 1, "info", "stale", t + 202)
            .await
            .unwrap()
    );
    assert!(
        !s.finish_job(first.id, 1, &JobEnd::Succeeded("1".into()), t + 202)
            .await
            .unwrap()
    );
    assert!(
        s.finish_job(
            first.id,
            2,
            &JobEnd::Succeeded("{\"ok\":true}".into()),
            t + 300
        )
        .await
        .unwrap()
    );
    let done = s.job(first.id).await.unwrap().unwrap();
    assert_eq!(
        (done.state, done.result.as_deref(), done.holder),
        (JobState::Succeeded, Some("{\"ok\":true}"), None)
    );
    let log = s
        .job_log(
            first.id,
            Page {
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        log.items
            .iter()
            .map(|l| l.message.as_str())
            .collect::<Vec<_>>(),
        ["step 3"]
    );
    // Retry: pending again at the retry time; then failed for good.
    let b = &second[0];
    assert!(
        s.finish_job(
            b.id,
            b.fence,
            &JobEnd::Failed {
                error: "boom".into(),
                retry_at: Some(t + 1000)
            },
            t + 300
        )
        .await
        .unwrap()
    );
    assert!(
        s.claim_jobs("a", &["count"], t + 999, t + 2000, 5)
            .await
            .unwrap()
            .is_empty()
    );
    let again = s
        .claim_jobs("a", &["count"], t + 1000, t + 2000, 5)
        .await
        .unwrap();
    assert_eq!((again[0].id, again[0].attempts), (b.id, 2));
    s.finish_job(
        b.id,
        again[0].fence,
        &JobEnd::Failed {
            error: "boom again".into(),
            retry_at: None,
        },
        t + 1100,
    )
    .await
    .unwrap();
    let execution = s.execution(e).await.unwrap().unwrap();
    assert_eq!(execution.jobs, [2, 0, 0, 1, 1, 0]);
    assert_eq!(execution.status(), "Error");
    assert_eq!(execution.finished_at, Some(t + 1100));
    // Stopping: a pending job at once; a running one through its heartbeat; a running one
    // whose holder died ends as stopped instead of being taken over.
    let e2 = s
        .create_execution(
            &manual("count"),
            &[
                new_job("count", t),
                new_job("count", t),
                new_job("count", t),
            ],
            t,
        )
        .await
        .unwrap();
    let run = s
        .claim_jobs("a", &["count"], t + 2000, t + 3000, 2)
        .await
        .unwrap();
    assert_eq!(run.len(), 2);
    let pending = s
        .list_jobs(
            &JobFilter {
                states: vec![JobState::Pending],
                execution_id: Some(e2),
                ..JobFilter::default()
            },
            Page {
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(pending.total, 1);
    assert_eq!(
        s.stop_job(pending.items[0].id, t + 2000).await.unwrap(),
        Some(JobState::Stopped)
    );
    assert_eq!(
        s.stop_job(run[0].id, t + 2000).await.unwrap(),
        Some(JobState::Running)
    );
    assert_eq!(
        s.heartbeat_job(run[0].id, run[0].fence, t + 2100, t + 3000)
            .await
            .unwrap(),
        Heartbeat::Held { stop: true }
    );
    assert!(
        s.finish_job(run[0].id, run[0].fence, &JobEnd::Stopped, t + 2200)
            .await
            .unwrap()
    );
    assert_eq!(
        s.stop_jobs_where(Some(e2), None, t + 2300).await.unwrap(),
        1
    );
    assert!(
        s.claim_jobs("b", &["count"], t + 3001, t + 4000, 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.job(run[1].id).await.unwrap().unwrap().state,
        JobState::Stopped
    );
    assert_eq!(s.execution(e2).await.unwrap().unwrap().status(), "Stopped");
    assert_eq!(s.stop_job(999_999, t).await.unwrap(), None);
    // Released by a node shutting down: pending at once, the attempt not counted.
    let e3 = s
        .create_execution(&manual("count"), &[new_job("count", t)], t)
        .await
        .unwrap();
    let r = s
        .claim_jobs("a", &["count"], t + 5000, t + 6000, 1)
        .await
        .unwrap();
    assert!(
        s.finish_job(r[0].id, r[0].fence, &JobEnd::Released, t + 5001)
            .await
            .unwrap()
    );
    let back = s
        .claim_jobs("b", &["count"], t + 5002, t + 6000, 1)
        .await
        .unwrap();
    assert_eq!((back[0].execution_id, back[0].attempts), (e3, 1));
    // A stop asked while an attempt ends in a retry or a release is kept: the job stops.
    let e4 = s
        .create_execution(
            &manual("late"),
            &[new_job("late", t), new_job("late", t)],
            t,
        )
        .await
        .unwrap();
    let r = s
        .claim_jobs("a", &["late"], t + 7000, t + 8000, 2)
        .await
        .unwrap();
    assert_eq!(r.len(), 2);
    s.stop_jobs_where(Some(e4), None, t + 7001).await.unwrap();
    let retry = JobEnd::Failed {
        error: "x".into(),
        retry_at: Some(t + 7100),
    };
    assert!(
        s.finish_job(r[0].id, r[0].fence, &retry, t + 7002)
            .await
            .unwrap()
    );
    assert!(
        s.finish_job(r[1].id, r[1].fence, &JobEnd::Released, t + 7002)
            .await
            .unwrap()
    );
    assert_eq!(
        s.job(r[0].id).await.unwrap().unwrap().state,
        JobState::Stopped
    );
    assert_eq!(
        s.job(r[1].id).await.unwrap().unwrap().state,
        JobState::Stopped
    );
    assert!(
        s.claim_jobs("b", &["late"], t + 9000, t + 9500, 5)
            .await
            .unwrap()
            .is_empty()
    );
    // A job whose node died on its last attempt fails instead of going round again.
    s.create_execution(
        &manual("crash"),
        &[NewJob {
            max_attempts: 1,
            ..new_job("crash", t)
        }],
        t,
    )
    .await
    .unwrap();
    let c = s
        .claim_jobs("a", &["crash"], t + 10_000, t + 10_100, 1)
        .await
        .unwrap();
    assert!(
        s.claim_jobs("b", &["crash"], t + 10_200, t + 10_300, 1)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = s.job(c[0].id).await.unwrap().unwrap();
    assert_eq!(
        (dead.state, dead.error.as_deref()),
        (
            JobState::Failed,
            Some("its node stopped answering during the last attempt")
        )
    );
    s.pause_kind("late", false).await.unwrap();
    // Queues: per kind, with the pause flag.
    s.pause_kind("count", true).await.unwrap();
    let queues = s.job_queues(&["count", "idle"], t + 5003).await.unwrap();
    assert_eq!(
        queues
            .iter()
            .map(|q| (q.kind.as_str(), q.pending, q.running, q.paused))
            .collect::<Vec<_>>(),
        [
            ("count", 0, 1, true),
            ("idle", 0, 0, false),
            ("other", 0, 1, false)
        ]
    );
}

async fn schedules_fire_once_per_occurrence(s: &MetadataStore) {
    s.put_schedule("purge", "audit-purge", "{}", "@every 10s", 10_000, 0)
        .await
        .unwrap();
    // The same timing again keeps the next occurrence; a new timing sets it.
    s.put_schedule(
        "purge",
        "audit-purge",
        "{\"retention_hours\":1}",
        "@every 10s",
        99_000,
        1,
    )
    .await
    .unwrap();
    let sched = s.schedules().await.unwrap().remove(0);
    assert_eq!(
        (sched.next_at, sched.params.as_str()),
        (10_000, "{\"retention_hours\":1}")
    );
    let job = new_job("audit-purge", 10_500);
    // Two nodes saw the same occurrence: one fires it.
    let first = s
        .fire_schedule(&sched, 10_000, 20_000, &job, 10_500)
        .await
        .unwrap();
    let second = s
        .fire_schedule(&sched, 10_000, 20_000, &job, 10_501)
        .await
        .unwrap();
    assert!(first.is_some());
    assert_eq!(second, None);
    let e = s.execution(first.unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (e.trigger.as_str(), e.schedule.as_deref(), e.jobs[0]),
        ("schedule", Some("purge"), 1)
    );
    // A paused schedule moves on without firing.
    assert!(s.pause_schedule("purge", true).await.unwrap());
    let sched = s.schedules().await.unwrap().remove(0);
    assert_eq!(
        (sched.next_at, sched.last_at, sched.paused),
        (20_000, Some(10_000), true)
    );
    assert_eq!(
        s.fire_schedule(&sched, 20_000, 30_000, &job, 20_100)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.schedules().await.unwrap()[0].next_at, 30_000);
    assert_eq!(
        s.list_executions(
            Some("audit-purge"),
            Page {
                offset: 0,
                limit: 10
            }
        )
        .await
        .unwrap()
        .total,
        1
    );
    assert!(s.delete_schedule("purge").await.unwrap());
    assert!(!s.pause_schedule("purge", false).await.unwrap());
}

async fn settings_are_stored_with_their_audit_entry(s: &MetadataStore) {
    assert!(s.stored_settings().await.unwrap().is_empty());
    let before = audit_count(s).await;
    let r = s.recording(entry(0, "admin", "update", "configuration"));
    let values = [
        ("token_expiration".to_owned(), "60".to_owned()),
        ("ldap_url".to_owned(), "\"ldap://d.example\"".to_owned()),
    ];
    r.put_settings(&values).await.unwrap();
    assert!(r.recorded());
    assert_eq!(audit_count(s).await, before + 1);
    let stored = s.stored_settings().await.unwrap();
    let pairs: Vec<(&str, &str)> = stored
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("ldap_url", "\"ldap://d.example\""),
            ("token_expiration", "60")
        ]
    );
    // Stored again: replaced, not doubled; other keys stay.
    s.put_settings(&[("token_expiration".to_owned(), "5".to_owned())])
        .await
        .unwrap();
    let stored = s.stored_settings().await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].value, "5");
    assert!(stored[1].updated_at > 0);
}

async fn listings_count_an_index_with_its_children_and_referrers_under_subjects(s: &MetadataStore) {
    let page = Page {
        offset: 0,
        limit: 100,
    };
    let listed = |under_subjects| async move {
        let found = s
            .list_artifacts("idx/app", None, under_subjects, page)
            .await
            .unwrap()
            .unwrap();
        let mut digests: Vec<String> = found.items.iter().map(|a| a.digest.clone()).collect();
        digests.sort();
        (found.total, digests)
    };
    let count = || async move {
        s.list_repository_summaries(None, Some("idx/app"), page)
            .await
            .unwrap()
            .items[0]
            .artifact_count
    };
    let cfg = digest("idx-cfg");
    s.link_blob("idx/app", &cfg, 3, None).await.unwrap();
    let (amd, arm, index) = (digest("idx-amd"), digest("idx-arm"), digest("idx-index"));
    for child in [&amd, &arm] {
        s.put_manifest("idx/app", &manifest(child, vec![(&cfg, 3)], None))
            .await
            .unwrap();
    }
    assert_eq!(listed(false).await.0, 2);
    let index_manifest = NewManifest {
        media_type: "application/vnd.oci.image.index.v1+json",
        blobs: Vec::new(),
        manifests: vec![(&amd, 2), (&arm, 2)],
        ..manifest(&index, Vec::new(), Some("v1"))
    };
    // Stored twice (a client pushing again): counted once.
    for _ in 0..2 {
        assert_eq!(
            s.put_manifest("idx/app", &index_manifest).await.unwrap(),
            ManifestPut::Stored
        );
    }
    assert_eq!(listed(false).await, (1, vec![index.to_string()]));
    assert_eq!(count().await, 1);
    let found = s
        .artifact("idx/app", index.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.children.len(), 2);
    // A signature of the index: listed under it, or on its own when asked.
    let signature = digest("idx-sig");
    let signed = NewManifest {
        subject: Some(&index),
        ..manifest(&signature, vec![(&cfg, 3)], None)
    };
    s.put_manifest("idx/app", &signed).await.unwrap();
    assert_eq!(listed(false).await.0, 2);
    assert_eq!(listed(true).await, (1, vec![index.to_string()]));
    // The index deleted: its children are listed again, its referrer on its own.
    assert_eq!(
        s.delete_manifest("idx/app", &index).await.unwrap(),
        ManifestDelete::Deleted
    );
    let mut alone = vec![amd.to_string(), arm.to_string(), signature.to_string()];
    alone.sort();
    assert_eq!(listed(true).await, (3, alone));
    assert_eq!(count().await, 3);
}
