//! A shared store on Redis.

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::Bytes;
use redis::{AsyncCommands, Client, Script, aio::ConnectionManager, aio::ConnectionManagerConfig};

use crate::{CachedEntry, codec, error::StoreError, store::Store};

/// Response timeout of [`RedisStore`] by default: generous for a 1 MiB
/// value on a local network, short enough not to hold requests up long.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Connection timeout of [`RedisStore`] by default.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// Stores an entry and records it under its tags, dropping it from the
/// tags of the entry it replaces.
///
/// KEYS[1] entry key, KEYS[2] the entry's own tag list;
/// ARGV[1] encoded entry, ARGV[2] TTL in ms, ARGV[3] tag key prefix,
/// ARGV[4..] tags.
const PUT: &str = r"
local entry, own, ttl, tprefix = KEYS[1], KEYS[2], tonumber(ARGV[2]), ARGV[3]
for _, t in ipairs(redis.call('SMEMBERS', own)) do redis.call('SREM', tprefix .. t, entry) end
redis.call('DEL', own)
redis.call('SET', entry, ARGV[1], 'PX', ttl)
for i = 4, #ARGV do
  local tk = tprefix .. ARGV[i]
  redis.call('SADD', tk, entry)
  if redis.call('PTTL', tk) < ttl then redis.call('PEXPIRE', tk, ttl) end
  redis.call('SADD', own, ARGV[i])
end
if #ARGV >= 4 then redis.call('PEXPIRE', own, ttl) end
return 1
";

/// Drops every entry recorded under the tags in KEYS; ARGV[1] is the
/// store's key prefix. Returns how many entries were dropped.
const INVALIDATE_TAGS: &str = r"
local p, n = ARGV[1], 0
for i = 1, #KEYS do
  for _, e in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    local own = p .. 'o:' .. string.sub(e, #p + 3)
    for _, t in ipairs(redis.call('SMEMBERS', own)) do
      local tk = p .. 't:' .. t
      if tk ~= KEYS[i] then redis.call('SREM', tk, e) end
    end
    redis.call('DEL', own)
    n = n + redis.call('DEL', e)
  end
  redis.call('DEL', KEYS[i])
end
return n
";

/// A store on a Redis server, shared by every instance of an application.
///
/// Entries are stored with the crate's versioned [`codec`] under
/// `{prefix}e:{key}`; each tag is a set `{prefix}t:{tag}` of entry keys that
/// expires with its longest-lived entry, and each entry's tags are kept in
/// `{prefix}o:{key}`, so invalidating a tag costs O(entries of the tag) and
/// never scans the keyspace. Writes and tag invalidations run as Lua
/// scripts, atomically. Foreign or corrupt bytes at a key read as a miss
/// and are overwritten by the next store.
///
/// One multiplexed connection ([`ConnectionManager`]) serves every request
/// and reconnects by itself; commands time out after the response timeout,
/// so a stuck server costs a request at most that long. Cheap to clone.
///
/// This version speaks to one Redis server (`redis://`); the URL may carry
/// an ACL user, a password and a database number, which never appear in
/// `Debug` output.
///
/// [`RedisStoreBuilder::connect`] waits for the first connection;
/// [`RedisStoreBuilder::connect_lazy`] returns at once and connects in the
/// background, so that an application starts and serves from its origin
/// while Redis is down.
#[derive(Clone)]
pub struct RedisStore {
    conn: Arc<OnceLock<ConnectionManager>>,
    prefix: Arc<str>,
    put: Arc<Script>,
    invalidate: Arc<Script>,
    server: Arc<str>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.server)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Builds a [`RedisStore`].
#[derive(Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    response_timeout: Duration,
    connection_timeout: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A builder for the server at `url` (`redis://[user:password@]host:port[/db]`).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: "cache:".to_owned(),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
        }
    }

    /// The connection, once there is one.
    fn conn(&self) -> Result<ConnectionManager, StoreError> {
        self.conn.get().cloned().ok_or(StoreError::Unavailable)
    }

    fn entry_key(&self, key: &str) -> String {
        format!("{}e:{key}", self.prefix)
    }

    fn own_key(&self, key: &str) -> String {
        format!("{}o:{key}", self.prefix)
    }

    fn tag_key(&self, tag: &str) -> String {
        format!("{}t:{tag}", self.prefix)
    }
}

