//! Applying invalidations to Redis: the clock tick, the stamps, the
//! entries dropped (tags in batches, prefixes a page at a time), and the
//! message to the other instances.

use futures_util::{StreamExt, stream};

use super::{FETCH_WINDOW, RedisStore, message::Message, ttl_ms};
use crate::{error::StoreError, invalidation_log::Target, metrics::Op};

/// Keys of a taken tag dropped per round trip.
const DRAIN_BATCH: usize = 500;

/// How many commands an invalidation keeps in flight at once.
const INVALIDATION_CONCURRENCY: usize = 64;

impl RedisStore {
    /// Applies an invalidation, or keeps it for later when Redis cannot be
    /// reached, on a task of its own: a caller that goes away halfway never
    /// leaves it applied to Redis but neither published nor kept.
    pub(super) async fn invalidate(&self, target: Target) -> Result<u64, StoreError> {
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
    pub(super) async fn apply(&self, target: &Target) -> Result<u64, StoreError> {
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
}
