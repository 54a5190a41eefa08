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
use redis::aio::PubSub;
use tokio::{task::AbortHandle, time::Instant};

use crate::{
    CachedEntry,
    error::StoreError,
    metrics::{self, Op, StoreLabel},
    store::{Lease, LeaseToken, MokaStore, RedisStore, Stamp, Store, redis::message::Message},
};

/// How long L1 keeps serving after the invalidation subscription is lost,
/// by default.
pub const DEFAULT_L1_GRACE: Duration = Duration::from_secs(1);
/// How often the invalidation subscription is checked with a `PING`, by
/// default.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(1);

/// A two-level store: an in-process [`MokaStore`] (L1) in front of a shared
/// [`RedisStore`] (L2).
///
/// - Reads try L1, then L2; an L2 hit is copied into L1 for no longer than
///   L2 still keeps it (and no longer than [`TieredStoreBuilder::l1_max_ttl`]).
///   L1 hits answer without waiting ([`Store::get_now`]).
/// - Writes go to L2, then to L1 — only when L2 took the entry: an entry
///   L2 refuses (its fetch overlapped an invalidation, see [`RedisStore`])
///   or cannot take (Redis is unreachable) is not kept in L1 either.
/// - Every invalidation (key, tag, prefix) is applied to L2 and to L1; L2
///   publishes it on the Redis channel `{prefix}invalidations`, and every
///   other instance's store applies it to its L1 as it arrives. One that
///   cannot reach Redis still applies to this instance's L1 at once, and L2
///   keeps it and applies and publishes it when Redis answers again.
/// - Each store keeps a subscription to that channel, checked with a `PING`
///   every [`keepalive`](TieredStoreBuilder::keepalive) so that a dead
///   connection is noticed within seconds, reconnects it, and then drops
///   its whole L1, since it may have missed invalidations meanwhile.
/// - L1 is trusted only while the instance can hear invalidations: once
///   the subscription is lost, L1 keeps serving for
///   [`l1_grace`](TieredStoreBuilder::l1_grace), then is bypassed (every
///   read goes to L2, or to the origin while Redis is away) until the
///   subscription is back and L1 has been dropped.
/// - Leases (cross-instance coalescing) are taken in L2.
///
/// So another instance stops serving an invalidated entry within the
/// pub/sub delivery time while connected, and within `l1_grace` plus the
/// keepalive's detection time when its subscription is broken.
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
    l1_grace: Duration,
    keepalive: Duration,
    /// Bumped whenever L1 drops anything: a promotion that read L2 before
    /// the bump may hold what was just invalidated, and is not kept.
    epoch: AtomicU64,
    subscribed: AtomicBool,
    /// When the subscription was last lost (or the store built), in µs
    /// after `started`.
    down_since_us: AtomicU64,
    started: Instant,
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
    l1_grace: Duration,
    keepalive: Duration,
}

