//! Reading and writing entries: a read checked against the entry's tags
//! and the prefix notes, and a write ordered against invalidations (one
//! script on a server; pending, checked, listed and committed on a
//! cluster).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;

use super::{FETCH_WINDOW, RedisStore, conn::Conn, ttl_ms};
use crate::{
    CachedEntry, codec,
    error::StoreError,
    metrics::Op,
    store::{Stamp, Store},
};

impl RedisStore {
    /// Reads an entry (checked against its tags), how long Redis keeps it,
    /// and, with `stamped`, the clock of invalidations.
    pub(super) async fn read(&self, key: &str, stamped: bool) -> Result<(Option<(Arc<CachedEntry>, Duration)>, Stamp), StoreError> {
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

    /// Writes an entry unless an invalidation that concerns it (its key,
    /// one of its tags, a prefix of its key) ran after its fetch began:
    /// then [`StoreError::Superseded`].
    pub(super) async fn write(&self, key: &str, entry: &CachedEntry, ttl: Duration) -> Result<(), StoreError> {
        if entry.stamp().is_lost() {
            return Err(StoreError::Superseded);
        }
        self.check_pending()?;
        let layout = &self.inner.layout;
        let scripts = &self.inner.scripts;
        // An entry the codec cannot describe is never stored.
        let encoded = self.encode(entry)?;
        let ttl = ttl_ms(ttl);
        // An entry put directly, without a fetch to order, is ordered as of
        // now.
        let since = match entry.stamp().clock() {
            Some(clock) => clock,
            None => self.stamp().await?.clock().unwrap_or_default(),
        };
        let window_us = u64::try_from(FETCH_WINDOW.as_micros()).unwrap_or(u64::MAX);
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
