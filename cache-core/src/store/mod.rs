//! Where entries live.
//!
//! A [`Store`] keeps [`CachedEntry`] values under string keys, each with a
//! time to live and a set of tags, and drops them by key, by tag or by key
//! prefix. The engine treats every store error as a miss: a store can only
//! make the cache less effective, never fail a request.
//!
//! # Feature flags
//!
//! - `moka` (default): [`MokaStore`], in memory, weighed by bytes.
//! - `redis`: [`RedisStore`], shared by every instance of an application,
//!   on a Redis server or a Redis Cluster; with `moka` too, [`TieredStore`]:
//!   moka in front of Redis, invalidated across instances over pub/sub.
//! - `redis-tls`: `rediss://` URLs for the Redis store.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

pub use crate::entry::StoredHeaders;
use crate::{CachedEntry, error::StoreError};

pub mod codec;
#[cfg(feature = "moka")]
mod moka;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "moka")]
#[cfg_attr(docsrs, doc(cfg(feature = "moka")))]
pub use self::moka::{DEFAULT_CAPACITY_BYTES, MokaStore, MokaStoreBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{
    BreakerState, BreakerStats, DEFAULT_CONNECTION_TIMEOUT, DEFAULT_COOL_DOWN, DEFAULT_FAILURE_THRESHOLD, DEFAULT_RESPONSE_TIMEOUT,
    RedisStore, RedisStoreBuilder,
};
#[cfg(all(feature = "redis", feature = "moka"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "redis", feature = "moka"))))]
pub use self::tiered::{DEFAULT_KEEPALIVE, DEFAULT_L1_GRACE, TieredStore, TieredStoreBuilder};
#[cfg(all(feature = "redis", feature = "moka"))]
mod tiered;

/// A cache store.
///
/// Implementations must be safe to call concurrently; every method is a
/// single round trip where the backend allows it.
///
/// # Errors
///
/// Every method returns [`StoreError`] when the backend fails or times out.
/// Implementations bound their own waiting: a method must not hang when the
/// backend does.
pub trait Store: Send + Sync + 'static {
    /// Reads the entry stored at `key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Arc<CachedEntry>>, StoreError>> + Send;

    /// Reads the entry at `key` without waiting, when the store can: an
    /// in-process store answers here and the engine serves a hit without
    /// any asynchronous work. `None` means absent, or that the answer needs
    /// waiting (the engine then calls [`get`](Store::get)). The default
    /// answers `None`.
    fn get_now(&self, key: &str) -> Option<Arc<CachedEntry>> {
        let _ = key;
        None
    }

    /// Reads the entry stored at `key`, and the point in the store's order
    /// of invalidations before which a response fetched after this call
    /// cannot have been read: the [`Stamp`] the engine gives the entry it
    /// stores after a miss (see [`CachedEntry::stamp`]). A shared store
    /// takes both in one round trip. With an entry, the stamp may be
    /// [`Stamp::NONE`] (an in-process copy answered without a round trip):
    /// the engine then asks [`stamp`](Store::stamp) if it fetches after all.
    /// The default reads with [`get`](Store::get), then
    /// [`stamp`](Store::stamp).
    fn get_stamped(&self, key: &str) -> impl Future<Output = Result<(Option<Arc<CachedEntry>>, Stamp), StoreError>> + Send {
        async move {
            let entry = self.get(key).await?;
            Ok((entry, self.stamp().await?))
        }
    }

    /// The current point in the store's order of invalidations (see
    /// [`Stamp`]). The default, for a store that only one process sees,
    /// answers [`Stamp::NONE`]: the engine orders its own fetches and
    /// invalidations.
    fn stamp(&self) -> impl Future<Output = Result<Stamp, StoreError>> + Send {
        std::future::ready(Ok(Stamp::NONE))
    }

    /// Stores `entry` at `key` for `ttl`, replacing any entry there, and
    /// records it under each of its tags.
    ///
    /// A store shared by several processes refuses, with
    /// [`StoreError::Superseded`], an entry whose [`stamp`](CachedEntry::stamp)
    /// predates an invalidation of its key, of one of its tags or of a
    /// prefix of its key: the response was fetched before the change and
    /// may not show it.
    fn put(&self, key: &str, entry: Arc<CachedEntry>, ttl: Duration) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Drops the entry at `key`; returns whether there was one.
    fn delete(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Drops every entry carrying any of `tags`; returns how many were
    /// dropped, where the store can tell.
    fn invalidate_tags(&self, tags: &[String]) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Drops every entry whose key starts with `prefix`; returns how many.
    fn invalidate_prefix(&self, prefix: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Takes a short lease on `key` for `ttl`, so that one instance of the
    /// application fetches a missing response while the others wait for it
    /// (cross-instance coalescing). A lease that is not released expires.
    /// The default answers [`Lease::Unsupported`]: a store that only one
    /// process sees needs no more than the engine's own coalescing.
    fn try_lease(&self, key: &str, ttl: Duration) -> impl Future<Output = Result<Lease, StoreError>> + Send {
        let _ = (key, ttl);
        std::future::ready(Ok(Lease::Unsupported))
    }

    /// Releases a lease taken by [`try_lease`](Store::try_lease), if it is
    /// still the holder's.
    fn release_lease(&self, key: &str, token: &LeaseToken) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (key, token);
        std::future::ready(Ok(()))
    }

    /// Records the store's gauges through the [`metrics`]
    /// facade, such as the bytes and entries it holds or the state of its
    /// circuit breaker (see [`crate::metrics`]). Called by
    /// [`Cache::record_metrics`](crate::Cache::record_metrics), typically
    /// before each scrape; must not wait. The default records nothing: a
    /// store that wraps others forwards it to them.
    fn record_metrics(&self) {}
}

/// A point in a store's order of invalidations: where the fetch of an
/// entry began.
///
/// A shared store keeps a clock that every invalidation advances, and
/// refuses to store an entry fetched before an invalidation that concerns
/// it, whichever instance ran the invalidation. The engine takes the stamp
/// with the lookup that found nothing ([`Store::get_stamped`]), before it
/// asks the origin, and hands it to [`Store::put`] on the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp(StampKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum StampKind {
    #[default]
    None,
    Lost,
    At(u64),
}