impl TieredStore {
    /// A builder over the shared store `l2`.
    pub fn builder(l2: RedisStore) -> TieredStoreBuilder {
        TieredStoreBuilder {
            l1: None,
            l2,
            l1_max_ttl: None,
            l1_grace: DEFAULT_L1_GRACE,
            keepalive: DEFAULT_KEEPALIVE,
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

    /// Whether L1 serves: the subscription is up, or was lost less than
    /// [`l1_grace`](TieredStoreBuilder::l1_grace) ago.
    pub fn is_l1_trusted(&self) -> bool {
        self.inner.l1_trusted()
    }

    /// How many times L1 was dropped because the subscription (re)connected.
    pub fn l1_resets(&self) -> u64 {
        self.inner.l1_resets.load(Ordering::Relaxed)
    }

    fn l1_ttl(&self, ttl: Duration) -> Duration {
        self.inner.l1_max_ttl.map_or(ttl, |max| ttl.min(max))
    }

    /// Applies an invalidation to L1, to L2 (`l2`, which publishes it or
    /// keeps it for when Redis is back), then to L1 again whatever L2
    /// answered, so that a promotion racing it either reads L2 after it or
    /// is dropped from L1 with it.
    async fn invalidate<T>(&self, message: Message<'_>, l2: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        // Before too: this instance stops serving the old copies at once.
        self.inner.apply(&message).await;
        let dropped = l2.await;
        self.inner.apply(&message).await;
        dropped
    }
}

impl TieredStoreBuilder {
    /// The in-process level. Default: a [`MokaStore::default`].
    pub fn l1(mut self, l1: MokaStore) -> Self {
        self.l1 = Some(l1);
        self
    }

    /// Keeps entries in L1 for at most `ttl`, whatever L2 keeps them for.
    /// Default: no bound beyond L2's remaining TTL.
    pub fn l1_max_ttl(mut self, ttl: Duration) -> Self {
        self.l1_max_ttl = Some(ttl);
        self
    }

    /// How long L1 keeps serving once the invalidation subscription is
    /// lost, after which it is bypassed until the subscription is back:
    /// the longest this instance serves an entry whose invalidation it
    /// could not hear (plus the time to notice, see
    /// [`keepalive`](Self::keepalive)). Default: [`DEFAULT_L1_GRACE`].
    /// Zero bypasses L1 as soon as the subscription is lost.
    pub fn l1_grace(mut self, grace: Duration) -> Self {
        self.l1_grace = grace;
        self
    }

    /// How often the subscription is checked with a `PING`; one that gets
    /// no answer within the L2 response timeout counts the connection as
    /// dead. Default: [`DEFAULT_KEEPALIVE`].
    pub fn keepalive(mut self, every: Duration) -> Self {
        self.keepalive = every.max(Duration::from_millis(10));
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
                l1_grace: self.l1_grace,
                keepalive: self.keepalive,
                epoch: AtomicU64::new(0),
                subscribed: AtomicBool::new(false),
                down_since_us: AtomicU64::new(0),
                started: Instant::now(),
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

    fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn l1_trusted(&self) -> bool {
        if self.subscribed.load(Ordering::Acquire) {
            return true;
        }
        let down_for = self.now_us().saturating_sub(self.down_since_us.load(Ordering::Acquire));
        u128::from(down_for) < self.l1_grace.as_micros()
    }

    fn lost(&self) {
        self.down_since_us.store(self.now_us(), Ordering::Release);
        self.subscribed.store(false, Ordering::Release);
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
    let listener = Listener {
        channel: l2.channel(),
        timeout: l2.response_timeout().max(Duration::from_millis(100)),
        store,
        l2,
    };
    let subscribers = listener.l2.subscribers();
    let mut delay = Duration::from_millis(50);
    let mut node = 0;
    loop {
        let client = &subscribers[node % subscribers.len()];
        node += 1;
        match tokio::time::timeout(listener.timeout, listener.subscribe(client)).await {
            Ok(Ok(pubsub)) => {
                let Some(keepalive) = listener.connected() else { return };
                delay = Duration::from_millis(50);
                let Some(why) = listener.follow(pubsub, keepalive).await else {
                    return;
                };
                let Some(inner) = listener.store.upgrade() else { return };
                inner.lost();
                tracing::warn!(server = %listener.l2.server(), reason = why, "invalidation subscription lost; reconnecting");
            }
            Ok(Err(err)) => tracing::debug!(server = %listener.l2.server(), error = %err, "invalidation subscription failed; retrying"),
            Err(_) => tracing::debug!(server = %listener.l2.server(), "invalidation subscription timed out; retrying"),
        }
        if listener.store.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// The invalidation subscription of a store: what it serves (gone once the
/// store is dropped), where it listens, and how long Redis may take to
/// answer.
struct Listener {
    store: Weak<Inner>,
    l2: RedisStore,
    channel: String,
    timeout: Duration,
}

impl Listener {
    /// Subscribes to the invalidation channel through `client`.
    async fn subscribe(&self, client: &redis::Client) -> Result<PubSub, redis::RedisError> {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&self.channel).await?;
        Ok(pubsub)
    }

    /// Drops L1 (it may have missed invalidations) and marks the
    /// subscription up; returns how often to check it, or `None` once the
    /// store is dropped.
    fn connected(&self) -> Option<Duration> {
        let inner = self.store.upgrade()?;
        inner.reset();
        inner.subscribed.store(true, Ordering::Release);
        tracing::info!(server = %self.l2.server(), "subscribed to cache invalidations; L1 dropped");
        Some(inner.keepalive)
    }

    /// Applies the invalidations that arrive, checking the connection with
    /// a `PING` every `keepalive`, until it fails: returns why, or `None`
    /// once the store is dropped.
    async fn follow(&self, pubsub: PubSub, keepalive: Duration) -> Option<&'static str> {
        let (mut sink, mut messages) = pubsub.split();
        let mut ticks = tokio::time::interval(keepalive);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else { return Some("connection closed") };
                    let inner = self.store.upgrade()?;
                    self.receive(&inner, msg.get_payload_bytes()).await;
                }
                _ = ticks.tick() => {
                    match tokio::time::timeout(self.timeout, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(_)) => return Some("ping failed"),
                        Err(_) => return Some("ping unanswered"),
                    }
                }
            }
        }
    }

