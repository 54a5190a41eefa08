//! The embedded store: moka in memory, weighed by bytes, with a tag index.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use moka::{notification::RemovalCause, sync::Cache};

use crate::{
    CachedEntry,
    error::StoreError,
    metrics::{self, Op, StoreLabel},
    store::Store,
};

/// Capacity of [`MokaStore::default`]: 64 MiB.
pub const DEFAULT_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// An in-process store on [moka](https://docs.rs/moka).
///
/// Capacity is in bytes of entries (body, headers, tags, key), not in number
/// of entries; when it is full, the least valuable entries are evicted
/// (TinyLFU). Each entry expires after the TTL it was stored with. Tags are
/// indexed in memory, so invalidating a tag costs O(entries with that tag).
/// Cheap to clone: clones share the same entries. Reads answer at once
/// ([`Store::get_now`]), so a hit never waits.
///
/// # Metrics
///
/// Each operation's time goes to `http_cache_store_operation_seconds`
/// with `store="moka"`; the bytes and entries held to the gauges
/// `http_cache_store_bytes` and `http_cache_store_entries`, sampled after
/// each write or removal (moka updates its counts in batches, so they may
/// lag) and, exactly, by [`Store::record_metrics`]. See
/// [`crate::metrics`].
///
/// # Example
///
/// ```
/// use cache_core::MokaStore;
///
/// let store = MokaStore::builder().max_capacity(256 * 1024 * 1024).build();
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct MokaStore {
    /// Keys are shared with the tag index: one allocation per key.
    cache: Cache<Arc<str>, Stored, ahash::RandomState>,
    tags: Arc<TagIndex>,
    next_id: Arc<AtomicU64>,
    stripes: Arc<KeyStripes>,
}

/// Locks that serialize, per key, a write (index, then insert) against
/// another write or a tag invalidation's check-and-remove, so that the tag
/// index always reaches the entry at a key. Reads never take them.
struct KeyStripes {
    locks: Box<[Mutex<()>]>,
    hasher: ahash::RandomState,
}

impl KeyStripes {
    fn new() -> Self {
        KeyStripes {
            locks: (0..64).map(|_| Mutex::new(())).collect(),
            hasher: ahash::RandomState::new(),
        }
    }

    fn lock(&self, key: &str) -> std::sync::MutexGuard<'_, ()> {
        let i = (self.hasher.hash_one(key) % self.locks.len() as u64) as usize;
        // The guarded data is `()`: nothing to be left inconsistent.
        self.locks[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for MokaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MokaStore")
            .field("entries", &self.cache.entry_count())
            .field("weighted_bytes", &self.cache.weighted_size())
            .finish()
    }
}

impl Default for MokaStore {
    fn default() -> Self {
        MokaStore::builder().build()
    }
}

/// A value in moka: the entry, how long to keep it, and an id that tells
/// this entry from a later one at the same key.
#[derive(Clone)]
struct Stored {
    entry: Arc<CachedEntry>,
    ttl: Duration,
    stored_at: Instant,
    id: u64,
}

/// tag -> (key -> id of the entry at that key carrying the tag).
#[derive(Default)]
struct TagIndex {
    map: Mutex<HashMap<String, HashMap<Arc<str>, u64>>>,
}

impl TagIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<Arc<str>, u64>>> {
        // The map stays consistent across a panic in another thread: every
        // critical section is a plain insert or remove.
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self, key: &Arc<str>, stored: &Stored) {
        let mut map = self.lock();
        for tag in &stored.entry.tags {
            map.entry(tag.clone()).or_default().insert(Arc::clone(key), stored.id);
        }
    }

    /// Forgets `key` under the removed entry's tags, unless a newer entry at
    /// the same key has taken its place there.
    fn forget(&self, key: &str, removed: &Stored) {
        let mut map = self.lock();
        for tag in &removed.entry.tags {
            if let Some(keys) = map.get_mut(tag) {
                if keys.get(key) == Some(&removed.id) {
                    keys.remove(key);
                }
                if keys.is_empty() {
                    map.remove(tag);
                }
            }
        }
    }

    /// Removes `tag` and returns its keys (with the id of the entry that
    /// carried it at each).
    fn take(&self, tag: &str) -> HashMap<Arc<str>, u64> {
        self.lock().remove(tag).unwrap_or_default()
    }
}

