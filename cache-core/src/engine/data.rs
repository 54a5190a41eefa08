//! Typed cache-aside: any serializable value, cached on the same engine and
//! store as the HTTP responses.
//!
//! [`Cache::get_or_insert_with`] returns the value stored under a key, or
//! calls a function that loads it (a database query, a category tree built
//! from several), stores what the function returns for the [`DataPolicy`]'s
//! TTL, and returns it. Data entries live in the cache's own store, so they
//! are shared through Redis like responses, and they carry tags like
//! responses: one [`Invalidator::tag`](crate::Invalidator::tag) drops the
//! data entries and the responses that depend on the same data.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use cache_core::{Cache, DataPolicy, MokaStore};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct Category {
//!     id: String,
//!     products: u64,
//! }
//!
//! async fn load_categories(queries: &mut u32) -> Result<Vec<Category>, Infallible> {
//!     *queries += 1; // a database query, in real life
//!     Ok(vec![Category { id: "books".into(), products: 42 }])
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = Cache::new(MokaStore::new());
//! let policy = DataPolicy::builder().namespace("categories").ttl("10m").tag("categories:acme").build()?;
//! let mut queries = 0;
//!
//! let first = cache.get_or_insert_with("acme", &policy, || load_categories(&mut queries)).await?;
//! let second = cache.get_or_insert_with("acme", &policy, || load_categories(&mut queries)).await?;
//! assert_eq!(first, second);
//! assert_eq!(queries, 1, "the second call is served from the cache");
//!
//! // A write to the categories drops them, with every response tagged the same.
//! assert_eq!(cache.invalidator().tag("categories:acme").await?, 1);
//! cache.get_or_insert_with("acme", &policy, || load_categories(&mut queries)).await?;
//! assert_eq!(queries, 2);
//! # Ok(())
//! # }
//! ```
//!
//! # How values are stored
//!
//! A value is serialized to JSON ([`serde_json`]) and kept as the body of a
//! [`CachedEntry`] with status `200`, `Content-Type:`
//! [`DATA_CONTENT_TYPE`], the time it was stored, the policy's TTL as its
//! freshness and the policy's tags. Every store and the entry
//! [`codec`](crate::store::codec) therefore keep data unchanged, and the Redis
//! store compresses large values like large bodies. JSON rather than a
//! compact binary format: no format to maintain, values readable with
//! `redis-cli`, and a type that gains a field with `#[serde(default)]`
//! still reads the entries of the previous version.
//!
//! # Keys
//!
//! The key of `key` under a policy is `data::{namespace}:{key}`, the
//! namespace and the key percent-escaped as in HTTP keys (see
//! [`key`](crate::key)), so neither holds a `:`: two different
//! (namespace, key) pairs never share a key. An HTTP key's second component
//! is its policy's version, a number, where a data key's is empty, so no
//! data key is ever an HTTP key, whatever the namespaces. Keys longer than
//! [`MAX_KEY_LEN`](crate::key::MAX_KEY_LEN) keep a readable prefix and end in `#` and a BLAKE3 hash,
//! as HTTP keys do. [`DataPolicy::key`] returns the key, and
//! [`DataPolicy::prefix`] the prefix every key of a namespace starts with
//! (for [`Invalidator::prefix`](crate::Invalidator::prefix)).
//!
//! Use one namespace per type: a value that does not deserialize as the
//! type asked for counts as a miss and is overwritten, so two types under
//! one key would keep replacing each other.
//!
//! # Why not a `CachePolicy`
//!
//! A [`CachePolicy`](crate::CachePolicy) describes HTTP: cacheable statuses,
//! `Vary`, tenant headers, tag templates filled from path parameters, the
//! `Cache-Control` sent downstream. None of it applies to a value. A
//! [`DataPolicy`] holds what does: the TTL, the tags, the namespace and how
//! long concurrent callers wait for one load.
//!
//! # Failure
//!
//! The cache never fails a call: a store that errors or times out counts as
//! a miss (and a failed write is logged), so the function is called and its
//! result returned. A stored value that does not deserialize as `T` (its
//! type changed between versions of the application), or foreign bytes at
//! the key, count as a miss, and the loaded value overwrites them. An error
//! from the function is returned as it is and nothing is stored.
//!
//! # Concurrent calls on the same key
//!
//! Concurrent calls for a key that is not stored call the function once
//! (per [`Cache`]): the first call leads, the others wait up to
//! [`DataPolicy::coalesce_timeout`] and deserialize the leader's value.
//! When the leader's function fails, each waiting call then calls its own
//! function (an error cannot be shared: it need not be `Clone`, and a retry
//! may succeed). When the leader is cancelled, a waiting call takes over;
//! when waiting times out, the call calls its function. A load that
//! overlaps an invalidation of its key or of one of its tags is returned but
//! not stored, as it may predate the change.
//!
//! # Feature flags
//!
//! None of its own: data entries live in whichever store the cache has
//! (`moka`, `redis`).

