//! Where the response cache keeps its entries: [`StoreConfig`] says which
//! store, [`store_from`] builds it as a [`CacheStore`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cache_core::{CachedEntry, MokaStore, RedisStore, Store, StoreError, TieredStore, store::Lease, store::LeaseToken};

use crate::{Config, StorefrontError};

/// The key prefix in Redis by default.
pub const DEFAULT_REDIS_PREFIX: &str = "storefront:";

/// Which store the response cache keeps its entries in.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum StoreConfig {
    /// The embedded moka store, of [`Config::cache_capacity_bytes`]: each
    /// instance caches on its own. The default.
    #[default]
    Moka,
    /// Redis, shared by every instance.
    Redis {
        /// The server or cluster.
        target: RedisTarget,
        /// Prefix of every key, so that several applications share a server.
        prefix: String,
        /// A moka L1 of [`Config::cache_capacity_bytes`] in front of Redis
        /// (a [`TieredStore`], invalidated across instances over pub/sub);
        /// `false` reads Redis on every request.
        l1: bool,
    },
}

/// A Redis server or cluster, by URL: `redis://[[user]:password@]host[:port][/db]`,
/// or `rediss://` for TLS.
///
/// Its `Debug` output leaves passwords out.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server.
    Server(String),
    /// A Redis Cluster, by seed nodes (the others are discovered).
    Cluster(Vec<String>),
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Moka => f.write_str("Moka"),
            StoreConfig::Redis { target, prefix, l1 } => f
                .debug_struct("Redis")
                .field("target", target)
                .field("prefix", prefix)
                .field("l1", l1)
                .finish(),
        }
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisTarget::Server(url) => f.debug_tuple("Server").field(&redacted(url)).finish(),
            RedisTarget::Cluster(urls) => f
                .debug_tuple("Cluster")
                .field(&urls.iter().map(|u| redacted(u)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// `url` with any password replaced by `***`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The store a storefront's cache runs on: one of the stores
/// [`StoreConfig`] describes. Cheap to clone; clones share the store.
#[derive(Debug, Clone)]
pub enum CacheStore {
    /// [`StoreConfig::Moka`].
    Moka(MokaStore),
    /// [`StoreConfig::Redis`] without L1.
    Redis(RedisStore),
    /// [`StoreConfig::Redis`] with L1.
    Tiered(TieredStore),
}

impl CacheStore {
    /// Whether the store is ready to share entries: always for moka;
    /// connected for Redis; connected and subscribed to invalidations for
    /// the tiered store. Until then requests are served by the origin (or
    /// by this instance's L1).
    pub fn is_ready(&self) -> bool {
        match self {
            CacheStore::Moka(_) => true,
            CacheStore::Redis(redis) => redis.is_connected(),
            CacheStore::Tiered(tiered) => tiered.l2().is_connected() && tiered.is_subscribed(),
        }
    }

    /// What the store is, in a few words, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CacheStore::Moka(_) => "moka (in process)",
            CacheStore::Redis(_) => "redis only (no L1)",
            CacheStore::Tiered(_) => "tiered (moka L1 + redis L2)",
        }
    }
}

/// Builds the store `config.store` describes, with `config.cache_capacity_bytes`
/// for moka (alone or as L1).
///
/// Redis is connected lazily: this returns at once, and until Redis answers
/// (or while it is down) requests are served by the origin. Logs which
/// store is used, without credentials.
///
/// # Errors
///
/// A Redis URL that does not parse, or Redis configured and no tokio runtime
/// to connect from.
pub fn store_from(config: &Config) -> Result<CacheStore, StorefrontError> {
    let moka = || MokaStore::builder().max_capacity(config.cache_capacity_bytes).build();
    let store = match &config.store {
        StoreConfig::Moka => CacheStore::Moka(moka()),
        StoreConfig::Redis { target, prefix, l1 } => {
            let builder = match target {
                RedisTarget::Server(url) => RedisStore::builder(url.as_str()),
                RedisTarget::Cluster(urls) => RedisStore::cluster_builder(urls.iter().map(String::as_str)),
            };
            let redis = builder.prefix(prefix.as_str()).connect_lazy()?;
            if *l1 {
                CacheStore::Tiered(TieredStore::builder(redis).l1(moka()).build()?)
            } else {
                CacheStore::Redis(redis)
            }
        }
    };
    let in_process_bytes = match &store {
        CacheStore::Moka(_) | CacheStore::Tiered(_) => Some(config.cache_capacity_bytes),
        CacheStore::Redis(_) => None,
    };
    tracing::info!(store = ?config.store, ?in_process_bytes, "cache store: {}", store.kind());
    Ok(store)
}

