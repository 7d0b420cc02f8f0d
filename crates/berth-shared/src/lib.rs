//! State that Berth nodes share beyond the metadata database: today the failed-login counters,
//! so that a password guesser meets the same limit on every node. In Redis when
//! `BERTH_REDIS_URL` names one (a single server, a Sentinel-managed master, or a Cluster);
//! callers keep an in-process fallback for when Redis is not configured or not reachable.
//!
//! URLs: `redis://[user:password@]host:port[/db]` (or `rediss://`),
//! `redis+sentinel://[user:password@]host:port,host:port/<master name>`,
//! `redis+cluster://[user:password@]host:port,host:port`.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use tokio::sync::Mutex;

/// A shared-state failure.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The URL cannot be used.
    #[error("redis url {url:?}: {reason}")]
    Url {
        /// The URL, password hidden.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Redis answered with an error or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// How to reach Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisSpec {
    /// One server.
    Single(String),
    /// The master Sentinel names, found through these sentinels.
    Sentinel {
        /// `redis://host:port` of each sentinel.
        sentinels: Vec<String>,
        /// The master's name.
        master: String,
        /// `user:password` for the master, if any.
        credentials: Option<String>,
    },
    /// A Redis Cluster, reached through these seed nodes (`redis://[credentials@]host:port`).
    Cluster(Vec<String>),
}

/// A URL (`scheme://user:password@host/…`) with its password replaced by `***`, for messages
/// and logs. Also used for database URLs.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((credentials, host)) if credentials.contains(':') => {
                let user = credentials.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            _ => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl RedisSpec {
    /// Parses a Redis URL (see the crate documentation).
    pub fn parse(url: &str) -> Result<Self, SharedError> {
        let bad = |reason: &str| SharedError::Url {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad("expected redis://, rediss://, redis+sentinel:// or redis+cluster://")
        })?;
        let (credentials, rest) = match rest.rsplit_once('@') {
            Some((c, r)) => (Some(c.to_owned()), r),
            None => (None, rest),
        };
        let with = |host: &str| match &credentials {
            Some(c) => format!("redis://{c}@{host}"),
            None => format!("redis://{host}"),
        };
        match scheme {
            "redis" | "rediss" => Ok(Self::Single(url.to_owned())),
            "redis+sentinel" => {
                let (hosts, master) = rest
                    .split_once('/')
                    .filter(|(h, m)| !h.is_empty() && !m.is_empty())
                    .ok_or_else(|| {
                        bad("expected redis+sentinel://host:port[,host:port…]/<master name>")
                    })?;
                Ok(Self::Sentinel {
                    sentinels: hosts.split(',').map(|h| format!("redis://{h}")).collect(),
                    master: master.to_owned(),
                    credentials,
                })
            }
            "redis+cluster" => {
                let hosts = rest.trim_end_matches('/');
                if hosts.is_empty() {
                    return Err(bad("expected redis+cluster://host:port[,host:port…]"));
                }
                Ok(Self::Cluster(hosts.split(',').map(with).collect()))
            }
            _ => Err(bad(
                "expected redis://, rediss://, redis+sentinel:// or redis+cluster://",
            )),
        }
    }
}

enum Connection {
    /// Multiplexed and reconnecting: cloned per call, no lock.
    Single(ConnectionManager),
    /// Re-resolved after failures: behind a lock.
    Sentinel(Box<Mutex<SentinelConnection>>),
    /// Multiplexed, following slot moves and failovers: cloned per call, no lock.
    Cluster(ClusterConnection),
}

/// The sentinels, and the connection to the master they named last (none after a failure).
struct SentinelConnection {
    sentinel: redis::sentinel::Sentinel,
    master: String,
    info: redis::sentinel::SentinelNodeConnectionInfo,
    current: Option<MultiplexedConnection>,
}

/// Shared state in Redis. Cheap to clone.
#[derive(Clone)]
pub struct Shared {
    connection: Arc<Connection>,
    describe: String,
}

/// Increments a counter, starting its expiry with the first increment; returns the count and
/// the milliseconds left. One key: atomic on a single server and in a Cluster.
const HIT: &str = "local n = redis.call('INCR', KEYS[1]) \
    if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
    return {n, redis.call('PTTL', KEYS[1])}";

/// A counter's value and the milliseconds left (0 and 0 when absent).
const PEEK: &str = "local n = redis.call('GET', KEYS[1]) \
    if not n then return {0, 0} end \
    return {tonumber(n), redis.call('PTTL', KEYS[1])}";

