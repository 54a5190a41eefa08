//! A shared store on Redis or Redis Cluster.

use std::{
    fmt,
    future::Future,
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use redis::{Client, ErrorKind, RedisError, Script, ServerErrorKind};

use crate::{
    CachedEntry, codec,
    error::StoreError,
    metrics::{self, Op, StoreLabel},
    store::{Lease, LeaseToken, Store},
};

mod breaker;
mod builder;
mod conn;
mod layout;

pub use self::breaker::{BreakerState, BreakerStats, DEFAULT_COOL_DOWN, DEFAULT_FAILURE_THRESHOLD};
pub use self::builder::RedisStoreBuilder;
use self::{
    breaker::Breaker,
    conn::{Conn, Node},
    layout::Layout,
};

/// Response timeout of [`RedisStore`] by default: generous for a 1 MiB
/// value on a local network, short enough not to hold requests up long.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Connection timeout of [`RedisStore`] by default.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// Stores an entry and replaces the set of its tags, atomically (both keys
/// share a hash slot).
///
/// KEYS[1] entry, KEYS[2] the entry's tag set; ARGV[1] encoded entry,
/// ARGV[2] TTL in ms, ARGV[3..] tags.
const SET_ENTRY: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
if #ARGV > 2 then
  for i = 3, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
";

/// Records a key under a tag, keeping the tag set alive as long as its
/// longest-lived entry. KEYS[1] tag set; ARGV[1] key, ARGV[2] TTL in ms.
const ADD_TO_TAG: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
";

/// Takes a tag set: returns its members and deletes it, atomically.
const TAKE_TAG: &str = r"
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members
";

/// Drops the entry at a key if it carries any of the tags in ARGV (a tag
/// set may name a key whose entry has since been replaced by one without
/// the tag). KEYS[1] entry, KEYS[2] its tag set. Returns 1 when dropped.
const DROP_IF_TAGGED: &str = r"
for i = 1, #ARGV do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 1 then
    redis.call('DEL', KEYS[2])
    return redis.call('DEL', KEYS[1])
  end
end
return 0
";

/// Releases a lease if it is still ours. KEYS[1] lease; ARGV[1] token.
const RELEASE_LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// How many commands an invalidation keeps in flight at once.
const INVALIDATION_CONCURRENCY: usize = 64;

/// A store on a Redis server or a Redis Cluster, shared by every instance
/// of an application.
///
/// # Layout
///
/// Entries are stored with the crate's versioned [`codec`] (compressed above
/// a size, by default) under `{prefix}{h}e:{key}`, where `{h}` is a short
/// hash of the key in braces: a Redis Cluster hash tag, so that an entry and
/// the set of its tags `{prefix}{h}o:{key}` live on one slot and are
/// written together by one script. Each tag is a set `{prefix}t:{tag}` of
/// keys, on whatever slot it hashes to, that expires with its longest-lived
/// entry. Invalidating a tag takes its set and drops each listed entry that
/// still carries the tag: O(entries of the tag), no `KEYS` or `SCAN`.
/// Invalidating a key prefix `SCAN`s (every master, on a cluster). Foreign
/// or corrupt bytes at a key read as a miss and are overwritten by the next
/// store.
///
/// # Connections and failure
///
/// One multiplexed connection serves every request: a reconnecting
/// [`ConnectionManager`](redis::aio::ConnectionManager) for a server, a
/// cluster connection (which follows slot moves) for a cluster. A read
/// gives up after the response timeout, a write after twice that (it takes
/// two round trips), waits for a reconnection included, so a stuck or dead
/// server costs a request at most that long. A circuit breaker opens after consecutive
/// failures: while it is open, operations fail at once with
/// [`StoreError::CircuitOpen`] (the engine serves from the origin), and
/// after a cool-down one operation probes Redis again. Cheap to clone.
///
/// The URL may carry an ACL user, a password and a database number;
/// `rediss://` connects over TLS (feature `redis-tls`). Credentials never
/// appear in logs or `Debug` output.
///
/// [`RedisStoreBuilder::connect`] waits for the first connection;
/// [`RedisStoreBuilder::connect_lazy`] returns at once and connects in the
/// background, so that an application starts and serves from its origin
/// while Redis is down.
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), cache_core::StoreError> {
/// use cache_core::RedisStore;
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379/0").prefix("shop:").connect().await?;
/// let cluster = RedisStore::cluster_builder(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]).connect().await?;
/// # let _ = (store, cluster);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: OnceLock<Conn>,
    layout: Layout,
    scripts: Scripts,
    breaker: Breaker,
    server: Arc<str>,
    response_timeout: Duration,
    compress_above: Option<usize>,
    /// Clients to subscribe to invalidations through, tried in order.
    subscribers: Vec<Client>,
}

