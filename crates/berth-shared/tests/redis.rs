//! Shared counters, caches and sessions against real Redis: a single server, a Sentinel set
//! through a failover, and a three-master Cluster.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use berth_shared::{RedisSpec, Shared};
use berth_testkit::{Redis, RedisCluster, RedisSentinels};

async fn counts(shared: &Shared, key: &str) {
    let window = Duration::from_secs(60);
    assert_eq!(shared.peek(key).await.unwrap().0, 0);
    for n in 1..=3 {
        let (count, left) = shared.hit(key, window).await.unwrap();
        assert_eq!(count, n);
        assert!(left > Duration::from_secs(55) && left <= window, "{left:?}");
    }
    assert_eq!(shared.peek(key).await.unwrap().0, 3);
    shared.clear(key).await.unwrap();
    assert_eq!(shared.peek(key).await.unwrap(), (0, Duration::ZERO));
    // The window starts with the first hit and then expires the counter.
    shared.hit(key, Duration::from_millis(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(shared.peek(key).await.unwrap().0, 0);
}

/// Generation-stamped caches and sliding values, as two nodes (`a`, `b`) use them.
async fn caches_and_sessions(a: &Shared, b: &Shared, key: &str) {
    let ttl = Duration::from_secs(60);
    let (seen, value) = a.cached(key, "t:v1").await.unwrap();
    assert_eq!(value, None);
    assert!(a.fill(key, &seen, "t:v1", b"one", ttl).await.unwrap());
    assert_eq!(
        b.cached(key, "t:v1").await.unwrap().1.as_deref(),
        Some(&b"one"[..])
    );
    // A reader that read before a writer's invalidation cannot store what it read.
    let (stale_seen, _) = b.cached(key, "t:v2").await.unwrap();
    a.invalidate(key, b"gen-2", ttl).await.unwrap();
    assert!(
        !b.fill(key, &stale_seen, "t:v2", b"stale", ttl)
            .await
            .unwrap()
    );
    assert_eq!(
        b.cached(key, "t:v1").await.unwrap().1,
        None,
        "fields dropped"
    );
    let (seen, value) = b.cached(key, "t:v2").await.unwrap();
    assert_eq!((seen.as_slice(), value), (&b"gen-2"[..], None));
    assert!(b.fill(key, &seen, "t:v2", b"fresh", ttl).await.unwrap());
    assert_eq!(
        a.cached(key, "t:v2").await.unwrap().1.as_deref(),
        Some(&b"fresh"[..])
    );
    // A filled hash expires.
    let short = format!("{key}:short");
    let (seen, _) = a.cached(&short, "f").await.unwrap();
    assert!(
        a.fill(&short, &seen, "f", b"x", Duration::from_millis(200))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.cached(&short, "f").await.unwrap(), (Vec::new(), None));

    // Values with a sliding expiry: each touch starts it again; a delete ends it everywhere.
    let session = format!("{key}:session");
    a.put(&session, b"alice", Duration::from_millis(400))
        .await
        .unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            b.touch(&session, Duration::from_millis(400))
                .await
                .unwrap()
                .as_deref(),
            Some(&b"alice"[..])
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.touch(&session, ttl).await.unwrap(), None, "expired");
    a.put(&session, b"bob", ttl).await.unwrap();
    b.clear(&session).await.unwrap();
    assert_eq!(a.touch(&session, ttl).await.unwrap(), None, "deleted");

    // Plain values: read with what is left of their lifetime, which reading does not extend.
    let plain = format!("{key}:plain");
    assert_eq!(a.get(&plain).await.unwrap(), None);
    a.put(&plain, b"v", Duration::from_millis(600))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (value, left) = b.get(&plain).await.unwrap().unwrap();
    assert_eq!(value, b"v");
    assert!(
        left <= Duration::from_millis(400) && left > Duration::ZERO,
        "{left:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.get(&plain).await.unwrap(), None, "expired");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_server() {
    let redis = tokio::task::spawn_blocking(Redis::start).await.unwrap();
    let shared = Shared::connect(&RedisSpec::parse(&redis.url()).unwrap())
        .await
        .unwrap();
    assert!(!shared.describe().contains("redispw"));
    counts(&shared, "berth:test:single").await;
    // Two connections see the same counters (two nodes).
    let other = Shared::connect(&RedisSpec::parse(&redis.url()).unwrap())
        .await
        .unwrap();
    shared
        .hit("berth:test:both", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        other
            .hit("berth:test:both", Duration::from_secs(60))
            .await
            .unwrap()
            .0,
        2
    );
    caches_and_sessions(&shared, &other, "berth:test:repo:single").await;
    // A wrong password is refused at connection time.
    let wrong = redis.url().replace("redispw", "nope");
    assert!(
        Shared::connect(&RedisSpec::parse(&wrong).unwrap())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sentinel_set_through_a_failover() {
    let set = tokio::task::spawn_blocking(RedisSentinels::start)
        .await
        .unwrap();
    let shared = Shared::connect(&RedisSpec::parse(&set.url()).unwrap())
        .await
        .unwrap();
    counts(&shared, "berth:test:sentinel").await;
    let other = Shared::connect(&RedisSpec::parse(&set.url()).unwrap())
        .await
        .unwrap();
    caches_and_sessions(&shared, &other, "berth:test:repo:sentinel").await;
    shared
        .hit("berth:test:kept", Duration::from_secs(60))
        .await
        .unwrap();
    // Wait until the replica has the counter, then kill the master.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while set
        .replica
        .cli(&["GET", "berth:test:kept"])
        .is_none_or(|v| v.trim() != "1")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never synced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old = set.master.port;
    set.master.kill();
    // Calls fail while no master is elected, then reach the promoted replica.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let count = loop {
        if let Ok((n, _)) = shared.hit("berth:test:kept", Duration::from_secs(60)).await {
            break n;
        }
        assert!(std::time::Instant::now() < deadline, "no failover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(count, 2, "the promoted replica kept the counter");
    assert_eq!(set.current_master_port(), Some(set.replica.port));
    assert_ne!(set.current_master_port(), Some(old));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_master_cluster() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let shared = Shared::connect(&RedisSpec::parse(&cluster.url()).unwrap())
        .await
        .unwrap();
    // Keys spread over the three masters' slots.
    for i in 0..12 {
        counts(&shared, &format!("berth:test:cluster:{i}")).await;
    }
    // Keys land on every master (by hash slot), and each counts there.
    for i in 0..30 {
        shared
            .hit(&format!("berth:test:spread:{i}"), Duration::from_secs(60))
            .await
            .unwrap();
    }
    let per_node: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| n.cli(&["DBSIZE"]).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(per_node.iter().sum::<u64>(), 30, "{per_node:?}");
    assert!(per_node.iter().all(|n| *n > 0), "{per_node:?}");
    let other = Shared::connect(&RedisSpec::parse(&cluster.url()).unwrap())
        .await
        .unwrap();
    for i in 0..6 {
        caches_and_sessions(&shared, &other, &format!("berth:test:repo:{i}")).await;
    }
}
