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

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use redis::{Client, ErrorKind, RedisError, Script, ServerErrorKind};

use crate::{
    CachedEntry, codec,
    error::StoreError,
    invalidation_log::Target,
    metrics::{self, Op, StoreLabel},
    store::{Lease, LeaseToken, Stamp, Store},
};

mod breaker;
mod builder;
mod conn;
mod layout;
pub(crate) mod message;

pub use self::breaker::{BreakerState, BreakerStats, DEFAULT_COOL_DOWN, DEFAULT_FAILURE_THRESHOLD};
pub use self::builder::RedisStoreBuilder;
use self::{breaker::Breaker, conn::Conn, layout::Layout, message::Message};

/// Response timeout of [`RedisStore`] by default: generous for a 1 MiB
/// value on a local network, short enough not to hold requests up long.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Connection timeout of [`RedisStore`] by default.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// The clock of invalidations, read by a lookup for the fetch that may
/// follow: Redis time in µs (less one), or the clock when it is later.
/// Every later invalidation ticks past it, as long as Redis time does not
/// step back. When the clock is absent, the history of invalidations is
/// lost (a first start, a restart without persistence, an eviction): it
/// starts again, past every note, and an invalidation of every key is
/// noted then, so that nothing fetched before counts as ordered. KEYS[1]
/// the clock, KEYS[2] the recent prefix invalidations (same slot); ARGV[1]
/// how long notes are kept (ms). Returns the stamp.
const CLOCK_READ: &str = r"
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) - 1
local c = redis.call('GET', KEYS[1])
if c then return math.max(tonumber(c), now) end
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) >= now then now = tonumber(top[2]) + 1 end
redis.call('ZADD', KEYS[2], 'GT', now, '')
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', now))
return now
";

/// Advances the clock of invalidations and returns its new value: Redis
/// time in µs, or one more than the clock when that is later (so that it
/// never goes back, and passes every stamp a lookup read). An absent clock
/// is lost history, as in [`CLOCK_READ`]. KEYS[1] the clock, KEYS[2] the
/// recent prefix invalidations; ARGV[1] how long notes are kept (ms).
const CLOCK_TICK: &str = r"
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local c = redis.call('GET', KEYS[1])
if c then
  if tonumber(c) >= now then now = tonumber(c) + 1 end
else
  local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if top[2] and tonumber(top[2]) >= now then now = tonumber(top[2]) + 1 end
  redis.call('ZADD', KEYS[2], 'GT', now, '')
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
redis.call('SET', KEYS[1], string.format('%.0f', now))
return now
";

/// The stamp a key's stamp holds (`p` marks a write not yet committed).
/// Used by the scripts below as `stamp_of(redis.call('GET', name))`.
const STAMP_OF: &str = r"
local function stamp_of(value)
  if not value then return nil end
  return tonumber((string.gsub(value, '^p', '')))
end
";

/// Stores an entry and replaces the set of its tags, unless its key was
/// invalidated, or written by a fetch that began, after this entry's fetch
/// began, or the fetch is older than stamps are kept. KEYS[1] entry,
/// KEYS[2] the key's stamp (the later of its last invalidation and the
/// fetch of the entry stored: what a read checks the entry's tags
/// against), KEYS[3] the entry's tags; ARGV[1] encoded entry, ARGV[2] TTL
/// in ms, ARGV[3] the fetch's stamp, ARGV[4] the longest fetch stored
/// (µs), ARGV[5] `p` to store the stamp as pending (a read treats the
/// entry as absent until [`COMMIT`] runs) or empty, ARGV[6..] tags.
/// Returns 1 when stored.
const SET_ENTRY: &str = r"
redis.replicate_commands()
local since = tonumber(ARGV[3])
local inv = stamp_of(redis.call('GET', KEYS[2]))
if inv and inv > since then return 0 end
local t = redis.call('TIME')
local window = tonumber(ARGV[4])
if tonumber(t[1]) * 1000000 + tonumber(t[2]) - since > window then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[5] .. ARGV[3], 'PX', math.max(tonumber(ARGV[2]), math.floor(window / 1000)))
redis.call('DEL', KEYS[3])
if #ARGV > 5 then
  for i = 6, #ARGV do redis.call('SADD', KEYS[3], ARGV[i]) end
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return 1
";