impl Stamp {
    /// No stamp: the entry was not fetched after a lookup (a direct
    /// [`Store::put`]), and a shared store stores it as of now.
    pub const NONE: Stamp = Stamp(StampKind::None);

    /// The store could not be asked (it failed or was skipped): a shared
    /// store cannot order the entry against invalidations and refuses it.
    pub const LOST: Stamp = Stamp(StampKind::Lost);

    /// The point `clock` of a store's clock.
    pub const fn at(clock: u64) -> Stamp {
        Stamp(StampKind::At(clock))
    }

    /// The clock value, for [`Stamp::at`] stamps.
    pub const fn clock(self) -> Option<u64> {
        match self.0 {
            StampKind::At(clock) => Some(clock),
            _ => None,
        }
    }

    /// Whether this is [`Stamp::LOST`].
    pub const fn is_lost(self) -> bool {
        matches!(self.0, StampKind::Lost)
    }
}

/// The answer to [`Store::try_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lease {
    /// The caller holds the lease; release it with this token.
    Acquired(LeaseToken),
    /// Another holder has it.
    Held,
    /// The store has no leases.
    Unsupported,
}

/// Proves a lease's holder: a random token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseToken(String);

impl LeaseToken {
    /// A fresh random token.
    pub fn random() -> Self {
        LeaseToken(format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)))
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Stamped = (Option<Arc<CachedEntry>>, Stamp);

/// The object-safe form of [`Store`] the engine holds.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn get_now(&self, key: &str) -> Option<Arc<CachedEntry>>;
    fn get_stamped<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Stamped, StoreError>>;
    fn stamp(&self) -> BoxFuture<'_, Result<Stamp, StoreError>>;
    fn put<'a>(&'a self, key: &'a str, entry: Arc<CachedEntry>, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn invalidate_tags<'a>(&'a self, tags: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>>;
    fn invalidate_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;
    fn try_lease<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<Lease, StoreError>>;
    fn release_lease<'a>(&'a self, key: &'a str, token: &'a LeaseToken) -> BoxFuture<'a, Result<(), StoreError>>;
    fn record_metrics(&self);
}

impl<S: Store> DynStore for S {
    fn get_now(&self, key: &str) -> Option<Arc<CachedEntry>> {
        Store::get_now(self, key)
    }
    fn get_stamped<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Stamped, StoreError>> {
        Box::pin(Store::get_stamped(self, key))
    }
    fn stamp(&self) -> BoxFuture<'_, Result<Stamp, StoreError>> {
        Box::pin(Store::stamp(self))
    }
    fn put<'a>(&'a self, key: &'a str, entry: Arc<CachedEntry>, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(Store::put(self, key, entry, ttl))
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(Store::delete(self, key))
    }
    fn invalidate_tags<'a>(&'a self, tags: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(Store::invalidate_tags(self, tags))
    }
    fn invalidate_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(Store::invalidate_prefix(self, prefix))
    }
    fn try_lease<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<Lease, StoreError>> {
        Box::pin(Store::try_lease(self, key, ttl))
    }
    fn release_lease<'a>(&'a self, key: &'a str, token: &'a LeaseToken) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(Store::release_lease(self, key, token))
    }
    fn record_metrics(&self) {
        Store::record_metrics(self);
    }
}

pub(crate) type SharedStore = Arc<dyn DynStore>;