struct PerEntryExpiry;

impl moka::Expiry<Arc<str>, Stored> for PerEntryExpiry {
    fn expire_after_create(&self, _key: &Arc<str>, value: &Stored, _created_at: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(&self, _key: &Arc<str>, value: &Stored, _updated_at: Instant, _left: Option<Duration>) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl MokaStore {
    /// A store of [`DEFAULT_CAPACITY_BYTES`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder.
    pub fn builder() -> MokaStoreBuilder {
        MokaStoreBuilder {
            max_capacity: DEFAULT_CAPACITY_BYTES,
        }
    }

    /// Number of entries held (approximate until pending maintenance runs).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Bytes held (approximate until pending maintenance runs).
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// How much longer the entry at `key` is kept, if there is one.
    pub fn time_to_live(&self, key: &str) -> Option<Duration> {
        let stored = self.cache.get(key)?;
        Some(stored.ttl.saturating_sub(stored.stored_at.elapsed()))
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }

    /// Runs moka's pending maintenance (evictions, counts) now.
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }

    /// Samples the size gauges: two atomic loads, as moka last counted.
    fn sample_size(&self) {
        metrics::moka_size(self.cache.weighted_size(), self.cache.entry_count());
    }
}

/// Builds a [`MokaStore`].
#[derive(Debug)]
#[must_use]
pub struct MokaStoreBuilder {
    max_capacity: u64,
}

impl MokaStoreBuilder {
    /// The most bytes of entries held. Default: 64 MiB.
    pub fn max_capacity(mut self, bytes: u64) -> Self {
        self.max_capacity = bytes;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MokaStore {
        let tags = Arc::new(TagIndex::default());
        let listener_tags = Arc::clone(&tags);
        let cache = Cache::builder()
            .max_capacity(self.max_capacity)
            .weigher(|key: &Arc<str>, value: &Stored| u32::try_from(weight(key, &value.entry)).unwrap_or(u32::MAX))
            .expire_after(PerEntryExpiry)
            .eviction_listener(move |key: Arc<Arc<str>>, value: Stored, _cause: RemovalCause| {
                listener_tags.forget(&key, &value);
            })
            // Keys carry request input: a keyed hash resists flooding.
            .build_with_hasher(ahash::RandomState::new());
        MokaStore {
            cache,
            tags,
            next_id: Arc::new(AtomicU64::new(0)),
            stripes: Arc::new(KeyStripes::new()),
        }
    }
}

/// Bytes an entry holds: the key (one copy, shared by moka and the tag
/// index), the entry, and its tag index slots.
fn weight(key: &str, entry: &CachedEntry) -> usize {
    let index = entry.tags.len() * 48;
    key.len() + 16 + entry.weight() + index
}

impl Store for MokaStore {
    async fn get(&self, key: &str) -> Result<Option<Arc<CachedEntry>>, StoreError> {
        Ok(self.get_now(key))
    }

    fn get_now(&self, key: &str) -> Option<Arc<CachedEntry>> {
        let started = Instant::now();
        let entry = self.cache.get(key).map(|s| s.entry);
        metrics::operation(StoreLabel::Moka, Op::Get, started);
        entry
    }

    async fn put(&self, key: &str, entry: Arc<CachedEntry>, ttl: Duration) -> Result<(), StoreError> {
        let started = Instant::now();
        {
            let _write = self.stripes.lock(key);
            let stored = Stored {
                entry,
                ttl,
                stored_at: Instant::now(),
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
            };
            let key: Arc<str> = Arc::from(key);
            self.tags.add(&key, &stored);
            self.cache.insert(key, stored);
        }
        metrics::operation(StoreLabel::Moka, Op::Put, started);
        self.sample_size();
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let started = Instant::now();
        let dropped = self.cache.remove(key).is_some();
        metrics::operation(StoreLabel::Moka, Op::Delete, started);
        self.sample_size();
        Ok(dropped)
    }