struct Scripts {
    set_entry: Script,
    add_to_tag: Script,
    take_tag: Script,
    drop_if_tagged: Script,
    release_lease: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.inner.server)
            .field("prefix", &self.inner.layout.prefix())
            .field("breaker", &self.inner.breaker.state())
            .finish()
    }
}

impl RedisStore {
    /// A builder for the server at `url`:
    /// `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(vec![url.into()], false)
    }

    /// A builder for the Redis Cluster reachable at any of `urls` (seed
    /// nodes; the others are discovered). Credentials and TLS are taken
    /// from the first URL.
    pub fn cluster_builder<I, U>(urls: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = U>,
        U: Into<String>,
    {
        RedisStoreBuilder::new(urls.into_iter().map(Into::into).collect(), true)
    }

    /// Where the circuit breaker stands.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// The circuit breaker's counters.
    pub fn breaker_stats(&self) -> BreakerStats {
        self.inner.breaker.stats()
    }

    /// Whether the store has connected (always, after [`RedisStoreBuilder::connect`]).
    pub fn is_connected(&self) -> bool {
        self.inner.conn.get().is_some()
    }

    pub(crate) fn channel(&self) -> String {
        self.inner.layout.channel()
    }

    pub(crate) fn subscribers(&self) -> &[Client] {
        &self.inner.subscribers
    }

    pub(crate) fn server(&self) -> &Arc<str> {
        &self.inner.server
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        self.inner.response_timeout
    }

    /// Runs `op` on the connection, through the circuit breaker; records
    /// its time and counts its failure (see [`crate::metrics`]).
    async fn call<T, F, Fut>(&self, operation: Op, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let result = self.call_unrecorded(operation, op).await;
        if let Err(err) = &result {
            metrics::store_error(StoreLabel::Redis, operation, err);
        }
        result
    }

    async fn call_unrecorded<T, F, Fut>(&self, operation: Op, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let conn = self.inner.conn.get().cloned().ok_or(StoreError::Unavailable)?;
        if !self.inner.breaker.allow() {
            return Err(StoreError::CircuitOpen);
        }
        // Bounds the whole operation, including any wait for a reconnection.
        let budget = self.inner.response_timeout.saturating_mul(round_trips(operation));
        let result = match metrics::timed(StoreLabel::Redis, operation, tokio::time::timeout(budget, op(conn))).await {
            Ok(result) => result,
            Err(_) => {
                self.inner.breaker.failure();
                return Err(StoreError::Timeout {
                    operation: operation.as_str(),
                });
            }
        };
        match result {
            Ok(value) => {
                self.inner.breaker.success();
                Ok(value)
            }
            Err(err) => {
                if is_outage(&err) {
                    self.inner.breaker.failure();
                } else {
                    // Redis answered: it is up.
                    self.inner.breaker.success();
                }
                if err.is_timeout() {
                    Err(StoreError::Timeout {
                        operation: operation.as_str(),
                    })
                } else {
                    Err(StoreError::backend(err))
                }
            }
        }
    }

    /// Reads an entry and how long Redis keeps it.
    pub(crate) async fn get_with_ttl(&self, key: &str) -> Result<Option<(Arc<CachedEntry>, Duration)>, StoreError> {
        let entry_key = self.inner.layout.entry(key);
        let found = self
            .call(Op::Get, |mut conn| async move {
                let reply: Result<(Option<Vec<u8>>, i64), RedisError> =
                    redis::pipe().get(&entry_key).pttl(&entry_key).query_async(&mut conn).await;
                match reply {
                    Err(err) if err.code() == Some("WRONGTYPE") => Ok((None, 0)),
                    other => other,
                }
            })
            .await?;
        match found {
            (Some(bytes), pttl) if pttl > 0 => Ok(decode(key, bytes).map(|e| (e, Duration::from_millis(pttl.unsigned_abs())))),
            _ => Ok(None),
        }
    }

    pub(crate) async fn publish(&self, payload: Vec<u8>) -> Result<(), StoreError> {
        let channel = self.inner.layout.channel();
        self.call(Op::Publish, |mut conn| async move {
            redis::cmd("PUBLISH").arg(&channel).arg(payload).query_async::<i64>(&mut conn).await
        })
        .await
        .map(drop)
    }

    fn encode(&self, entry: &CachedEntry) -> Bytes {
        match self.inner.compress_above {
            Some(min) => codec::encode_compressed(entry, min),
            None => codec::encode(entry),
        }
    }
}