impl Shared {
    /// Connects (and checks the connection with a PING).
    pub async fn connect(spec: &RedisSpec) -> Result<Self, SharedError> {
        let (connection, describe) = match spec {
            RedisSpec::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(1);
                let manager = client.get_connection_manager_with_config(config).await?;
                (
                    Connection::Single(manager),
                    format!("redis at {}", redact(url)),
                )
            }
            RedisSpec::Sentinel {
                sentinels,
                master,
                credentials,
            } => {
                let sentinel = redis::sentinel::Sentinel::build(sentinels.clone())?;
                let mut redis_info = redis::RedisConnectionInfo::default();
                if let Some(c) = credentials {
                    let (user, password) = c.split_once(':').unwrap_or(("", c));
                    if !user.is_empty() {
                        redis_info = redis_info.set_username(user);
                    }
                    redis_info = redis_info.set_password(password);
                }
                let info = redis::sentinel::SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(redis_info);
                (
                    Connection::Sentinel(Box::new(Mutex::new(SentinelConnection {
                        sentinel,
                        master: master.clone(),
                        info,
                        current: None,
                    }))),
                    format!(
                        "redis master {master} through {} sentinels",
                        sentinels.len()
                    ),
                )
            }
            RedisSpec::Cluster(nodes) => {
                let client = redis::cluster::ClusterClient::builder(nodes.clone())
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(Duration::from_secs(2))
                    .build()?;
                let connection = client.get_async_connection().await?;
                (
                    Connection::Cluster(connection),
                    format!("redis cluster through {} seed nodes", nodes.len()),
                )
            }
        };
        let shared = Self {
            connection: Arc::new(connection),
            describe,
        };
        shared.ping().await?;
        Ok(shared)
    }

    /// What this is connected to, for logs (no passwords).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Runs `script` on `key` with `args`, on whichever connection the mode uses. A Sentinel
    /// connection that fails is dropped, and the next call asks the sentinels for the master
    /// again (after a failover, the new one).
    async fn eval(&self, script: &str, key: &str, args: &[u64]) -> Result<(u64, u64), SharedError> {
        let script = redis::Script::new(script);
        let mut invocation = script.key(key);
        for a in args {
            invocation.arg(*a);
        }
        let result: redis::RedisResult<(i64, i64)> = match &*self.connection {
            Connection::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Connection::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
            Connection::Sentinel(s) => {
                let mut guard = s.lock().await;
                let SentinelConnection {
                    sentinel,
                    master,
                    info,
                    current,
                } = &mut *guard;
                if current.is_none() {
                    let client = sentinel.async_master_for(master, Some(info)).await?;
                    *current = Some(client.get_multiplexed_async_connection().await?);
                }
                let Some(c) = current.as_mut() else {
                    unreachable!("connected just above")
                };
                let result = invocation.invoke_async(c).await;
                if result.is_err() {
                    *current = None;
                }
                result
            }
        };
        let (n, ttl) = result?;
        Ok((
            u64::try_from(n).unwrap_or(0),
            u64::try_from(ttl).unwrap_or(0),
        ))
    }

    /// Counts one more event under `key` in a window that starts with the first: the count so
    /// far, and how long until the window ends.
    pub async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), SharedError> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let (n, ttl) = self.eval(HIT, key, &[window_ms]).await?;
        Ok((n, Duration::from_millis(ttl)))
    }

    /// The count under `key` and how long until its window ends (zero when there is none).
    pub async fn peek(&self, key: &str) -> Result<(u64, Duration), SharedError> {
        let (n, ttl) = self.eval(PEEK, key, &[]).await?;
        Ok((n, Duration::from_millis(ttl)))
    }

    /// Forgets `key`.
    pub async fn clear(&self, key: &str) -> Result<(), SharedError> {
        self.eval("redis.call('DEL', KEYS[1]) return {0, 0}", key, &[])
            .await
            .map(drop)
    }

    /// Checks that Redis answers (readiness, `config check`).
    pub async fn ping(&self) -> Result<(), SharedError> {
        self.peek("berth:ping").await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            RedisSpec::parse("redis://u:p@h:6379/0").unwrap(),
            RedisSpec::Single("redis://u:p@h:6379/0".into())
        );
        assert_eq!(
            RedisSpec::parse("redis+sentinel://:pw@a:26379,b:26379/mymaster").unwrap(),
            RedisSpec::Sentinel {
                sentinels: vec!["redis://a:26379".into(), "redis://b:26379".into()],
                master: "mymaster".into(),
                credentials: Some(":pw".into()),
            }
        );
        assert_eq!(
            RedisSpec::parse("redis+cluster://u:p@a:1,b:2").unwrap(),
            RedisSpec::Cluster(vec!["redis://u:p@a:1".into(), "redis://u:p@b:2".into()])
        );
        for bad in [
            "",
            "http://x",
            "redis+sentinel://a:1",
            "redis+sentinel://a:1/",
            "redis+cluster://",
        ] {
            assert!(RedisSpec::parse(bad).is_err(), "{bad}");
        }
        let e = RedisSpec::parse("memcached://u:secret@h")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