use std::{future::Future, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    Cache, CachedEntry, IntoTtl, Stamp,
    clock::duration_ms,
    coalesce::{Leader, Outcome, Turn},
    error::{ConfigError, StoreError},
    key::{bounded, escape_str_into},
    policy::DEFAULT_COALESCE_TIMEOUT,
};

/// The `Content-Type` of data entries: marks an entry as a serialized value
/// rather than an HTTP response.
pub const DATA_CONTENT_TYPE: &str = "application/vnd.cache-core.data+json";

/// The namespace of a [`DataPolicy`] that sets none.
pub const DEFAULT_DATA_NAMESPACE: &str = "default";

/// The TTL of a [`DataPolicy`] that sets none.
pub const DEFAULT_DATA_TTL: Duration = Duration::from_secs(60);

/// Every data key starts with this: an empty second component, where an
/// HTTP key has its policy's version.
const DATA_KEY_HEAD: &str = "data::";

/// The longest namespace, escaped: every key of a namespace, hashed or not,
/// keeps it whole, so that [`DataPolicy::prefix`] finds them all.
const MAX_NAMESPACE_LEN: usize = 100;

/// How values loaded through [`Cache::get_or_insert_with`] are cached: how
/// long, under which namespace, with which tags.
///
/// Cheap to clone (small strings). Build it once where the tags are fixed,
/// or per call where a tag names the data (`categories:{tenant}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPolicy {
    ttl: Duration,
    tags: Vec<String>,
    namespace: String,
    /// `data::{escaped namespace}:`
    prefix: String,
    coalesce_timeout: Duration,
}

impl DataPolicy {
    /// A builder with every default.
    pub fn builder() -> DataPolicyBuilder {
        DataPolicyBuilder::default()
    }

    /// How long a value stays fresh.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The tags every value stored under the policy carries.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The namespace, as given.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// How long a concurrent call waits for the leading call's value.
    pub fn coalesce_timeout(&self) -> Duration {
        self.coalesce_timeout
    }

    /// The store key of `key` under this policy: `data::{namespace}:{key}`,
    /// escaped, and hashed past [`MAX_KEY_LEN`](crate::key::MAX_KEY_LEN) bytes.
    pub fn key(&self, key: &str) -> String {
        let mut out = String::with_capacity(self.prefix.len() + key.len());
        out.push_str(&self.prefix);
        escape_str_into(key, &mut out);
        bounded(out)
    }

    /// The prefix of every key of this policy's namespace, for
    /// [`Invalidator::prefix`](crate::Invalidator::prefix).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// Builds a [`DataPolicy`]; every setting is checked at [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct DataPolicyBuilder {
    ttl: Duration,
    tags: Vec<String>,
    namespace: String,
    coalesce_timeout: Duration,
    errors: Vec<ConfigError>,
}

impl Default for DataPolicyBuilder {
    fn default() -> Self {
        DataPolicyBuilder {
            ttl: DEFAULT_DATA_TTL,
            tags: Vec::new(),
            namespace: DEFAULT_DATA_NAMESPACE.to_owned(),
            coalesce_timeout: DEFAULT_COALESCE_TIMEOUT,
            errors: Vec::new(),
        }
    }
}

impl DataPolicyBuilder {
    fn duration(&mut self, field: &'static str, value: impl IntoTtl) -> Duration {
        match value.into_ttl() {
            Ok(ttl) => ttl.as_duration(),
            Err(reason) => {
                self.errors.push(ConfigError::invalid(field, reason));
                Duration::ZERO
            }
        }
    }