fn decode(key: &str, bytes: Vec<u8>) -> Option<Arc<CachedEntry>> {
    match codec::decode(Bytes::from(bytes)) {
        Ok(entry) => Some(Arc::new(entry)),
        Err(err) => {
            tracing::debug!(key, error = %err, "foreign bytes in the store: a miss");
            None
        }
    }
}

/// How many response timeouts an operation may take in all: its round
/// trips, and for invalidations, room for many.
fn round_trips(operation: Op) -> u32 {
    match operation {
        Op::Put => 2,
        Op::InvalidateTags | Op::InvalidatePrefix => 30,
        _ => 1,
    }
}

/// Whether an error means Redis is unreachable or unable to serve (as
/// opposed to answering with an error).
fn is_outage(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.kind(),
            ErrorKind::Io
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading | ServerErrorKind::TryAgain | ServerErrorKind::ClusterDown | ServerErrorKind::MasterDown
                )
        )
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Arc<CachedEntry>>, StoreError> {
        let entry_key = self.inner.layout.entry(key);
        let bytes = self
            .call(Op::Get, |mut conn| async move {
                match redis::cmd("GET").arg(&entry_key).query_async::<Option<Vec<u8>>>(&mut conn).await {
                    Err(err) if err.code() == Some("WRONGTYPE") => Ok(None),
                    other => other,
                }
            })
            .await?;
        Ok(bytes.and_then(|bytes| decode(key, bytes)))
    }

    async fn put(&self, key: &str, entry: Arc<CachedEntry>, ttl: Duration) -> Result<(), StoreError> {
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        let ttl = ttl_ms(ttl);
        let encoded = self.encode(&entry);
        self.call(Op::Put, |mut conn| async move {
            let mut set = scripts.set_entry.key(layout.entry(key));
            set.key(layout.own(key)).arg(encoded.as_ref()).arg(ttl);
            for tag in &entry.tags {
                set.arg(tag.as_str());
            }
            set.invoke_async::<i64>(&mut conn).await?;
            // After the entry, so that a tag invalidation racing this write
            // leaves the key listed under its tags for the next one.
            let adds = entry.tags.iter().map(|tag| {
                let mut conn = conn.clone();
                let mut add = scripts.add_to_tag.key(layout.tag(tag));
                add.arg(key).arg(ttl);
                async move { add.invoke_async::<i64>(&mut conn).await }
            });
            futures_util::future::try_join_all(adds).await?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let layout = &self.inner.layout;
        self.call(Op::Delete, |mut conn| async move {
            let (dropped, _): (u64, u64) = redis::pipe()
                .del(layout.entry(key))
                .del(layout.own(key))
                .query_async(&mut conn)
                .await?;
            Ok(dropped > 0)
        })
        .await
    }

    async fn invalidate_tags(&self, tags: &[String]) -> Result<u64, StoreError> {
        if tags.is_empty() {
            return Ok(0);
        }
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        self.call(Op::InvalidateTags, |conn| async move {
            // key -> the invalidated tags it was listed under.
            let mut listed: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
            for tag in tags {
                let mut conn = conn.clone();
                let keys: Vec<String> = scripts.take_tag.key(layout.tag(tag)).invoke_async(&mut conn).await?;
                for key in keys {
                    listed.entry(key).or_default().push(tag.clone());
                }
            }
            let drops = listed.into_iter().map(|(key, tags)| {
                let mut conn = conn.clone();
                let mut check = scripts.drop_if_tagged.key(layout.entry(&key));
                check.key(layout.own(&key));
                check.arg(tags);
                async move { check.invoke_async::<u64>(&mut conn).await }
            });
            let mut dropped = 0;
            let mut results = stream::iter(drops).buffer_unordered(INVALIDATION_CONCURRENCY);
            while let Some(result) = results.next().await {
                dropped += result?;
            }
            Ok(dropped)
        })
        .await
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let layout = &self.inner.layout;
        let pattern = layout.scan_pattern(prefix);
        self.call(Op::InvalidatePrefix, |mut conn| async move {
            let mut dropped = 0;
            for node in conn.masters().await? {
                let mut cursor: u64 = 0;
                loop {
                    let mut scan = redis::cmd("SCAN");
                    scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000);
                    let (next, keys): (u64, Vec<String>) = conn.query_node(&node, &scan).await?;
                    let mut drops = Vec::with_capacity(keys.len());
                    for key in keys.iter().filter_map(|entry_key| layout.key_of_entry(entry_key)) {
                        let mut conn = conn.clone();
                        let mut pipe = redis::pipe();
                        pipe.del(layout.entry(key)).del(layout.own(key));
                        drops.push(async move { pipe.query_async::<(u64, u64)>(&mut conn).await });
                    }
                    let mut results = stream::iter(drops).buffer_unordered(INVALIDATION_CONCURRENCY);
                    while let Some(result) = results.next().await {
                        dropped += result?.0;
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                if node == Node::Single {
                    break;
                }
            }
            Ok(dropped)
        })
        .await
    }

    async fn try_lease(&self, key: &str, ttl: Duration) -> Result<Lease, StoreError> {
        let lease_key = self.inner.layout.lease(key);
        let token = LeaseToken::random();
        let acquired = self
            .call(Op::Lease, |mut conn| {
                let token = token.as_str().to_owned();
                async move {
                    let reply: Option<String> = redis::cmd("SET")
                        .arg(&lease_key)
                        .arg(token)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl_ms(ttl))
                        .query_async(&mut conn)
                        .await?;
                    Ok(reply.is_some())
                }
            })
            .await?;
        Ok(if acquired { Lease::Acquired(token) } else { Lease::Held })
    }

    async fn release_lease(&self, key: &str, token: &LeaseToken) -> Result<(), StoreError> {
        let scripts = &self.inner.scripts;
        let lease_key = self.inner.layout.lease(key);
        self.call(Op::ReleaseLease, |mut conn| async move {
            let mut release = scripts.release_lease.key(lease_key);
            release.arg(token.as_str());
            release.invoke_async::<i64>(&mut conn).await.map(drop)
        })
        .await
    }

    /// Sets the circuit breaker's gauge.
    fn record_metrics(&self) {
        self.inner.breaker.record_metrics();
    }
}
