//! moka in front of Redis, kept coherent across instances over pub/sub.

use std::{
    fmt,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use tokio::task::AbortHandle;

use crate::{
    CachedEntry,
    error::StoreError,
    metrics::{self, Op, StoreLabel},
    store::{Lease, LeaseToken, MokaStore, RedisStore, Store},
};

/// A two-level store: an in-process [`MokaStore`] (L1) in front of a shared
/// [`RedisStore`] (L2).
///
/// - Reads try L1, then L2; an L2 hit is copied into L1 for no longer than
///   L2 still keeps it (and no longer than [`TieredStoreBuilder::l1_max_ttl`]).
///   L1 hits answer without waiting ([`Store::get_now`]).
/// - Writes go to L2, then L1.
/// - Every invalidation (key, tag, prefix) is applied to L2 and L1, then
///   published on the Redis channel `{prefix}invalidations`; every other
///   instance's store applies it to its L1 as it arrives.
/// - Each store keeps a subscription to that channel, reconnects it after a
///   Redis restart and then drops its whole L1, since it may have missed
///   invalidations while disconnected.
/// - Leases (cross-instance coalescing) are taken in L2.
///
/// When Redis is down, L1 keeps serving and filling on this instance;
/// other instances cannot hear its invalidations until Redis is back, when
/// they drop their L1.
///
/// Cheap to clone: clones share both levels and the subscription, which
/// ends when the last clone is dropped.
///
/// Each operation's time goes to `http_cache_store_operation_seconds` with
/// `store="tiered"`, and that of the operations on its levels with
/// `store="moka"` and `store="redis"` (see [`crate::metrics`]).
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), cache_core::StoreError> {
/// use cache_core::{MokaStore, RedisStore, TieredStore};
///
/// let l2 = RedisStore::builder("redis://127.0.0.1:6379").connect_lazy()?;
/// let store = TieredStore::builder(l2).l1(MokaStore::builder().max_capacity(128 << 20).build()).build()?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TieredStore {
    inner: Arc<Inner>,
}

struct Inner {
    l1: MokaStore,
    l2: RedisStore,
    l1_max_ttl: Option<Duration>,
    /// Tells this instance's messages from the others'.
    instance: u64,
    /// Bumped whenever L1 drops anything: a promotion that read L2 before
    /// the bump may hold what was just invalidated, and is not kept.
    epoch: AtomicU64,
    subscribed: AtomicBool,
    l1_resets: AtomicU64,
    listener: std::sync::OnceLock<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

impl fmt::Debug for TieredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredStore")
            .field("l1", &self.inner.l1)
            .field("l2", &self.inner.l2)
            .field("subscribed", &self.is_subscribed())
            .finish()
    }
}

/// Builds a [`TieredStore`].
#[derive(Debug)]
#[must_use]
pub struct TieredStoreBuilder {
    l1: Option<MokaStore>,
    l2: RedisStore,
    l1_max_ttl: Option<Duration>,
}

impl TieredStore {
    /// A builder over the shared store `l2`.
    pub fn builder(l2: RedisStore) -> TieredStoreBuilder {
        TieredStoreBuilder {
            l1: None,
            l2,
            l1_max_ttl: None,
        }
    }

    /// The in-process level.
    pub fn l1(&self) -> &MokaStore {
        &self.inner.l1
    }

    /// The shared level.
    pub fn l2(&self) -> &RedisStore {
        &self.inner.l2
    }

    /// Whether the invalidation subscription is up.
    pub fn is_subscribed(&self) -> bool {
        self.inner.subscribed.load(Ordering::Acquire)
    }

    /// How many times L1 was dropped because the subscription (re)connected.
    pub fn l1_resets(&self) -> u64 {
        self.inner.l1_resets.load(Ordering::Relaxed)
    }

    fn l1_ttl(&self, ttl: Duration) -> Duration {
        self.inner.l1_max_ttl.map_or(ttl, |max| ttl.min(max))
    }

    /// Applies an invalidation to L2 (`l2`), then to L1, then tells the
    /// other instances: L2 first, so that a promotion racing it either
    /// reads L2 after it or is dropped from L1 with it.
    async fn invalidate<T>(&self, message: Message<'_>, l2: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let dropped = l2.await;
        self.inner.apply(&message).await;
        if dropped.is_ok() {
            self.broadcast(message).await;
        }
        dropped
    }

    async fn broadcast(&self, message: Message<'_>) {
        if let Err(err) = self.inner.l2.publish(message.encode(self.inner.instance)).await {
            tracing::warn!(error = %err, "invalidation not published: other instances keep their copies until their L1 expires or resets");
        }
    }
}