    /// How long a value stays fresh: a [`Duration`], a [`Ttl`](crate::Ttl)
    /// or text like `"10m"`. Default: [`DEFAULT_DATA_TTL`].
    pub fn ttl(mut self, ttl: impl IntoTtl) -> Self {
        self.ttl = self.duration("ttl", ttl);
        self
    }

    /// Adds a tag to every value stored under the policy, such as
    /// `categories:acme`. Responses may carry the same tag: invalidating it
    /// drops both.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Adds several tags.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The namespace of the keys, such as `categories`: one per type of
    /// value. Default: [`DEFAULT_DATA_NAMESPACE`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How long concurrent calls wait for the leading call's value before
    /// loading their own. Default: 10 seconds.
    pub fn coalesce_timeout(mut self, timeout: impl IntoTtl) -> Self {
        self.coalesce_timeout = self.duration("coalesce_timeout", timeout);
        self
    }

    /// Builds the policy.
    ///
    /// # Errors
    ///
    /// The first invalid setting: an unparsable duration, a zero TTL or
    /// coalescing timeout, an empty namespace or one longer than 100 bytes
    /// once escaped.
    pub fn build(mut self) -> Result<DataPolicy, ConfigError> {
        if let Some(e) = self.errors.drain(..).next() {
            return Err(e);
        }
        if self.ttl.is_zero() {
            return Err(ConfigError::invalid("ttl", "must be positive"));
        }
        if self.coalesce_timeout.is_zero() {
            return Err(ConfigError::invalid("coalesce_timeout", "must be positive"));
        }
        if self.namespace.is_empty() {
            return Err(ConfigError::invalid("namespace", "must not be empty"));
        }
        let mut prefix = DATA_KEY_HEAD.to_owned();
        escape_str_into(&self.namespace, &mut prefix);
        if prefix.len() - DATA_KEY_HEAD.len() > MAX_NAMESPACE_LEN {
            return Err(ConfigError::invalid("namespace", "must be at most 100 bytes once escaped"));
        }
        prefix.push(':');
        Ok(DataPolicy {
            ttl: self.ttl,
            tags: self.tags,
            namespace: self.namespace,
            prefix,
            coalesce_timeout: self.coalesce_timeout,
        })
    }
}

impl Cache {
    /// The value stored under `key` (in `policy`'s namespace), or the value
    /// `load` returns, which is then stored for `policy`'s TTL with its tags.
    ///
    /// `load` is called at most once, and not at all on a hit. The returned
    /// future is `Send` when `load`'s future, `T` and `E` are.
    ///
    /// # Errors
    ///
    /// Only `load`'s error, returned unchanged and not cached. Store
    /// failures and stored values that do not deserialize as `T` are misses,
    /// never errors (see [the module docs](crate::data#failure)).
    ///
    /// # Concurrent calls on the same key
    ///
    /// One call per key loads at a time; the others wait up to
    /// [`DataPolicy::coalesce_timeout`] and get its value. If it fails, each
    /// waiting call calls its own `load`; if it is cancelled, a waiting call
    /// takes over.
    pub async fn get_or_insert_with<T, E, F, Fut>(&self, key: &str, policy: &DataPolicy, load: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let key = policy.key(key);
        let mut stamp = match self.read_data(&key).await {
            Ok((value, _)) => return Ok(value),
            Err(stamp) => stamp,
        };
        let (turn, looked) = self
            .inner
            .coalescer
            .lead_or_wait(&key, policy.coalesce_timeout, true, || self.read_data::<T>(&key))
            .await;
        if let Some(newer) = looked {
            stamp = newer;
        }
        match turn {
            Turn::Found((value, _)) => Ok(value),
            // Another leader may have stored the value between our read and
            // our joining.
            Turn::Lead(leader) => match self.read_data(&key).await {
                Ok((value, entry)) => {
                    leader.finish(Outcome::Entry(entry));
                    Ok(value)
                }
                Err(newer) => self.load_data(&key, policy, Some(leader), newer, load).await,
            },
            Turn::Shared(entry) => match decode(&key, &entry) {
                Some(value) => Ok(value),
                // The leader stored another type under the key.
                None => self.load_data(&key, policy, None, stamp, load).await,
            },
            Turn::Alone | Turn::Busy => self.load_data(&key, policy, None, stamp, load).await,
        }
    }

