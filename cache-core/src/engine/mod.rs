//! The cache engine: lookup, coalescing, storage and responses; and what
//! is built on it: invalidation, typed data, purging, the adapters' API.

pub mod adapter;
mod begin;
mod classify;
pub(crate) mod coalesce;
pub mod data;
pub(crate) mod entry;
mod exchange;
mod fetch;
mod freshness;
pub(crate) mod hit_for_miss;
mod hit_headers;
pub(crate) mod invalidate;
pub(crate) mod invalidation_log;
mod lease;
mod miss;
pub mod purge;
mod refresh;
mod respond;
mod rfc;
mod serve;
mod storable;

pub use begin::{Begun, Missed, Ready};
pub use exchange::Exchange;
pub use hit_headers::HitHead;
pub(crate) use hit_headers::HitHeaders;
pub use refresh::{MAX_REFRESHES, Refresh};
pub use serve::Served;

use std::{fmt, sync::Arc};

use crate::{
    Clock, Store,
    coalesce::Coalescer,
    error::{ConfigError, StoreError},
    hit_for_miss::HitForMiss,
    invalidation_log::InvalidationLog,
    store::SharedStore,
};

/// A response cache: a store plus the engine that serves requests from it.
///
/// Cheap to clone; clones share the store, the in-flight fetches and the
/// invalidation state. Build one per application and hand clones to every
/// layer and handler: layers built from the same `Cache` share one store.
///
/// Adapters (`cache-tower`, `cache-axum`, `cache-actix`) call
/// [`Cache::serve`] for every request.
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: SharedStore,
    pub(crate) coalescer: Coalescer,
    pub(crate) hit_for_miss: HitForMiss,
    pub(crate) clock: Clock,
    pub(crate) name: String,
    /// Whether `Cache-Status` carries the cache key.
    pub(crate) debug_keys: bool,
    /// Recent invalidations: a fetch that overlapped one that concerns its
    /// entry does not store what it fetched, since it may predate the change.
    pub(crate) invalidations: InvalidationLog,
    /// Permits for background refreshes ([`MAX_REFRESHES`]).
    pub(crate) refreshes: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache").field("name", &self.inner.name).finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache on `store` with every default.
    pub fn new(store: impl Store) -> Self {
        CacheBuilder::new().store(store).build_with_store()
    }

    /// A builder.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }

    /// The name this cache gives itself in `Cache-Status`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The cache's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// A handle to invalidate entries from code, such as a handler that has
    /// just changed the data behind them.
    pub fn invalidator(&self) -> crate::Invalidator {
        crate::Invalidator { cache: self.clone() }
    }

    /// Records the store's gauges now (see [`crate::metrics`]): the bytes
    /// and entries an in-process store holds, the state of a Redis store's
    /// circuit breaker. Call it before rendering each scrape, so that they
    /// are exact; it does not wait on the network.
    pub fn record_metrics(&self) {
        self.inner.store.record_metrics();
    }

    pub(crate) fn log_store_error(&self, operation: &'static str, err: &StoreError) {
        if matches!(err, StoreError::CircuitOpen | StoreError::Unavailable | StoreError::Replaying) {
            // Said once, by the store, when it went away.
            tracing::debug!(cache = %self.inner.name, operation, error = %err, "cache store skipped; serving from the origin");
            return;
        }
        tracing::warn!(cache = %self.inner.name, operation, error = %err, "cache store failed; serving from the origin");
    }
}

/// Builds a [`Cache`].
#[must_use]
pub struct CacheBuilder {
    store: Option<SharedStore>,
    clock: Clock,
    name: String,
    debug_keys: bool,
}

impl fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Default for CacheBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheBuilder {
    /// A builder with the default name and clock and no store yet.
    pub fn new() -> Self {
        CacheBuilder {
            store: None,
            clock: Clock::system(),
            name: crate::cache_status::DEFAULT_NAME.to_owned(),
            debug_keys: false,
        }
    }

    /// The store. Default (with the `moka` feature): a
    /// [`MokaStore`](crate::MokaStore) of 64 MiB.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The name in `Cache-Status` (`<name>; hit`). Default: `cache`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds each request's cache key to `Cache-Status` (`key="…"`, RFC 9211
    /// §2.7), for debugging. Off by default: a key can name the tenant and
    /// the varied headers of a request, which clients need not see.
    pub fn debug_keys(mut self, enabled: bool) -> Self {
        self.debug_keys = enabled;
        self
    }

    /// The clock, for tests that move time by hand.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the cache.
    ///
    /// # Errors
    ///
    /// A name that is not a token usable in `Cache-Status`, or no store when
    /// the `moka` feature is off.
    pub fn build(self) -> Result<Cache, ConfigError> {
        // An RFC 8941 token: a letter or `*`, then token characters.
        let starts_well = self.name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'*');
        let valid = starts_well
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~!#$&'*+^`|:/%".contains(&b));
        if !valid {
            return Err(ConfigError::invalid(
                "name",
                "must be a token that starts with a letter (letters, digits, `-._~:/`)",
            ));
        }
        if self.store.is_none() {
            return self.default_store();
        }
        Ok(self.build_with_store())
    }

    #[cfg(feature = "moka")]
    fn default_store(self) -> Result<Cache, ConfigError> {
        self.store(crate::MokaStore::default()).build()
    }

    #[cfg(not(feature = "moka"))]
    fn default_store(self) -> Result<Cache, ConfigError> {
        Err(ConfigError::invalid("store", "no store given and the `moka` feature is off"))
    }

    fn build_with_store(self) -> Cache {
        let store = self.store.expect("build_with_store is called with a store set");
        Cache {
            inner: Arc::new(Inner {
                store,
                coalescer: Coalescer::default(),
                hit_for_miss: HitForMiss::default(),
                clock: self.clock,
                name: self.name,
                debug_keys: self.debug_keys,
                invalidations: InvalidationLog::default(),
                refreshes: Arc::new(tokio::sync::Semaphore::new(MAX_REFRESHES)),
            }),
        }
    }
}

/// The origin an exchange calls at most once (the wrapped service): what
/// the engine's steps ask of it, written once.
pub(crate) trait Origin<ReqB, ResB, E>: FnOnce(http::Request<ReqB>) -> Self::Fut {
    type Fut: std::future::Future<Output = Result<http::Response<ResB>, E>>;
}

impl<ReqB, ResB, E, F, Fut> Origin<ReqB, ResB, E> for F
where
    F: FnOnce(http::Request<ReqB>) -> Fut,
    Fut: std::future::Future<Output = Result<http::Response<ResB>, E>>,
{
    type Fut = Fut;
}

/// The body of an origin's response, as the engine reads and streams it.
pub(crate) trait OriginBody: http_body::Body<Data = bytes::Bytes, Error: Into<crate::BoxError>> {}

impl<B> OriginBody for B where B: http_body::Body<Data = bytes::Bytes, Error: Into<crate::BoxError>> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_structured_field_tokens() {
        for good in ["cache", "storefront", "edge-1", "Cache_2", "*"] {
            assert!(Cache::builder().name(good).build().is_ok(), "{good}");
        }
        for bad in ["", "1cache", "-cache", "my cache", "a,b", "a;b", "é"] {
            assert!(Cache::builder().name(bad).build().is_err(), "{bad}");
        }
    }
}