    /// Applies an invalidation message to L1, unless this store published
    /// it (it applied it already).
    async fn receive(&self, inner: &Inner, payload: &[u8]) {
        match Message::decode(payload) {
            Some((instance, _)) if instance == self.l2.instance() => {}
            Some((_, message)) => inner.apply(&message).await,
            None => tracing::debug!("ignoring a malformed invalidation message"),
        }
    }
}

impl Store for TieredStore {
    async fn get(&self, key: &str) -> Result<Option<Arc<CachedEntry>>, StoreError> {
        metrics::timed(StoreLabel::Tiered, Op::Get, self.read(key)).await
    }

    async fn get_stamped(&self, key: &str) -> Result<(Option<Arc<CachedEntry>>, Stamp), StoreError> {
        metrics::timed(StoreLabel::Tiered, Op::Get, self.read_stamped(key)).await
    }

    async fn stamp(&self) -> Result<Stamp, StoreError> {
        self.inner.l2.stamp().await
    }

    fn get_now(&self, key: &str) -> Option<Arc<CachedEntry>> {
        if !self.inner.l1_trusted() {
            return None;
        }
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
        if self.inner.l1_trusted()
            && let Some(entry) = self.inner.l1.get_now(key)
        {
            return Ok(Some(entry));
        }
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let found = self.inner.l2.get_with_ttl(key).await?;
        Ok(self.promote(key, found, epoch).await)
    }

    /// [`read`](Self::read), with the clock of L2 when L2 is read (an
    /// entry found in L1 comes without: the engine asks for a stamp if it
    /// fetches after all).
    async fn read_stamped(&self, key: &str) -> Result<(Option<Arc<CachedEntry>>, Stamp), StoreError> {
        if self.inner.l1_trusted()
            && let Some(entry) = self.inner.l1.get_now(key)
        {
            return Ok((Some(entry), Stamp::NONE));
        }
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let (found, stamp) = self.inner.l2.get_with_ttl_stamped(key).await?;
        Ok((self.promote(key, found, epoch).await, stamp))
    }

    /// Copies an entry read from L2 into L1, unless L1 dropped anything
    /// since the read began (`epoch`) or is not trusted.
    async fn promote(&self, key: &str, found: Option<(Arc<CachedEntry>, Duration)>, epoch: u64) -> Option<Arc<CachedEntry>> {
        let (entry, ttl) = found?;
        if self.inner.epoch.load(Ordering::Acquire) == epoch && self.inner.l1_trusted() {
            let _ = self.inner.l1.put(key, Arc::clone(&entry), self.l1_ttl(ttl)).await;
            // An invalidation that landed during the insert may have missed it.
            if self.inner.epoch.load(Ordering::Acquire) != epoch {
                let _ = self.inner.l1.delete(key).await;
            }
        }
        Some(entry)
    }

    /// L2, then L1 if L2 took it.
    async fn write(&self, key: &str, entry: Arc<CachedEntry>, ttl: Duration) -> Result<(), StoreError> {
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        self.inner.l2.put(key, Arc::clone(&entry), ttl).await?;
        if self.inner.epoch.load(Ordering::Acquire) == epoch && self.inner.l1_trusted() {
            let _ = self.inner.l1.put(key, entry, self.l1_ttl(ttl)).await;
            if self.inner.epoch.load(Ordering::Acquire) != epoch {
                let _ = self.inner.l1.delete(key).await;
            }
        }
        Ok(())
    }
}