/// Withdraws a pending write, if the key's stamp is still its own (a later
/// write may have replaced it). KEYS[1] entry, KEYS[2] the key's stamp;
/// ARGV[1] the fetch's stamp.
const WITHDRAW: &str = r"
if redis.call('GET', KEYS[2]) ~= 'p' .. ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
";

/// Makes a pending write readable, if the key's stamp is still its own.
/// KEYS[1] the key's stamp; ARGV[1] the fetch's stamp, ARGV[2] the stamp's
/// TTL (ms). Returns 1 when committed.
const COMMIT: &str = r"
if redis.call('GET', KEYS[1]) ~= 'p' .. ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// The whole write of an entry on a single server, at once: the checks of
/// [`SET_ENTRY`], [`TAG_ADD`] for every tag and the recent prefix
/// invalidations, then the entry, its stamp, its tags and the tags'
/// listings. KEYS[1] entry, KEYS[2] the key's stamp, KEYS[3] the entry's
/// tags, KEYS[4] the recent prefix invalidations, KEYS[5] the clock (absent:
/// the history the fetch's stamp refers to is lost), then per tag its keys
/// and its stamp; ARGV[1] encoded entry, ARGV[2] TTL in ms, ARGV[3] the
/// fetch's stamp, ARGV[4] the longest fetch stored (µs), ARGV[5] key,
/// ARGV[6..] tags (in the order of their KEYS). Returns 1 when stored.
const WRITE_ALL: &str = r"
redis.replicate_commands()
if not redis.call('GET', KEYS[5]) then return 0 end
local since = tonumber(ARGV[3])
local inv = stamp_of(redis.call('GET', KEYS[2]))
if inv and inv > since then return 0 end
local clock = redis.call('GET', KEYS[5])
local keep = math.max(tonumber(ARGV[2]), math.floor(tonumber(ARGV[4]) / 1000))
local refused = false
for i = 6, #KEYS, 2 do
  -- Every tag's stamp made, refused or not, so that the next write passes.
  if tag_stamp(KEYS[i + 1], clock, keep) > since then refused = true end
end
if refused then return 0 end
for _, p in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. ARGV[3], '+inf')) do
  if string.sub(ARGV[5], 1, #p) == p then return 0 end
end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[4])
if now_us - since > window then return 0 end
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'PX', math.max(ttl, math.floor(window / 1000)))
redis.call('DEL', KEYS[3])
if #ARGV > 5 then
  for i = 6, #ARGV do redis.call('SADD', KEYS[3], ARGV[i]) end
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
local now = math.floor(now_us / 1000)
for i = 6, #KEYS, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZADD', KEYS[i], now + ttl, ARGV[5])
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[i], last[2])
end
return 1
";

/// Reads an entry, how long it is kept, and the stamp of its fetch, at
/// once. KEYS[1] entry, KEYS[2] the key's stamp. A value of another type
/// at the entry's name reads as none.
const ENTRY_READ: &str = r"
local ok, value = pcall(redis.call, 'GET', KEYS[1])
if not ok then value = false end
return {value, redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2])}
";

/// Whether a tag still lists a key, and was not invalidated after the
/// fetch of the entry read at the key began (a stamp gone, evicted, counts
/// as invalidated: every write leaves one). KEYS[1] the tag's keys,
/// KEYS[2] its stamp; ARGV[1] key, ARGV[2] the entry's stamp. Returns 1
/// when the entry may be served.
const TAG_CHECK: &str = r"
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local inv = redis.call('GET', KEYS[2])
if not inv or tonumber(inv) > tonumber(ARGV[2]) then return 0 end
return 1
";

