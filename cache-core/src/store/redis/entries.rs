//! Reading and writing entries: a read checked against the entry's tags
//! and the prefix notes, and a write ordered against invalidations (one
//! script on a server; pending, checked, listed and committed on a
//! cluster).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use redis::RedisError;

use super::{FETCH_WINDOW, RedisStore, conn::Conn, ttl_ms};
use crate::{
    CachedEntry,
    error::StoreError,
    metrics::Op,
    store::{Stamp, Store, codec},
};

/// An entry as read, before it is checked against invalidations.
struct Stored {
    entry: Arc<CachedEntry>,
    /// How long Redis keeps it.
    ttl: Duration,
    /// The clock's value when its fetch began.
    fetched: u64,
}

/// What a write sends: the entry, encoded, and what orders it against
/// invalidations.
struct Write<'a> {
    key: &'a str,
    entry: &'a CachedEntry,
    encoded: Bytes,
    /// How long Redis keeps the entry, in ms.
    ttl: u64,
    /// The clock's value when the entry's fetch began.
    since: u64,
    /// The longest fetch stored, in µs.
    window_us: u64,
}

impl RedisStore {
    /// Reads an entry (checked against its tags), how long Redis keeps it,
    /// and, with `stamped`, the clock of invalidations.
    pub(super) async fn read(&self, key: &str, stamped: bool) -> Result<(Option<(Arc<CachedEntry>, Duration)>, Stamp), StoreError> {
        self.check_pending()?;
        let (found, clock) = self
            .call(Op::Get, |conn| async move {
                // Sent together on the multiplexed connection: one round trip.
                let read = self.read_stored(conn.clone(), key);
                let clock = self.read_clock(conn.clone(), stamped);
                let (stored, clock) = futures_util::future::try_join(read, clock).await?;
                let Some(stored) = stored else {
                    return Ok((None, clock));
                };
                if !self.is_current(&conn, key, &stored).await? {
                    tracing::debug!(key, "entry invalidated (or its bookkeeping evicted) since its fetch: a miss");
                    return Ok((None, clock));
                }
                Ok((Some((stored.entry, stored.ttl)), clock))
            })
            .await?;
        let stamp = clock.map_or(Stamp::NONE, Stamp::at);
        Ok((found, stamp))
    }

    /// Reads an entry with how long Redis keeps it and when its fetch
    /// began; `None` for a miss, and for bytes this store cannot use.
    async fn read_stored(&self, mut conn: Conn, key: &str) -> Result<Option<Stored>, RedisError> {
        let layout = &self.inner.layout;
        let mut read = self.inner.scripts.entry_read.key(layout.entry(key));
        read.key(layout.key_stamp(key));
        let (bytes, pttl, fetched) = read.invoke_async::<(Option<Vec<u8>>, i64, Option<String>)>(&mut conn).await?;
        // Not a number: not written by this store.
        let fetched = fetched.and_then(|stamp| stamp.parse::<u64>().ok());
        let stored = match (bytes, fetched) {
            (Some(bytes), Some(fetched)) if pttl > 0 => decode(key, bytes).map(|entry| Stored {
                entry,
                ttl: Duration::from_millis(pttl.unsigned_abs()),
                fetched,
            }),
            // An entry whose stamp is gone (evicted) cannot be
            // checked against invalidations: a miss.
            _ => None,
        };
        Ok(stored)
    }

    /// Reads the clock of invalidations, with `stamped`.
    async fn read_clock(&self, mut conn: Conn, stamped: bool) -> Result<Option<u64>, RedisError> {
        if !stamped {
            return Ok(None);
        }
        let clock = self.inner.layout.clock_script(&self.inner.scripts.clock_read);
        clock.invoke_async::<u64>(&mut conn).await.map(Some)
    }

    /// Whether an entry read still stands against invalidations.
    async fn is_current(&self, conn: &Conn, key: &str, stored: &Stored) -> Result<bool, RedisError> {
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        // Every tag must still list the key and not have been
        // invalidated since the entry's fetch began (an invalidation
        // moves a tag's keys away and stamps it, an eviction drops
        // them), and no prefix of the key invalidated since then.
        let checks = stored.entry.tags.iter().map(|tag| {
            let mut conn = conn.clone();
            let mut check = scripts.tag_check.key(layout.tag(tag));
            check.key(layout.tag_stamp(tag)).arg(key).arg(stored.fetched);
            async move { check.invoke_async::<i64>(&mut conn).await }
        });
        let mut prefix_conn = conn.clone();
        let mut check = layout.prefix_check(&scripts.prefix_check);
        check.arg(stored.fetched).arg(key);
        let ordered = async move { check.invoke_async::<i64>(&mut prefix_conn).await };
        let (listed, ordered) = futures_util::future::try_join(futures_util::future::try_join_all(checks), ordered).await?;
        Ok(!listed.contains(&0) && ordered != 0)
    }

    /// Reads an entry and how long Redis keeps it.
    pub(crate) async fn get_with_ttl(&self, key: &str) -> Result<Option<(Arc<CachedEntry>, Duration)>, StoreError> {
        Ok(self.read(key, false).await?.0)
    }

    /// Reads an entry, how long Redis keeps it, and the clock.
    pub(crate) async fn get_with_ttl_stamped(&self, key: &str) -> Result<(Option<(Arc<CachedEntry>, Duration)>, Stamp), StoreError> {
        self.read(key, true).await
    }