impl Store for CacheStore {
    async fn get(&self, key: &str) -> Result<Option<Arc<CachedEntry>>, StoreError> {
        match self {
            CacheStore::Moka(store) => store.get(key).await,
            CacheStore::Redis(store) => store.get(key).await,
            CacheStore::Tiered(store) => store.get(key).await,
        }
    }

    fn get_now(&self, key: &str) -> Option<Arc<CachedEntry>> {
        match self {
            CacheStore::Moka(store) => store.get_now(key),
            CacheStore::Redis(store) => store.get_now(key),
            CacheStore::Tiered(store) => store.get_now(key),
        }
    }

    async fn put(&self, key: &str, entry: Arc<CachedEntry>, ttl: Duration) -> Result<(), StoreError> {
        match self {
            CacheStore::Moka(store) => store.put(key, entry, ttl).await,
            CacheStore::Redis(store) => store.put(key, entry, ttl).await,
            CacheStore::Tiered(store) => store.put(key, entry, ttl).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        match self {
            CacheStore::Moka(store) => store.delete(key).await,
            CacheStore::Redis(store) => store.delete(key).await,
            CacheStore::Tiered(store) => store.delete(key).await,
        }
    }

    async fn invalidate_tags(&self, tags: &[String]) -> Result<u64, StoreError> {
        match self {
            CacheStore::Moka(store) => store.invalidate_tags(tags).await,
            CacheStore::Redis(store) => store.invalidate_tags(tags).await,
            CacheStore::Tiered(store) => store.invalidate_tags(tags).await,
        }
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        match self {
            CacheStore::Moka(store) => store.invalidate_prefix(prefix).await,
            CacheStore::Redis(store) => store.invalidate_prefix(prefix).await,
            CacheStore::Tiered(store) => store.invalidate_prefix(prefix).await,
        }
    }

    async fn try_lease(&self, key: &str, ttl: Duration) -> Result<Lease, StoreError> {
        match self {
            CacheStore::Moka(store) => store.try_lease(key, ttl).await,
            CacheStore::Redis(store) => store.try_lease(key, ttl).await,
            CacheStore::Tiered(store) => store.try_lease(key, ttl).await,
        }
    }

    async fn release_lease(&self, key: &str, token: &LeaseToken) -> Result<(), StoreError> {
        match self {
            CacheStore::Moka(store) => store.release_lease(key, token).await,
            CacheStore::Redis(store) => store.release_lease(key, token).await,
            CacheStore::Tiered(store) => store.release_lease(key, token).await,
        }
    }

    fn record_metrics(&self) {
        match self {
            CacheStore::Moka(store) => store.record_metrics(),
            CacheStore::Redis(store) => store.record_metrics(),
            CacheStore::Tiered(store) => store.record_metrics(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_debug_output() {
        assert_eq!(
            redacted("redis://:hunter2@cache.internal:6380/2"),
            "redis://:***@cache.internal:6380/2"
        );
        assert_eq!(redacted("rediss://app:hunter2@cache.internal"), "rediss://app:***@cache.internal");
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("redis://app@127.0.0.1:6379/1"), "redis://app@127.0.0.1:6379/1");
        let config = StoreConfig::Redis {
            target: RedisTarget::Cluster(vec!["redis://a:pw1@10.0.0.1:7000".into(), "redis://:pw2@10.0.0.2:7000".into()]),
            prefix: DEFAULT_REDIS_PREFIX.into(),
            l1: true,
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("pw1") && !debug.contains("pw2"), "{debug}");
        assert!(debug.contains("10.0.0.2:7000"), "{debug}");
    }

    #[test]
    fn an_invalid_redis_url_is_an_error_at_start() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let _guard = runtime.enter();
        let config = Config {
            store: StoreConfig::Redis {
                target: RedisTarget::Server("http://127.0.0.1:6379".into()),
                prefix: DEFAULT_REDIS_PREFIX.into(),
                l1: true,
            },
            ..Config::default()
        };
        assert!(store_from(&config).is_err());
    }
}