/// Drops the entry at a key if it carries the tag ARGV[1] (a tag's set may
/// name a key whose entry has since been replaced by one without the
/// tag). KEYS[1] entry, KEYS[2] its tags. Returns 1 when dropped.
const DROP_IF_TAGGED: &str = r"
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Lists a key under a tag until its entry expires, unless the tag was
/// invalidated after the entry's fetch began; drops the keys whose entries
/// expired, and keeps the set, and the tag's stamp, as long as its
/// longest-lived entry. A tag without a stamp (never invalidated, or its
/// stamp evicted: Redis cannot tell) is taken as invalidated at the clock's
/// current value, and stamped so: a fetch that began after the last
/// invalidation of anything passes, one that overlapped any invalidation
/// does not. KEYS[1] the tag's keys (a sorted set scored by expiry, ms),
/// KEYS[2] the tag's invalidation stamp; ARGV[1] key, ARGV[2] TTL in ms,
/// ARGV[3] the fetch's stamp, ARGV[4] the longest fetch stored (µs),
/// ARGV[5] the clock, read after the entry was written. Returns 1 when
/// listed.
const TAG_ADD: &str = r"
redis.replicate_commands()
local since = tonumber(ARGV[3])
local ttl = tonumber(ARGV[2])
if tag_stamp(KEYS[2], ARGV[5], math.max(ttl, math.floor(tonumber(ARGV[4]) / 1000))) > since then return 0 end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
if now_us - since > tonumber(ARGV[4]) then return 0 end
local now = math.floor(now_us / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
";

/// A tag's stamp for a write (see [`TAG_ADD`]): the stamp, created at the
/// clock's value `clock` when absent, kept at least `keep` ms.
const TAG_STAMP: &str = r"
local function tag_stamp(name, clock, keep)
  local inv = redis.call('GET', name)
  if not inv then
    redis.call('SET', name, clock, 'PX', keep)
    return tonumber(clock)
  end
  if redis.call('PTTL', name) < keep then redis.call('PEXPIRE', name, keep) end
  return tonumber(inv)
end
";

/// Invalidates a tag: records the stamp, and moves the tag's keys to a
/// new name (at once: from then on, no entry listed there passes the read
/// check) for the caller to drain in batches. KEYS[1] the tag's keys,
/// KEYS[2] its stamp, KEYS[3] the name to move the keys to; ARGV[1] the
/// invalidation's stamp, ARGV[2] how long stamps are kept (ms). Returns how
/// many keys were moved.
const TAG_TAKE: &str = r"
local inv = redis.call('GET', KEYS[2])
if not inv or tonumber(inv) < tonumber(ARGV[1]) then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return redis.call('ZCARD', KEYS[3])
";

/// Invalidates a key: records the stamp and drops the entry. KEYS[1]
/// entry, KEYS[2] the key's stamp, KEYS[3] the entry's tags; ARGV[1] the
/// invalidation's stamp, ARGV[2] how long stamps are kept (ms). Returns 1
/// when an entry was dropped.
const KEY_DROP: &str = r"
local inv = stamp_of(redis.call('GET', KEYS[2]))
if not inv or inv < tonumber(ARGV[1]) then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
redis.call('DEL', KEYS[3])
return redis.call('DEL', KEYS[1])
";

/// Records a prefix invalidation, for the writes that overlap it, and
/// forgets those older than the longest fetch. KEYS[1] the recent prefix
/// invalidations (a sorted set scored by stamp); ARGV[1] prefix, ARGV[2]
/// the invalidation's stamp, ARGV[3] the longest fetch (µs), ARGV[4] the
/// same in ms.
const PREFIX_NOTE: &str = r"
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
";

/// Whether an entry fetched at a stamp is still ordered: the clock's
/// history is there (not lost since), and no prefix of its key was
/// invalidated after the stamp. KEYS[1] the clock, KEYS[2] the recent
/// prefix invalidations; ARGV[1] the stamp, ARGV[2] the key. Returns the
/// clock when the entry may be stored or served, 0 when not.
const PREFIX_CHECK: &str = r"
local clock = redis.call('GET', KEYS[1])
if not clock then return 0 end
for _, p in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')) do
  if string.sub(ARGV[2], 1, #p) == p then return 0 end
end
return tonumber(clock)
";

/// Releases a lease if it is still ours. KEYS[1] lease; ARGV[1] token.
const RELEASE_LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// The longest fetch whose response is stored, and how long invalidation
/// stamps are kept: a response whose fetch began longer ago than this
/// could predate an invalidation whose stamp is gone.
pub(crate) const FETCH_WINDOW: Duration = Duration::from_secs(600);

/// Keys of a taken tag dropped per round trip.
const DRAIN_BATCH: usize = 500;

/// Invalidations kept while Redis is unreachable (tags count one each);
/// past this the store forgets them and invalidates everything instead.
const MAX_PENDING: usize = 1024;

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

/// Invalidations kept while Redis was unreachable.
#[derive(Default)]
struct Pending {
    targets: Vec<Target>,
    /// How many keys, tags and prefixes `targets` names.
    size: usize,
    /// More were kept than [`MAX_PENDING`]: everything is invalidated.
    overflowed: bool,
    /// Counts every invalidation kept, so that a replay can tell whether
    /// one was kept while it ran.
    kept: u64,
}

struct Scripts {
    clock_read: Script,
    clock_tick: Script,
    set_entry: Script,
    commit: Script,
    withdraw: Script,
    write_all: Script,
    tag_add: Script,
    tag_take: Script,
    key_drop: Script,
    drop_if_tagged: Script,
    tag_check: Script,
    entry_read: Script,
    prefix_note: Script,
    prefix_check: Script,
    release_lease: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            clock_read: Script::new(CLOCK_READ),
            clock_tick: Script::new(CLOCK_TICK),
            set_entry: Script::new(&format!("{STAMP_OF}{SET_ENTRY}")),
            commit: Script::new(COMMIT),
            withdraw: Script::new(WITHDRAW),
            write_all: Script::new(&format!("{STAMP_OF}{TAG_STAMP}{WRITE_ALL}")),
            tag_add: Script::new(&format!("{TAG_STAMP}{TAG_ADD}")),
            tag_take: Script::new(TAG_TAKE),
            key_drop: Script::new(&format!("{STAMP_OF}{KEY_DROP}")),
            drop_if_tagged: Script::new(DROP_IF_TAGGED),
            tag_check: Script::new(TAG_CHECK),
            entry_read: Script::new(ENTRY_READ),
            prefix_note: Script::new(PREFIX_NOTE),
            prefix_check: Script::new(PREFIX_CHECK),
            release_lease: Script::new(RELEASE_LEASE),
        }
    }
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

    /// Reads an entry (checked against its tags), how long Redis keeps it,
    /// and, with `stamped`, the clock of invalidations.
    async fn read(&self, key: &str, stamped: bool) -> Result<(Option<(Arc<CachedEntry>, Duration)>, Stamp), StoreError> {
        self.check_pending()?;
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        let entry_key = layout.entry(key);
        let key_stamp = layout.key_stamp(key);
        let (found, clock) = self
            .call(Op::Get, |conn| async move {
                // Sent together on the multiplexed connection: one round trip.
                let (mut get_conn, mut clock_conn) = (conn.clone(), conn.clone());
                let get = async {
                    let mut read = scripts.entry_read.key(&entry_key);
                    read.key(&key_stamp);
                    read.invoke_async::<(Option<Vec<u8>>, i64, Option<String>)>(&mut get_conn).await
                };
                let clock = async {
                    if !stamped {
                        return Ok(None);
                    }
                    layout
                        .clock_script(&scripts.clock_read)
                        .invoke_async::<u64>(&mut clock_conn)
                        .await
                        .map(Some)
                };
                let ((bytes, pttl, fetched), clock) = futures_util::future::try_join(get, clock).await?;
                // Not a number: not written by this store.
                let fetched = fetched.and_then(|stamp| stamp.parse::<u64>().ok());
                let entry = match (bytes, fetched) {
                    (Some(bytes), Some(_)) if pttl > 0 => decode(key, bytes),
                    // An entry whose stamp is gone (evicted) cannot be
                    // checked against invalidations: a miss.
                    _ => None,
                };
                let (Some(entry), Some(fetched)) = (entry, fetched) else {
                    return Ok((None, clock));
                };
                // Every tag must still list the key and not have been
                // invalidated since the entry's fetch began (an invalidation
                // moves a tag's keys away and stamps it, an eviction drops
                // them), and no prefix of the key invalidated since then.
                let checks = entry.tags.iter().map(|tag| {
                    let mut conn = conn.clone();
                    let mut check = scripts.tag_check.key(layout.tag(tag));
                    check.key(layout.tag_stamp(tag)).arg(key).arg(fetched);
                    async move { check.invoke_async::<i64>(&mut conn).await }
                });
                let mut prefix_conn = conn.clone();
                let mut check = layout.prefix_check(&scripts.prefix_check);
                check.arg(fetched).arg(key);
                let ordered = async move { check.invoke_async::<i64>(&mut prefix_conn).await };
                let (listed, ordered) = futures_util::future::try_join(futures_util::future::try_join_all(checks), ordered).await?;
                if listed.contains(&0) || ordered == 0 {
                    tracing::debug!(key, "entry invalidated (or its bookkeeping evicted) since its fetch: a miss");
                    return Ok((None, clock));
                }
                Ok((Some((entry, Duration::from_millis(pttl.unsigned_abs()))), clock))
            })
            .await?;
        let stamp = clock.map_or(Stamp::NONE, Stamp::at);
        Ok((found, stamp))
    }

    /// Reads an entry and how long Redis keeps it.
    pub(crate) async fn get_with_ttl(&self, key: &str) -> Result<Option<(Arc<CachedEntry>, Duration)>, StoreError> {
        Ok(self.read(key, false).await?.0)
    }

    /// Reads an entry, how long Redis keeps it, and the clock.
    pub(crate) async fn get_with_ttl_stamped(&self, key: &str) -> Result<(Option<(Arc<CachedEntry>, Duration)>, Stamp), StoreError> {
        self.read(key, true).await
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

    fn encode(&self, entry: &CachedEntry) -> Bytes {
        match self.inner.compress_above {
            Some(min) => codec::encode_compressed(entry, min),
            None => codec::encode(entry),
        }
    }

    /// The runtime the store's own tasks run on: the one it was built on,
    /// or the caller's.
    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.inner.runtime.clone().or_else(|| tokio::runtime::Handle::try_current().ok())
    }

    /// Applies an invalidation, or keeps it for later when Redis cannot be
    /// reached, on a task of its own: a caller that goes away halfway never
    /// leaves it applied to Redis but neither published nor kept.
    async fn invalidate(&self, target: Target) -> Result<u64, StoreError> {
        let Some(runtime) = self.runtime() else {
            return self.invalidate_here(target).await;
        };
        let store = self.clone();
        let kept = target.clone();
        match runtime.spawn(async move { store.invalidate_here(target).await }).await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // The runtime is shutting down: kept, for a replay on another.
            Err(join) => {
                self.keep(kept);
                Err(StoreError::backend(join))
            }
        }
    }

    /// Applies an invalidation, or keeps it for later when Redis cannot be
    /// reached. Kept ones do not hold back a new one: invalidations commute.
    async fn invalidate_here(&self, target: Target) -> Result<u64, StoreError> {
        match self.apply(&target).await {
            Ok(dropped) => Ok(dropped),
            Err(err) => {
                tracing::warn!(server = %self.inner.server, error = %err, "invalidation kept until redis answers again");
                self.keep(target);
                self.start_replay();
                Err(err)
            }
        }
    }

    /// Applies an invalidation to Redis and publishes it.
    async fn apply(&self, target: &Target) -> Result<u64, StoreError> {
        let dropped = match target {
            Target::Key(key) => self.drop_key(key).await?,
            Target::Tags(tags) => self.drop_tags(tags).await?,
            Target::Prefix(prefix) => self.drop_prefix(prefix).await?,
        };
        let message = match target {
            Target::Key(key) => Message::Key(key),
            Target::Tags(tags) => Message::Tags(tags.iter().map(String::as_str).collect()),
            Target::Prefix(prefix) => Message::Prefix(prefix),
        };
        self.publish(message).await?;
        Ok(dropped)
    }

    async fn drop_key(&self, key: &str) -> Result<u64, StoreError> {
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        self.call(Op::Delete, |mut conn| async move {
            let stamp: u64 = layout.clock_script(&scripts.clock_tick).invoke_async(&mut conn).await?;
            let mut drop = scripts.key_drop.key(layout.entry(key));
            drop.key(layout.key_stamp(key))
                .key(layout.own(key))
                .arg(stamp)
                .arg(ttl_ms(FETCH_WINDOW));
            drop.invoke_async::<u64>(&mut conn).await
        })
        .await
    }

    async fn drop_tags(&self, tags: &[String]) -> Result<u64, StoreError> {
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        let taken = self
            .call(Op::InvalidateTags, |mut conn| async move {
                let stamp: u64 = layout.clock_script(&scripts.clock_tick).invoke_async(&mut conn).await?;
                let takes = tags.iter().map(|tag| {
                    let mut conn = conn.clone();
                    let moved_to = layout.taken_tag(tag, fastrand::u64(..));
                    let mut take = scripts.tag_take.key(layout.tag(tag));
                    take.key(layout.tag_stamp(tag)).key(&moved_to).arg(stamp).arg(ttl_ms(FETCH_WINDOW));
                    async move { take.invoke_async::<u64>(&mut conn).await.map(|n| (n, moved_to)) }
                });
                futures_util::future::try_join_all(takes).await
            })
            .await?;
        // The entries are unreadable already; dropping them frees memory.
        let mut dropped = 0;
        for (tag, (count, moved_to)) in tags.iter().zip(taken) {
            if count > 0 {
                dropped += self.drain(tag, &moved_to).await;
            }
        }
        Ok(dropped)
    }

    /// Drops the entries of a taken tag set, a batch at a time; returns how
    /// many there were. Stops at the first failure (the entries left are
    /// unreadable, and expire).
    async fn drain(&self, tag: &str, set: &str) -> u64 {
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        let mut dropped = 0;
        loop {
            let batch = self
                .call(Op::InvalidateTags, |mut conn| async move {
                    let popped: Vec<(String, f64)> = redis::cmd("ZPOPMIN").arg(set).arg(DRAIN_BATCH).query_async(&mut conn).await?;
                    let n = popped.len();
                    let mut drops = Vec::with_capacity(n);
                    for (key, _) in popped {
                        let mut conn = conn.clone();
                        let mut drop = scripts.drop_if_tagged.key(layout.entry(&key));
                        drop.key(layout.own(&key)).arg(tag);
                        drops.push(async move { drop.invoke_async::<u64>(&mut conn).await });
                    }
                    let mut dropped = 0;
                    let mut results = stream::iter(drops).buffer_unordered(INVALIDATION_CONCURRENCY);
                    while let Some(result) = results.next().await {
                        dropped += result?;
                    }
                    Ok((n, dropped))
                })
                .await;
            match batch {
                Ok((n, batch_dropped)) => {
                    dropped += batch_dropped;
                    if n < DRAIN_BATCH {
                        return dropped;
                    }
                }
                Err(err) => {
                    tracing::debug!(error = %err, "dropping invalidated entries stopped; they expire");
                    return dropped;
                }
            }
        }
    }

    async fn drop_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        let pattern = &layout.scan_pattern(prefix);
        let nodes = self
            .call(Op::InvalidatePrefix, |mut conn| async move {
                let stamp: u64 = layout.clock_script(&scripts.clock_tick).invoke_async(&mut conn).await?;
                let window_us = u64::try_from(FETCH_WINDOW.as_micros()).unwrap_or(u64::MAX);
                let mut note = scripts.prefix_note.key(layout.prefixes());
                note.arg(prefix).arg(stamp).arg(window_us).arg(ttl_ms(FETCH_WINDOW));
                note.invoke_async::<i64>(&mut conn).await?;
                conn.masters().await
            })
            .await?;
        // A page of the scan at a time, each within the response timeout:
        // a large keyspace takes as long as it takes, a hung Redis fails
        // the invalidation at its first page.
        let mut dropped = 0;
        for node in &nodes {
            let mut cursor: u64 = 0;
            loop {
                let (next, page_dropped) = self
                    .call(Op::InvalidatePrefix, |mut conn| async move {
                        let mut scan = redis::cmd("SCAN");
                        scan.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000);
                        let (next, keys): (u64, Vec<String>) = conn.query_node(node, &scan).await?;
                        let mut drops = Vec::with_capacity(keys.len());
                        for key in keys.iter().filter_map(|entry_key| layout.key_of_entry(entry_key)) {
                            let mut conn = conn.clone();
                            let mut pipe = redis::pipe();
                            pipe.del(layout.entry(key)).del(layout.own(key));
                            drops.push(async move { pipe.query_async::<(u64, u64)>(&mut conn).await.map(|(dropped, _)| dropped) });
                        }
                        let mut dropped = 0;
                        let mut results = stream::iter(drops).buffer_unordered(INVALIDATION_CONCURRENCY);
                        while let Some(result) = results.next().await {
                            dropped += result?;
                        }
                        Ok((next, dropped))
                    })
                    .await?;
                dropped += page_dropped;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(dropped)
    }

    /// Keeps an invalidation that could not be applied.
    fn keep(&self, target: Target) {
        let mut pending = self.inner.lock_pending();
        pending.kept += 1;
        if !pending.overflowed {
            pending.size += match &target {
                Target::Tags(tags) => tags.len().max(1),
                Target::Key(_) | Target::Prefix(_) => 1,
            };
            pending.targets.push(target);
            if pending.size > MAX_PENDING {
                tracing::warn!(
                    server = %self.inner.server,
                    "more than {MAX_PENDING} invalidations kept while redis is unreachable: every entry will be invalidated"
                );
                pending.targets.clear();
                pending.overflowed = true;
            }
        }
        self.inner.has_pending.store(true, Ordering::Release);
    }

    /// Starts the task that replays kept invalidations, unless it runs.
    fn start_replay(&self) {
        let Some(runtime) = self.runtime() else {
            return;
        };
        if self.inner.replaying.swap(true, Ordering::AcqRel) {
            return;
        }
        let running = Running(Arc::downgrade(&self.inner), |inner| &inner.replaying);
        runtime.spawn(replay(running));
    }
}

