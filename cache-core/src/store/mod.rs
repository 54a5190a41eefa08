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
//! - `redis`: [`RedisStore`], shared by every instance of an application.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use crate::{CachedEntry, error::StoreError};

#[cfg(feature = "moka")]
mod moka;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "moka")]
#[cfg_attr(docsrs, doc(cfg(feature = "moka")))]
pub use self::moka::{DEFAULT_CAPACITY_BYTES, MokaStore, MokaStoreBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{DEFAULT_CONNECTION_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT, RedisStore, RedisStoreBuilder};

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

    /// Stores `entry` at `key` for `ttl`, replacing any entry there, and
    /// records it under each of its tags.
    fn put(&self, key: &str, entry: Arc<CachedEntry>, ttl: Duration) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Drops the entry at `key`; returns whether there was one.
    fn delete(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Drops every entry carrying any of `tags`; returns how many were
    /// dropped, where the store can tell.
    fn invalidate_tags(&self, tags: &[String]) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Drops every entry whose key starts with `prefix`; returns how many.
    fn invalidate_prefix(&self, prefix: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe form of [`Store`] the engine holds.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Arc<CachedEntry>>, StoreError>>;
    fn get_now(&self, key: &str) -> Option<Arc<CachedEntry>>;
    fn put<'a>(&'a self, key: &'a str, entry: Arc<CachedEntry>, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn invalidate_tags<'a>(&'a self, tags: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>>;
    fn invalidate_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;
}

impl<S: Store> DynStore for S {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Arc<CachedEntry>>, StoreError>> {
        Box::pin(Store::get(self, key))
    }
    fn get_now(&self, key: &str) -> Option<Arc<CachedEntry>> {
        Store::get_now(self, key)
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
}

pub(crate) type SharedStore = Arc<dyn DynStore>;
