//! The Lua scripts of the Redis store: every check and write that must be
//! atomic on one slot.

use redis::Script;

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

pub(super) struct Scripts {
    pub(super) clock_read: Script,
    pub(super) clock_tick: Script,
    pub(super) set_entry: Script,
    pub(super) commit: Script,
    pub(super) withdraw: Script,
    pub(super) write_all: Script,
    pub(super) tag_add: Script,
    pub(super) tag_take: Script,
    pub(super) key_drop: Script,
    pub(super) drop_if_tagged: Script,
    pub(super) tag_check: Script,
    pub(super) entry_read: Script,
    pub(super) prefix_note: Script,
    pub(super) prefix_check: Script,
    pub(super) release_lease: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
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