impl TieredStoreBuilder {
    /// The in-process level. Default: a [`MokaStore::default`].
    pub fn l1(mut self, l1: MokaStore) -> Self {
        self.l1 = Some(l1);
        self
    }

    /// Keeps entries in L1 for at most `ttl`, whatever L2 keeps them for:
    /// bounds how long an instance can serve a copy whose invalidation it
    /// missed. Default: no bound beyond L2's remaining TTL.
    pub fn l1_max_ttl(mut self, ttl: Duration) -> Self {
        self.l1_max_ttl = Some(ttl);
        self
    }

    /// Builds the store and starts its invalidation subscription on the
    /// current tokio runtime.
    ///
    /// # Errors
    ///
    /// No tokio runtime to run the subscription on.
    pub fn build(self) -> Result<TieredStore, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(StoreError::backend)?;
        let store = TieredStore {
            inner: Arc::new(Inner {
                l1: self.l1.unwrap_or_default(),
                l2: self.l2,
                l1_max_ttl: self.l1_max_ttl,
                instance: fastrand::u64(..),
                epoch: AtomicU64::new(0),
                subscribed: AtomicBool::new(false),
                l1_resets: AtomicU64::new(0),
                listener: std::sync::OnceLock::new(),
            }),
        };
        let task = runtime.spawn(listen(Arc::downgrade(&store.inner), store.inner.l2.clone()));
        let _ = store.inner.listener.set(task.abort_handle());
        Ok(store)
    }
}

impl Inner {
    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    async fn apply(&self, message: &Message<'_>) {
        // Bump before and after: a promotion in flight across the removal
        // sees a change either way.
        self.bump();
        match message {
            Message::Key(key) => {
                let _ = self.l1.delete(key).await;
            }
            Message::Tags(tags) => {
                let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
                let _ = self.l1.invalidate_tags(&tags).await;
            }
            Message::Prefix(prefix) => {
                let _ = self.l1.invalidate_prefix(prefix).await;
            }
            Message::All => self.l1.clear(),
        }
        self.bump();
    }

