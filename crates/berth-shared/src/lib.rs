//! State that Berth nodes share beyond the metadata database, in Redis when `BERTH_REDIS_URL`
//! names one (a single server, a Sentinel-managed master, or a Cluster):
//! - counters with a window (failed logins: a password guesser meets the same limit on every
//!   node);
//! - generation-stamped hashes (lookup caches that every writer can invalidate at once, and
//!   that a reader racing a writer cannot fill with a stale value);
//! - values with a sliding expiry (sessions).
//!
//! Every operation is one script on one key, so it is atomic on a single server and in a
//! Cluster alike. Callers keep an in-process fallback for when Redis is not configured, and
//! decide what an unreachable Redis means for them.
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

/// A hash's generation and one of its fields. (Lua `false` is Redis' nil.)
const CACHED: &str =
    "return {redis.call('HGET', KEYS[1], 'g'), redis.call('HGET', KEYS[1], ARGV[1])}";

/// Sets a field if the generation is still the one read (absent reads as ''), bounding the
/// hash's size; a new hash starts its expiry.
const FILL: &str = "local g = redis.call('HGET', KEYS[1], 'g') \
    if (g or '') ~= ARGV[1] then return 0 end \
    if redis.call('HLEN', KEYS[1]) >= 4096 then return 0 end \
    redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) \
    if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end \
    return 1";

/// Replaces a hash with only a new generation.
const INVALIDATE: &str = "redis.call('DEL', KEYS[1]) \
    redis.call('HSET', KEYS[1], 'g', ARGV[1]) \
    redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
    return 1";

const PUT: &str = "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";

/// A value and its milliseconds left (Lua `false` is Redis' nil).
const GET: &str = "local v = redis.call('GET', KEYS[1]) \
    if not v then return {false, 0} end \
    return {v, redis.call('PTTL', KEYS[1])}";

const TOUCH: &str = "local v = redis.call('GET', KEYS[1]) \
    if v then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
    return v";

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

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
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &str,
        key: &str,
        args: &[&[u8]],
    ) -> Result<T, SharedError> {
        let script = redis::Script::new(script);
        let mut invocation = script.key(key);
        for a in args {
            invocation.arg(*a);
        }
        let result = match &*self.connection {
            Connection::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Connection::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
            Connection::Sentinel(s) => {
                // The lock covers finding the master, not the call: calls stay concurrent.
                let mut connection = {
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
                    current.clone().ok_or_else(|| {
                        redis::RedisError::from((redis::ErrorKind::Io, "no master connection"))
                    })?
                };
                let result = invocation.invoke_async(&mut connection).await;
                if result.is_err() {
                    s.lock().await.current = None;
                }
                result
            }
        };
        Ok(result?)
    }

    /// Runs a script that answers a count and a time left in milliseconds.
    async fn eval(&self, script: &str, key: &str, args: &[u64]) -> Result<(u64, u64), SharedError> {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.to_string().into_bytes()).collect();
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let (n, ttl): (i64, i64) = self.invoke(script, key, &args).await?;
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

    /// A cached field of a generation-stamped hash (see `fill`): the hash's generation as seen
    /// now, to hand back to `fill`, and the field's value if it is cached.
    pub async fn cached(
        &self,
        key: &str,
        field: &str,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), SharedError> {
        let (generation, value): (Option<Vec<u8>>, Option<Vec<u8>>) =
            self.invoke(CACHED, key, &[field.as_bytes()]).await?;
        Ok((generation.unwrap_or_default(), value))
    }

    /// Caches `field = value` in the hash `key`, unless the hash's generation changed since
    /// `generation` was read (a writer invalidated it meanwhile: the value may be stale). A new
    /// hash expires `ttl` after its first field. Returns whether it was stored.
    pub async fn fill(
        &self,
        key: &str,
        generation: &[u8],
        field: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, SharedError> {
        let ttl = millis(ttl);
        let stored: i64 = self
            .invoke(
                FILL,
                key,
                &[generation, field.as_bytes(), value, ttl.as_bytes()],
            )
            .await?;
        Ok(stored == 1)
    }

    /// Drops every field of the hash `key` and gives it a new generation, `generation`
    /// (unique), so that a `fill` based on an earlier read stores nothing.
    pub async fn invalidate(
        &self,
        key: &str,
        generation: &[u8],
        ttl: Duration,
    ) -> Result<(), SharedError> {
        let ttl = millis(ttl);
        let _: i64 = self
            .invoke(INVALIDATE, key, &[generation, ttl.as_bytes()])
            .await?;
        Ok(())
    }

    /// Stores `value` under `key` for `ttl`.
    pub async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SharedError> {
        let ttl = millis(ttl);
        let _: i64 = self.invoke(PUT, key, &[value, ttl.as_bytes()]).await?;
        Ok(())
    }

    /// The value under `key` and how long it has left.
    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>, SharedError> {
        let (value, left): (Option<Vec<u8>>, i64) = self.invoke(GET, key, &[]).await?;
        Ok(value.map(|v| (v, Duration::from_millis(u64::try_from(left).unwrap_or(0)))))
    }

    /// The value under `key`, whose lifetime starts again at `ttl` (sliding expiry).
    pub async fn touch(&self, key: &str, ttl: Duration) -> Result<Option<Vec<u8>>, SharedError> {
        let ttl = millis(ttl);
        self.invoke(TOUCH, key, &[ttl.as_bytes()]).await
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