/// Clears one of a store's "a task is running" flags when the task ends,
/// however it ends (its runtime may shut down under it).
struct Running(Weak<Inner>, fn(&Inner) -> &AtomicBool);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            (self.1)(&inner).store(false, Ordering::Release);
        }
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

/// Applies the kept invalidations, oldest first, retrying until Redis
/// answers; ends when none are left or the store is dropped.
async fn replay(running: Running) {
    let mut delay = Duration::from_millis(50);
    loop {
        tokio::time::sleep(delay).await;
        let Some(inner) = running.0.upgrade() else { return };
        let store = RedisStore { inner };
        let (targets, overflowed, kept) = {
            let pending = store.inner.lock_pending();
            (pending.targets.clone(), pending.overflowed, pending.kept)
        };
        // Merged: every kept tag in one invalidation (one clock tick, one
        // message), then the keys, then the prefixes.
        let applied = async {
            if overflowed {
                store.apply(&Target::Prefix(String::new())).await?;
            }
            let mut tags: Vec<String> = Vec::new();
            for target in &targets {
                if let Target::Tags(kept) = target {
                    tags.extend(kept.iter().cloned());
                }
            }
            tags.sort_unstable();
            tags.dedup();
            if !tags.is_empty() {
                store.apply(&Target::Tags(tags)).await?;
            }
            for target in &targets {
                if !matches!(target, Target::Tags(_)) {
                    store.apply(target).await?;
                }
            }
            Ok::<_, StoreError>(())
        }
        .await;
        match applied {
            Ok(()) => {
                let mut pending = store.inner.lock_pending();
                if pending.overflowed && pending.kept != kept {
                    // Kept while everything was being invalidated, and
                    // perhaps before the invalidation of everything began:
                    // everything again.
                    delay = Duration::from_millis(1);
                    continue;
                }
                pending.overflowed = false;
                let applied = targets.len().min(pending.targets.len());
                pending.targets.drain(..applied);
                pending.size = pending
                    .targets
                    .iter()
                    .map(|t| match t {
                        Target::Tags(tags) => tags.len().max(1),
                        _ => 1,
                    })
                    .sum();
                if pending.targets.is_empty() {
                    store.inner.has_pending.store(false, Ordering::Release);
                    drop(pending);
                    tracing::info!(server = %store.inner.server, "invalidations kept while redis was unreachable applied");
                    return;
                }
                delay = Duration::from_millis(1);
            }
            Err(err) => {
                tracing::debug!(error = %err, "replaying kept invalidations failed; retrying");
                delay = (delay * 2).min(Duration::from_secs(1));
            }
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
        if entry.stamp().is_lost() {
            return Err(StoreError::Superseded);
        }
        self.check_pending()?;
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        let ttl = ttl_ms(ttl);
        // An entry put directly, without a fetch to order, is ordered as of
        // now.
        let since = match entry.stamp().clock() {
            Some(clock) => clock,
            None => self.stamp().await?.clock().unwrap_or_default(),
        };
        let window_us = u64::try_from(FETCH_WINDOW.as_micros()).unwrap_or(u64::MAX);
        let encoded = self.encode(&entry);
        let stored = self
            .call(Op::Put, |mut conn| async move {
                if matches!(conn, Conn::Single(_)) {
                    // One server: every check and write in one script.
                    let mut write = scripts.write_all.key(layout.entry(key));
                    write
                        .key(layout.key_stamp(key))
                        .key(layout.own(key))
                        .key(layout.prefixes())
                        .key(layout.clock());
                    for tag in &entry.tags {
                        write.key(layout.tag(tag)).key(layout.tag_stamp(tag));
                    }
                    write.arg(encoded.as_ref()).arg(ttl).arg(since).arg(window_us).arg(key);
                    for tag in &entry.tags {
                        write.arg(tag.as_str());
                    }
                    return Ok(write.invoke_async::<i64>(&mut conn).await? == 1);
                }
                // A cluster, where the entry, each tag and the clock with the
                // prefix notes live on different slots: the entry is written
                // pending (a read treats it as absent), the prefix notes are
                // checked (which reads the clock), the entry is listed under
                // its tags (each listing refused if the tag was invalidated
                // since the fetch began), then committed. A write
                // interrupted halfway stays unreadable.
                let mut set = scripts.set_entry.key(layout.entry(key));
                set.key(layout.key_stamp(key)).key(layout.own(key));
                set.arg(encoded.as_ref()).arg(ttl).arg(since).arg(window_us).arg("p");
                for tag in &entry.tags {
                    set.arg(tag.as_str());
                }
                if set.invoke_async::<i64>(&mut conn).await? == 0 {
                    return Ok(false);
                }
                let mut check = layout.prefix_check(&scripts.prefix_check);
                check.arg(since).arg(key);
                let clock = check.invoke_async::<u64>(&mut conn).await?;
                let mut listed = vec![i64::from(clock != 0)];
                if clock != 0 {
                    let adds = entry.tags.iter().map(|tag| {
                        let mut conn = conn.clone();
                        let mut add = scripts.tag_add.key(layout.tag(tag));
                        add.key(layout.tag_stamp(tag))
                            .arg(key)
                            .arg(ttl)
                            .arg(since)
                            .arg(window_us)
                            .arg(clock);
                        async move { add.invoke_async::<i64>(&mut conn).await }
                    });
                    listed = futures_util::future::try_join_all(adds).await?;
                }
                if listed.contains(&0) {
                    let mut withdraw = scripts.withdraw.key(layout.entry(key));
                    withdraw.key(layout.key_stamp(key)).arg(since);
                    withdraw.invoke_async::<u64>(&mut conn).await?;
                    return Ok(false);
                }
                let stamp_ttl = ttl.max(ttl_ms(FETCH_WINDOW));
                let mut commit = scripts.commit.key(layout.key_stamp(key));
                commit.arg(since).arg(stamp_ttl);
                Ok(commit.invoke_async::<i64>(&mut conn).await? == 1)
            })
            .await?;
        if stored { Ok(()) } else { Err(StoreError::Superseded) }
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