    async fn invalidate_tags(&self, tags: &[String]) -> Result<u64, StoreError> {
        let started = Instant::now();
        let dropped = self.drop_tagged(tags);
        metrics::operation(StoreLabel::Moka, Op::InvalidateTags, started);
        self.sample_size();
        Ok(dropped)
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let started = Instant::now();
        let dropped = self.drop_prefixed(prefix);
        metrics::operation(StoreLabel::Moka, Op::InvalidatePrefix, started);
        self.sample_size();
        Ok(dropped)
    }

    /// Sets the size gauges after running moka's pending maintenance, so
    /// that they count every write and removal made so far.
    fn record_metrics(&self) {
        self.cache.run_pending_tasks();
        self.sample_size();
    }
}

impl MokaStore {
    fn drop_tagged(&self, tags: &[String]) -> u64 {
        let mut dropped = 0;
        for tag in tags {
            for key in self.tags.take(tag).into_keys() {
                let _write = self.stripes.lock(&key);
                // Only an entry that carries the tag: a later entry at the
                // same key without it stays.
                if self.cache.get(&key).is_some_and(|current| current.entry.tags.contains(tag)) {
                    dropped += u64::from(self.cache.remove(&key).is_some());
                }
            }
        }
        dropped
    }

    fn drop_prefixed(&self, prefix: &str) -> u64 {
        let keys: Vec<Arc<Arc<str>>> = self
            .cache
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key)
            .collect();
        let mut dropped = 0;
        for key in keys {
            dropped += u64::from(self.cache.remove(&**key).is_some());
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use bytes::Bytes;
    use futures_util::FutureExt;
    use http::{HeaderMap, StatusCode};

    use super::*;

    const ROUNDS: usize = 3_000;
    const TTL: Duration = Duration::from_secs(60);

    fn entry(tag: &str) -> Arc<CachedEntry> {
        let mut e = CachedEntry::new(StatusCode::OK, HeaderMap::new(), Bytes::from_static(b"x"), 0, 60_000);
        e.tags = vec![tag.to_owned()];
        Arc::new(e)
    }

    /// The store's futures never wait: run them in place.
    fn now<F: std::future::Future>(f: F) -> F::Output {
        f.now_or_never().expect("moka store operations complete at once")
    }

    fn put_on_thread(store: &MokaStore, key: &str, barrier: &Arc<Barrier>) -> std::thread::JoinHandle<()> {
        let (store, key, barrier) = (store.clone(), key.to_owned(), Arc::clone(barrier));
        std::thread::spawn(move || {
            barrier.wait();
            now(store.put(&key, entry("t"), TTL)).expect("moka puts succeed");
        })
    }

    /// Two puts racing at one key, then an invalidation of their tag: no
    /// entry is left out of the tag index.
    #[test]
    fn racing_puts_stay_reachable_by_tag() {
        let store = MokaStore::new();
        for i in 0..ROUNDS {
            let key = format!("k{i}");
            let barrier = Arc::new(Barrier::new(2));
            let writers = [put_on_thread(&store, &key, &barrier), put_on_thread(&store, &key, &barrier)];
            writers.into_iter().for_each(|w| w.join().expect("the writer finishes"));
            now(store.invalidate_tags(&["t".to_owned()])).unwrap();
            assert!(store.get_now(&key).is_none(), "round {i}: an entry survived its tag's invalidation");
        }
    }

    /// A put racing a tag invalidation, then another invalidation: the
    /// entry is gone.
    #[test]
    fn a_put_racing_an_invalidation_stays_reachable_by_tag() {
        let store = MokaStore::new();
        for i in 0..ROUNDS {
            let key = format!("k{i}");
            now(store.put(&key, entry("t"), TTL)).unwrap();
            let barrier = Arc::new(Barrier::new(2));
            let writer = put_on_thread(&store, &key, &barrier);
            barrier.wait();
            now(store.invalidate_tags(&["t".to_owned()])).unwrap();
            writer.join().expect("the writer finishes");
            now(store.invalidate_tags(&["t".to_owned()])).unwrap();
            assert!(store.get_now(&key).is_none(), "round {i}: an entry survived its tag's invalidation");
        }
    }
}