impl RedisStoreBuilder {
    /// A prefix for every key of this application, so that several share a
    /// server. Default: `cache:`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a command may take. Default: [`DEFAULT_RESPONSE_TIMEOUT`].
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long connecting may take. Default: [`DEFAULT_CONNECTION_TIMEOUT`].
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Connects, waiting for the first connection.
    ///
    /// # Errors
    ///
    /// An invalid URL, or a server that cannot be reached in time.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let (client, config, store) = self.parts()?;
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(StoreError::backend)?;
        // A fresh cell: it takes the connection.
        let _ = store.conn.set(conn);
        Ok(store)
    }

    /// Returns at once and connects in the background, retrying until the
    /// server answers. Until then every operation fails with
    /// [`StoreError::Unavailable`], which the engine treats like any store
    /// failure: requests are served by the origin.
    ///
    /// # Errors
    ///
    /// An invalid URL, or no tokio runtime to connect from.
    pub fn connect_lazy(self) -> Result<RedisStore, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(StoreError::backend)?;
        let (client, config, store) = self.parts()?;
        let cell = Arc::clone(&store.conn);
        let server = Arc::clone(&store.server);
        runtime.spawn(async move {
            let mut delay = Duration::from_millis(50);
            loop {
                match client.get_connection_manager_with_config(config.clone()).await {
                    Ok(conn) => {
                        let _ = cell.set(conn);
                        tracing::info!(%server, "redis store connected");
                        return;
                    }
                    Err(err) => tracing::warn!(%server, error = %err, "redis store not reachable yet; serving from the origin"),
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        });
        Ok(store)
    }

    fn parts(self) -> Result<(Client, ConnectionManagerConfig, RedisStore), StoreError> {
        let client = Client::open(self.url.as_str()).map_err(StoreError::backend)?;
        let info = client.get_connection_info();
        let server = format!("{}/{}", info.addr(), info.redis_settings().db());
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout));
        let store = RedisStore {
            conn: Arc::new(OnceLock::new()),
            prefix: self.prefix.into(),
            put: Arc::new(Script::new(PUT)),
            invalidate: Arc::new(Script::new(INVALIDATE_TAGS)),
            server: server.into(),
        };
        Ok((client, config, store))
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// `prefix` with Redis glob characters escaped, for `SCAN MATCH`.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 4);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Arc<CachedEntry>>, StoreError> {
        let mut conn = self.conn()?;
        let bytes: Option<Vec<u8>> = conn.get(self.entry_key(key)).await.map_err(StoreError::backend)?;
        let Some(bytes) = bytes else { return Ok(None) };
        match codec::decode(Bytes::from(bytes)) {
            Ok(entry) => Ok(Some(Arc::new(entry))),
            Err(err) => {
                tracing::debug!(key, error = %err, "foreign bytes in the store: a miss");
                Ok(None)
            }
        }
    }

    async fn put(&self, key: &str, entry: Arc<CachedEntry>, ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut invocation = self.put.key(self.entry_key(key));
        invocation
            .key(self.own_key(key))
            .arg(codec::encode(&entry).as_ref())
            .arg(ttl_ms(ttl))
            .arg(format!("{}t:", self.prefix));
        for tag in &entry.tags {
            invocation.arg(tag.as_str());
        }
        invocation.invoke_async::<i64>(&mut conn).await.map_err(StoreError::backend)?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let (dropped, _): (u64, u64) = redis::pipe()
            .del(self.entry_key(key))
            .del(self.own_key(key))
            .query_async(&mut conn)
            .await
            .map_err(StoreError::backend)?;
        Ok(dropped > 0)
    }

    async fn invalidate_tags(&self, tags: &[String]) -> Result<u64, StoreError> {
        if tags.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn()?;
        let mut invocation = self.invalidate.key(self.tag_key(&tags[0]));
        for tag in &tags[1..] {
            invocation.key(self.tag_key(tag));
        }
        invocation.arg(self.prefix.as_ref());
        invocation.invoke_async::<u64>(&mut conn).await.map_err(StoreError::backend)
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn()?;
        let pattern = format!("{}*", glob_escape(&self.entry_key(prefix)));
        let mut cursor: u64 = 0;
        let mut dropped = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(StoreError::backend)?;
            for entry_key in keys {
                let own = format!("{}o:{}", self.prefix, &entry_key[self.prefix.len() + 2..]);
                let (n, _): (u64, u64) = redis::pipe()
                    .del(&entry_key)
                    .del(own)
                    .query_async(&mut conn)
                    .await
                    .map_err(StoreError::backend)?;
                dropped += n;
            }
            if next == 0 {
                return Ok(dropped);
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\d"), "a\\*b\\?\\[c\\]\\\\d");
        assert_eq!(glob_escape("http:1:=acme:/p"), "http:1:=acme:/p");
    }
}
