//! A shared store on Redis or Redis Cluster.

use std::{
    fmt,
    future::Future,
    sync::{
        Arc, Mutex, PoisonError, RwLock, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::{Client, ErrorKind, RedisError, ServerErrorKind};

use crate::{
    CachedEntry,
    error::StoreError,
    invalidation_log::Target,
    metrics::{self, Op, StoreLabel},
    store::{Lease, LeaseToken, Stamp, Store},
};

mod breaker;
mod builder;
mod conn;
mod entries;
mod invalidate;
mod layout;
pub(crate) mod message;
mod pending;
mod scripts;

pub use self::breaker::{BreakerState, BreakerStats, DEFAULT_COOL_DOWN, DEFAULT_FAILURE_THRESHOLD};
pub use self::builder::RedisStoreBuilder;
use self::{
    breaker::Breaker,
    conn::Conn,
    layout::Layout,
    message::Message,
    pending::{Pending, Running},
    scripts::Scripts,
};

/// Response timeout of [`RedisStore`] by default: generous for a 1 MiB
/// value on a local network, short enough not to hold requests up long.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Connection timeout of [`RedisStore`] by default.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest fetch whose response is stored, and how long invalidation
/// stamps are kept: a response whose fetch began longer ago than this
/// could predate an invalidation whose stamp is gone.
pub(crate) const FETCH_WINDOW: Duration = Duration::from_secs(600);

/// A store on a Redis server or a Redis Cluster, shared by every instance
/// of an application.
///
/// # Layout
///
/// Entries are stored with the crate's versioned [`codec`](crate::store::codec) (compressed above
/// a size, by default) under `{prefix}{h}e:{key}`, where `{h}` is a short
/// hash of the key in braces: a Redis Cluster hash tag, so that an entry and
/// the set of its tags `{prefix}{h}o:{key}` and its key's invalidation
/// stamp `{prefix}{h}k:{key}` live on one slot and are checked and written
/// together by one script. Each tag is a sorted set
/// `{prefix}{g}t:{tag}` of the keys stored with it, scored by their expiry,
/// with the tag's invalidation stamp `{prefix}{g}s:{tag}` beside it (`{g}`
/// a hash of the tag); a write drops the keys whose entries expired, so a
/// set holds no more than the tag's live entries and expires with the last
/// of them. Foreign or corrupt bytes at a key read as a miss and are
/// overwritten by the next store.
///
/// # Consistency
///
/// Invalidations are ordered against fetches, across every instance that
/// shares the store:
///
/// - Every invalidation advances a clock (`{prefix}clock`: Redis time in
///   µs, never going back) and leaves its value as the stamp of each key
///   and tag it invalidates, kept for ten minutes. A prefix invalidation is
///   noted in `{prefix}prefixes` for as long.
/// - A lookup that finds nothing reads the clock in the same round trip
///   ([`Store::get_stamped`]): the [`Stamp`] of the fetch that follows,
///   which the entry it stores keeps beside it (`{prefix}{h}k:{key}`
///   holds the later of the key's last invalidation and the stored entry's
///   fetch). The entry is stored only if no invalidation of its key, of
///   one of its tags or of a prefix of its key, and no write of a fetch
///   that began later, has a later stamp, and only if the fetch took less
///   than ten minutes.
/// - An entry is served only if every one of its tags still lists its key
///   and none of them, and no prefix of its key, was invalidated after its
///   fetch began. So a write that loses a race with an invalidation is
///   never visible, even before it is withdrawn; and an entry whose tag
///   bookkeeping or stamp is gone — invalidated, or evicted under
///   `maxmemory` — is a miss, never a stale hit. A tag invalidation moves
///   the tag's set away at once; the entries that still carry the tag are
///   then dropped in batches of 500, so that invalidating a huge tag never
///   blocks Redis.
/// - Every tag an entry is stored under has a stamp, kept as long as its
///   entries: a write that finds none (a new tag, or a stamp evicted: Redis
///   cannot tell) takes the tag as invalidated at the clock's current
///   value, so a fetch that overlapped any invalidation is not stored under
///   it, and a read that finds none counts the entry as invalidated.
///
/// What it costs: a miss reads the clock alongside the entry (no extra
/// round trip on a server, a parallel request on a cluster); a hit reads
/// the entry with its stamp, then checks its tags and the recent prefix
/// invalidations (two round trips, the second a script per tag); storing
/// an entry takes one round trip on a server (one script checks and writes
/// everything) and four on a cluster (the entry written pending, the prefix
/// notes and the clock, its tags in parallel, the commit); invalidating
/// tags takes three (clock, tags, the batches of entries) and publishing
/// the invalidation one more. A clock found absent (a first start, a
/// restart without persistence, an eviction) counts as an invalidation of
/// every key: what was fetched before is neither stored nor served.
///
/// Needs Redis 6.2 or later (or a compatible server with Lua scripting).
/// Use `noeviction` or an `allkeys-*` eviction policy: the stamps expire
/// (after ten minutes), so a `volatile-*` policy evicts them before the
/// entries they guard.
///
/// # Invalidations while Redis is unreachable
///
/// An invalidation that fails is kept (up to 1,024 keys, tags and
/// prefixes; past that, an invalidation of every entry under the prefix
/// replaces them) and applied, then published, in the background as soon
/// as Redis answers again (every kept tag in one invalidation). Until then
/// the store neither reads from nor writes to Redis
/// ([`StoreError::Replaying`]): requests are served from the origin, never
/// from entries an invalidation they cannot see yet covers. New
/// invalidations are applied at once meanwhile. The failing call still
/// returns its error. An invalidation Redis refuses (out of memory under
/// `noeviction`, say) is kept the same way, and the store bypasses Redis
/// until Redis takes it.
///
/// # Connections and failure
///
/// One multiplexed connection serves every request: a reconnecting
/// [`ConnectionManager`](redis::aio::ConnectionManager) for a server, a
/// cluster connection (which follows slot moves) for a cluster. A read
/// gives up after the response timeout, and so does a write on a server
/// (twice that on a cluster, where a write takes four round trips; a
/// request whose lookup failed writes nothing, and so waits on a failing
/// Redis for one response timeout at most), an invalidation after three times that (a prefix invalidation, which
/// scans, after three times that plus the timeout per page of 1,000 keys
/// scanned), waits for a reconnection included, so a stuck or dead server
/// costs a request at most that long. A circuit breaker opens
/// after consecutive failures: while it is open, operations fail at once
/// with [`StoreError::CircuitOpen`] (the engine serves from the origin),
/// and after a cool-down one operation probes Redis again; a probe that is
/// cancelled before Redis answers opens it again. When timeouts open the
/// breaker, the connection is replaced in the background: one that stopped
/// answering without failing (a half-open TCP connection) never recovers by
/// itself. Cheap to clone.
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
    /// The connection, once made; replaced when it stops answering.
    conn: RwLock<Option<Conn>>,
    connector: builder::Connector,
    /// Whether a task is replacing the connection.
    reconnecting: AtomicBool,
    /// The runtime the store was built on, for its own tasks (replays,
    /// reconnections): one that outlives the callers' (an actix worker's).
    runtime: Option<tokio::runtime::Handle>,
    layout: Layout,
    scripts: Scripts,
    breaker: Breaker,
    server: Arc<str>,
    response_timeout: Duration,
    compress_above: Option<usize>,
    /// Clients to subscribe to invalidations through, tried in order.
    subscribers: Vec<Client>,
    /// Tells this store's published invalidations from other instances'.
    instance: u64,
    /// Invalidations that could not reach Redis.
    pending: Mutex<Pending>,
    /// Whether `pending` holds any: read on every operation.
    has_pending: AtomicBool,
    /// Whether a task is replaying `pending`.
    replaying: AtomicBool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.inner.server)
            .field("prefix", &self.inner.layout.prefix())
            .field("breaker", &self.inner.breaker.state())
            .field("pending_invalidations", &self.pending_invalidations())
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
        self.inner.current_conn().is_some()
    }

    /// How many invalidations (keys, tags, prefixes) wait to be applied
    /// because Redis was unreachable when they were made; while any do, the
    /// store skips Redis.
    pub fn pending_invalidations(&self) -> usize {
        self.inner.lock_pending().size
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

    /// The id this store publishes its invalidations with.
    pub(crate) fn instance(&self) -> u64 {
        self.inner.instance
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
        let conn = self.inner.current_conn().ok_or(StoreError::Unavailable)?;
        let Some(permit) = self.inner.breaker.allow() else {
            return Err(StoreError::CircuitOpen);
        };
        // Bounds the whole operation, including any wait for a reconnection.
        let mut budget = self.inner.response_timeout.saturating_mul(round_trips(operation));
        if operation == Op::Put && matches!(conn, Conn::Cluster(_)) {
            // Four round trips one after the other on a cluster.
            budget = budget.saturating_mul(2);
        }
        let result = match metrics::timed(StoreLabel::Redis, operation, tokio::time::timeout(budget, op(conn))).await {
            Ok(result) => result,
            Err(_) => {
                if permit.failure() {
                    // A connection that stopped answering without failing (a
                    // half-open TCP connection, replies lost) never recovers
                    // by itself: the breaker's opening replaces it.
                    self.reconnect();
                }
                return Err(StoreError::Timeout {
                    operation: operation.as_str(),
                });
            }
        };
        match result {
            Ok(value) => {
                permit.success();
                Ok(value)
            }
            Err(err) => {
                if is_outage(&err) {
                    if permit.failure() && err.is_timeout() {
                        self.reconnect();
                    }
                } else {
                    // Redis answered: it is up.
                    permit.success();
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

    /// Replaces the connection in the background, unless that is under way.
    fn reconnect(&self) {
        let Some(runtime) = self.runtime() else {
            return;
        };
        if self.inner.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::downgrade(&self.inner);
        let running = Running(Weak::clone(&inner), |inner| &inner.reconnecting);
        runtime.spawn(async move {
            // Cleared however the task ends, so that the next opening of the
            // breaker tries again.
            let _running = running;
            let Some(connector) = inner.upgrade().map(|inner| inner.connector.clone()) else {
                return;
            };
            let result = connector.connect().await;
            let Some(inner) = inner.upgrade() else { return };
            match result {
                Ok(conn) => {
                    *inner.conn.write().unwrap_or_else(PoisonError::into_inner) = Some(conn);
                    tracing::info!(server = %inner.server, "redis connection replaced after it stopped answering");
                }
                Err(err) => tracing::debug!(server = %inner.server, error = %err, "redis connection not replaced yet"),
            }
        });
    }

    /// Fails while invalidations wait to be replayed (and makes sure they
    /// are being replayed).
    fn check_pending(&self) -> Result<(), StoreError> {
        if self.inner.has_pending.load(Ordering::Acquire) {
            self.start_replay();
            return Err(StoreError::Replaying);
        }
        Ok(())
    }

    async fn publish(&self, message: Message<'_>) -> Result<(), StoreError> {
        let channel = self.inner.layout.channel();
        let payload = message.encode(self.inner.instance);
        self.call(Op::Publish, |mut conn| async move {
            redis::cmd("PUBLISH").arg(&channel).arg(payload).query_async::<i64>(&mut conn).await
        })
        .await
        .map(drop)
    }

    /// The runtime the store's own tasks run on: the one it was built on,
    /// or the caller's.
    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.inner.runtime.clone().or_else(|| tokio::runtime::Handle::try_current().ok())
    }
}

impl Inner {
    fn current_conn(&self) -> Option<Conn> {
        self.conn.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Every critical section leaves a valid queue.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How many response timeouts an operation may take in all.
fn round_trips(operation: Op) -> u32 {
    match operation {
        // With the lookup's, at most one response timeout in all for a
        // request: a lookup that timed out leaves no stamp, and its put
        // never reaches Redis.
        Op::Put => 1,
        Op::InvalidateTags | Op::InvalidatePrefix | Op::Delete => 3,
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
        Ok(self.read(key, false).await?.0.map(|(entry, _)| entry))
    }

    async fn get_stamped(&self, key: &str) -> Result<(Option<Arc<CachedEntry>>, Stamp), StoreError> {
        let (found, stamp) = self.read(key, true).await?;
        Ok((found.map(|(entry, _)| entry), stamp))
    }

    async fn stamp(&self) -> Result<Stamp, StoreError> {
        self.check_pending()?;
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        let clock = self
            .call(Op::Get, |mut conn| async move {
                layout.clock_script(&scripts.clock_read).invoke_async::<u64>(&mut conn).await
            })
            .await?;
        Ok(Stamp::at(clock))
    }

    async fn put(&self, key: &str, entry: Arc<CachedEntry>, ttl: Duration) -> Result<(), StoreError> {
        self.write(key, &entry, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.invalidate(Target::Key(key.to_owned())).await.map(|dropped| dropped > 0)
    }

    async fn invalidate_tags(&self, tags: &[String]) -> Result<u64, StoreError> {
        if tags.is_empty() {
            return Ok(0);
        }
        self.invalidate(Target::Tags(tags.to_vec())).await
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        self.invalidate(Target::Prefix(prefix.to_owned())).await
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