    /// Writes an entry unless an invalidation that concerns it (its key,
    /// one of its tags, a prefix of its key) ran after its fetch began:
    /// then [`StoreError::Superseded`].
    pub(super) async fn write(&self, key: &str, entry: &CachedEntry, ttl: Duration) -> Result<(), StoreError> {
        if entry.stamp().is_lost() {
            return Err(StoreError::Superseded);
        }
        self.check_pending()?;
        // An entry the codec cannot describe is never stored.
        let encoded = self.encode(entry)?;
        // An entry put directly, without a fetch to order, is ordered as of
        // now.
        let since = match entry.stamp().clock() {
            Some(clock) => clock,
            None => self.stamp().await?.clock().unwrap_or_default(),
        };
        let write = Write {
            key,
            entry,
            encoded,
            ttl: ttl_ms(ttl),
            since,
            window_us: u64::try_from(FETCH_WINDOW.as_micros()).unwrap_or(u64::MAX),
        };
        let stored = self
            .call(Op::Put, |conn| async move {
                if matches!(conn, Conn::Single(_)) {
                    self.write_at_once(conn, &write).await
                } else {
                    self.write_in_steps(conn, &write).await
                }
            })
            .await?;
        if stored { Ok(()) } else { Err(StoreError::Superseded) }
    }

    /// Writes an entry on one server: every check and write in one script.
    /// Returns whether it was stored.
    async fn write_at_once(&self, mut conn: Conn, write: &Write<'_>) -> Result<bool, RedisError> {
        let layout = &self.inner.layout;
        let key = write.key;
        let mut script = self.inner.scripts.write_all.key(layout.entry(key));
        script
            .key(layout.key_stamp(key))
            .key(layout.own(key))
            .key(layout.prefixes())
            .key(layout.clock());
        for tag in &write.entry.tags {
            script.key(layout.tag(tag)).key(layout.tag_stamp(tag));
        }
        script
            .arg(write.encoded.as_ref())
            .arg(write.ttl)
            .arg(write.since)
            .arg(write.window_us)
            .arg(key);
        for tag in &write.entry.tags {
            script.arg(tag.as_str());
        }
        Ok(script.invoke_async::<i64>(&mut conn).await? == 1)
    }

    /// Writes an entry on a cluster, where the entry, each tag and the
    /// clock with the prefix notes live on different slots: the entry is
    /// written pending (a read treats it as absent), the prefix notes are
    /// checked (which reads the clock), the entry is listed under its tags
    /// (each listing refused if the tag was invalidated since the fetch
    /// began), then committed. A write interrupted halfway stays
    /// unreadable. Returns whether it was stored.
    async fn write_in_steps(&self, mut conn: Conn, write: &Write<'_>) -> Result<bool, RedisError> {
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        let key = write.key;
        if !self.write_pending(&mut conn, write).await? {
            return Ok(false);
        }
        let mut check = layout.prefix_check(&scripts.prefix_check);
        check.arg(write.since).arg(key);
        // 0: the clock is gone, or a prefix of the key was invalidated
        // since the fetch began.
        let clock = check.invoke_async::<u64>(&mut conn).await?;
        if clock == 0 || !self.list_under_tags(&conn, write, clock).await? {
            let mut withdraw = scripts.withdraw.key(layout.entry(key));
            withdraw.key(layout.key_stamp(key)).arg(write.since);
            withdraw.invoke_async::<u64>(&mut conn).await?;
            return Ok(false);
        }
        let stamp_ttl = write.ttl.max(ttl_ms(FETCH_WINDOW));
        let mut commit = scripts.commit.key(layout.key_stamp(key));
        commit.arg(write.since).arg(stamp_ttl);
        Ok(commit.invoke_async::<i64>(&mut conn).await? == 1)
    }

    /// Writes an entry pending, with its tags, unless the key's stamp is
    /// later than its fetch (an invalidation, or the write of a later fetch)
    /// or the fetch took longer than the window. Returns whether it was
    /// written.
    async fn write_pending(&self, conn: &mut Conn, write: &Write<'_>) -> Result<bool, RedisError> {
        let layout = &self.inner.layout;
        let mut set = self.inner.scripts.set_entry.key(layout.entry(write.key));
        set.key(layout.key_stamp(write.key)).key(layout.own(write.key));
        set.arg(write.encoded.as_ref())
            .arg(write.ttl)
            .arg(write.since)
            .arg(write.window_us)
            .arg("p");
        for tag in &write.entry.tags {
            set.arg(tag.as_str());
        }
        Ok(set.invoke_async::<i64>(conn).await? != 0)
    }

    /// Lists a pending entry under each of its tags, all at once; `clock`
    /// is the clock's value, for a tag without a stamp. Returns whether
    /// every tag took it.
    async fn list_under_tags(&self, conn: &Conn, write: &Write<'_>, clock: u64) -> Result<bool, RedisError> {
        let layout = &self.inner.layout;
        let adds = write.entry.tags.iter().map(|tag| {
            let mut conn = conn.clone();
            let mut add = self.inner.scripts.tag_add.key(layout.tag(tag));
            add.key(layout.tag_stamp(tag))
                .arg(write.key)
                .arg(write.ttl)
                .arg(write.since)
                .arg(write.window_us)
                .arg(clock);
            async move { add.invoke_async::<i64>(&mut conn).await }
        });
        let listed = futures_util::future::try_join_all(adds).await?;
        Ok(!listed.contains(&0))
    }

    fn encode(&self, entry: &CachedEntry) -> Result<Bytes, crate::error::CodecError> {
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