    /// Drops the value stored under `key` in `policy`'s namespace; returns
    /// whether there was one. A load of the key that overlaps the call does
    /// not store what it loaded.
    ///
    /// # Errors
    ///
    /// The store's error; the value may then still be there until it
    /// expires.
    pub async fn invalidate_data(&self, key: &str, policy: &DataPolicy) -> Result<bool, StoreError> {
        self.invalidator().key(&policy.key(key)).await
    }

    /// A fresh value of type `T` stored at `key`, and its entry; or the
    /// stamp a load that follows gives the value it stores.
    async fn read_data<T: DeserializeOwned>(&self, key: &str) -> Result<(T, Arc<CachedEntry>), Stamp> {
        let (entry, stamp) = match self.inner.store.get_stamped(key).await {
            Ok((Some(entry), stamp)) => (entry, stamp),
            Ok((None, stamp)) => return Err(stamp),
            Err(err) => {
                self.log_store_error("get", &err);
                return Err(Stamp::LOST);
            }
        };
        if entry.is_fresh(self.inner.clock.now_ms())
            && let Some(value) = decode(key, &entry)
        {
            return Ok((value, entry));
        }
        Err(self.stamp_for_fetch(stamp).await)
    }

    /// Calls `load`, stores its value unless an invalidation overlapped it,
    /// and hands it to the waiting calls.
    async fn load_data<T, E, F, Fut>(&self, key: &str, policy: &DataPolicy, leader: Option<Leader>, stamp: Stamp, load: F) -> Result<T, E>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let since = self.inner.invalidations.seq();
        let started = std::time::Instant::now();
        let value = match load().await {
            Ok(value) => value,
            Err(err) => {
                if let Some(leader) = leader {
                    leader.finish(Outcome::Uncacheable);
                }
                return Err(err);
            }
        };
        let fetch_ms = duration_ms(started.elapsed()).max(1);
        match self.data_entry(key, policy, &value, fetch_ms, stamp) {
            Some(entry) => self.put_data(key, entry, leader, since).await,
            None => {
                if let Some(leader) = leader {
                    leader.finish(Outcome::Uncacheable);
                }
            }
        }
        Ok(value)
    }

    /// The entry holding `value`, or `None` when it cannot be serialized.
    fn data_entry<T: Serialize>(&self, key: &str, policy: &DataPolicy, value: &T, fetch_ms: u64, stamp: Stamp) -> Option<Arc<CachedEntry>> {
        let body = match serde_json::to_vec(value) {
            Ok(body) => body,
            Err(err) => {
                tracing::warn!(key, error = %err, "value could not be serialized: not cached");
                return None;
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(DATA_CONTENT_TYPE));
        let now = self.inner.clock.now_ms();
        let mut entry = CachedEntry::new(StatusCode::OK, headers, Bytes::from(body), now, duration_ms(policy.ttl));
        entry.tags = policy
            .tags
            .iter()
            .map(|t| crate::tags::Tag::app(t.as_str()).into_stored())
            .collect();
        entry.fetch_ms = fetch_ms;
        Some(Arc::new(entry.with_stamp(stamp)))
    }

    /// Stores `entry` unless an invalidation that concerns it ran since the
    /// load started (`since`), and hands it to the waiting calls. A failed
    /// write is logged; the waiting calls still get the value.
    async fn put_data(&self, key: &str, entry: Arc<CachedEntry>, leader: Option<Leader>, since: u64) {
        let ttl = Duration::from_millis(entry.retain_for_ms());
        self.put_for_waiters(key, &entry, ttl, since, leader).await;
    }
}

/// The value a data entry holds, or `None` when the entry is not a data
/// entry or does not deserialize as `T`.
fn decode<T: DeserializeOwned>(key: &str, entry: &CachedEntry) -> Option<T> {
    let marked = entry.headers.get(&header::CONTENT_TYPE).is_some_and(|v| v == DATA_CONTENT_TYPE);
    if entry.status != StatusCode::OK || !marked {
        tracing::debug!(key, "not a data entry: a miss");
        return None;
    }
    match serde_json::from_slice(&entry.body) {
        Ok(value) => Some(value),
        Err(err) => {
            let expected = std::any::type_name::<T>();
            tracing::debug!(key, expected, error = %err, "stored value does not deserialize: a miss, overwritten");
            None
        }
    }
}

#[cfg(test)]
mod tests;
