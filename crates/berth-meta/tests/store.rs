//! The metadata store suite. Every case runs against every backend the store supports: SQLite,
//! and a private MariaDB server started for the test.

#![allow(clippy::unwrap_used)]

use berth_core::{Digest, DigestAlgorithm, DigestHasher, Reference};
use berth_meta::{
    BlobUnlink, ManifestDelete, ManifestPut, MetadataStore, NewManifest, PoolSettings,
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
        RobotWrite, TagCreate,
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
            actions: vec!["pull".into()],
        }],
        description: "",
        project_id: Some(team),
        duration_days: -1,
        expires_at: None,
        disabled: false,
    })
    .await
    .unwrap();
    assert_eq!(s.list_robots(Some(team), all).await.unwrap().total, 1);
    // A system robot with grants in two projects and everywhere, by id.
    let grant = |project_id, actions: &[&str]| RobotGrant {
        project_id,
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
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
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
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