    fn reset(&self) {
        self.bump();
        self.l1.clear();
        self.bump();
        self.l1_resets.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps this instance subscribed to invalidations for as long as the store
/// lives, dropping L1 each time the subscription (re)connects.
async fn listen(store: Weak<Inner>, l2: RedisStore) {
    let channel = l2.channel();
    let timeout = l2.response_timeout().max(Duration::from_millis(500));
    let mut delay = Duration::from_millis(50);
    let mut node = 0;
    loop {
        let client = &l2.subscribers()[node % l2.subscribers().len()];
        node += 1;
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(timeout, subscribed).await {
            Ok(Ok(pubsub)) => {
                let Some(inner) = store.upgrade() else { return };
                inner.reset();
                inner.subscribed.store(true, Ordering::Release);
                tracing::info!(server = %l2.server(), "subscribed to cache invalidations; L1 dropped");
                delay = Duration::from_millis(50);
                drop(inner);
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Some(inner) = store.upgrade() else { return };
                    match Message::decode(msg.get_payload_bytes()) {
                        Some((instance, _)) if instance == inner.instance => {}
                        Some((_, message)) => inner.apply(&message).await,
                        None => tracing::debug!("ignoring a malformed invalidation message"),
                    }
                }
                let Some(inner) = store.upgrade() else { return };
                inner.subscribed.store(false, Ordering::Release);
                tracing::warn!(server = %l2.server(), "invalidation subscription lost; reconnecting");
            }
            Ok(Err(err)) => tracing::debug!(server = %l2.server(), error = %err, "invalidation subscription failed; retrying"),
            Err(_) => tracing::debug!(server = %l2.server(), "invalidation subscription timed out; retrying"),
        }
        if store.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// An invalidation as published:
/// `instance u64 | kind u8 | items: (u32 len, bytes)*`, big-endian.
#[derive(Debug, PartialEq, Eq)]
enum Message<'a> {
    Key(&'a str),
    Tags(Vec<&'a str>),
    Prefix(&'a str),
    All,
}

impl<'a> Message<'a> {
    fn encode(&self, instance: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&instance.to_be_bytes());
        let item = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        match self {
            Message::Key(key) => {
                out.push(b'k');
                item(&mut out, key);
            }
            Message::Tags(tags) => {
                out.push(b't');
                for tag in tags {
                    item(&mut out, tag);
                }
            }
            Message::Prefix(prefix) => {
                out.push(b'p');
                item(&mut out, prefix);
            }
            Message::All => out.push(b'*'),
        }
        out
    }

    fn decode(bytes: &'a [u8]) -> Option<(u64, Message<'a>)> {
        let instance = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let kind = *bytes.get(8)?;
        let mut rest = &bytes[9..];
        let mut items = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let item = rest.get(4..4usize.checked_add(len)?)?;
            items.push(std::str::from_utf8(item).ok()?);
            rest = &rest[4 + len..];
        }
        let message = match (kind, items.as_slice()) {
            (b'k', [key]) => Message::Key(key),
            (b't', _) => Message::Tags(items),
            (b'p', [prefix]) => Message::Prefix(prefix),
            (b'*', []) => Message::All,
            _ => return None,
        };
        Some((instance, message))
    }
}

impl Store for TieredStore {
    async fn get(&self, key: &str) -> Result<Option<Arc<CachedEntry>>, StoreError> {
        metrics::timed(StoreLabel::Tiered, Op::Get, self.read(key)).await
    }

    fn get_now(&self, key: &str) -> Option<Arc<CachedEntry>> {
        let started = std::time::Instant::now();
        let entry = self.inner.l1.get_now(key);
        metrics::operation(StoreLabel::Tiered, Op::Get, started);
        entry
    }

    async fn put(&self, key: &str, entry: Arc<CachedEntry>, ttl: Duration) -> Result<(), StoreError> {
        metrics::timed(StoreLabel::Tiered, Op::Put, self.write(key, entry, ttl)).await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let delete = self.invalidate(Message::Key(key), self.inner.l2.delete(key));
        metrics::timed(StoreLabel::Tiered, Op::Delete, delete).await
    }

    async fn invalidate_tags(&self, tags: &[String]) -> Result<u64, StoreError> {
        let message = Message::Tags(tags.iter().map(String::as_str).collect());
        let invalidate = self.invalidate(message, self.inner.l2.invalidate_tags(tags));
        metrics::timed(StoreLabel::Tiered, Op::InvalidateTags, invalidate).await
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let invalidate = self.invalidate(Message::Prefix(prefix), self.inner.l2.invalidate_prefix(prefix));
        metrics::timed(StoreLabel::Tiered, Op::InvalidatePrefix, invalidate).await
    }

    async fn try_lease(&self, key: &str, ttl: Duration) -> Result<Lease, StoreError> {
        metrics::timed(StoreLabel::Tiered, Op::Lease, self.inner.l2.try_lease(key, ttl)).await
    }

    async fn release_lease(&self, key: &str, token: &LeaseToken) -> Result<(), StoreError> {
        metrics::timed(StoreLabel::Tiered, Op::ReleaseLease, self.inner.l2.release_lease(key, token)).await
    }

    /// The gauges of both levels: L1's size, L2's circuit breaker.
    fn record_metrics(&self) {
        self.inner.l1.record_metrics();
        self.inner.l2.record_metrics();
    }
}

impl TieredStore {
    /// L1, then L2 (promoting what it finds into L1).
    async fn read(&self, key: &str) -> Result<Option<Arc<CachedEntry>>, StoreError> {
        if let Some(entry) = self.inner.l1.get_now(key) {
            return Ok(Some(entry));
        }
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let Some((entry, ttl)) = self.inner.l2.get_with_ttl(key).await? else {
            return Ok(None);
        };
        if self.inner.epoch.load(Ordering::Acquire) == epoch {
            let _ = self.inner.l1.put(key, Arc::clone(&entry), self.l1_ttl(ttl)).await;
            // An invalidation that landed during the insert may have missed it.
            if self.inner.epoch.load(Ordering::Acquire) != epoch {
                let _ = self.inner.l1.delete(key).await;
            }
        }
        Ok(Some(entry))
    }

    /// L2, then L1.
    async fn write(&self, key: &str, entry: Arc<CachedEntry>, ttl: Duration) -> Result<(), StoreError> {
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let stored = self.inner.l2.put(key, Arc::clone(&entry), ttl).await;
        if self.inner.epoch.load(Ordering::Acquire) == epoch {
            let _ = self.inner.l1.put(key, entry, self.l1_ttl(ttl)).await;
            if self.inner.epoch.load(Ordering::Acquire) != epoch {
                let _ = self.inner.l1.delete(key).await;
            }
        }
        stored
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn messages_round_trip() {
        for message in [
            Message::Key("http:1:/p"),
            Message::Tags(vec!["a", "", "b\0c"]),
            Message::Tags(vec![]),
            Message::Prefix(""),
            Message::All,
        ] {
            let bytes = message.encode(42);
            assert_eq!(Message::decode(&bytes), Some((42, message)));
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Message::decode(&bytes);
        }

        #[test]
        fn tags_round_trip(tags in proptest::collection::vec(".*", 0..5), instance in any::<u64>()) {
            let message = Message::Tags(tags.iter().map(String::as_str).collect());
            let bytes = message.encode(instance);
            prop_assert_eq!(Message::decode(&bytes), Some((instance, message)));
        }
    }
}
