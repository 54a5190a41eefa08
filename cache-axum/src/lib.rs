//! Server-side HTTP response caching for [axum].
//!
//! Mount a [`CacheLayer`] on one route (`get(handler).layer(...)`) with
//! that route's policy, or on a whole `Router` with a default policy and
//! per-route overrides keyed by the route pattern you registered. Tag
//! templates such as `product:{tenant}:{id}` are filled from axum's path
//! parameters. Handlers refine a response's TTL and tags by returning a
//! [`CacheHints`] extension, and invalidate through the [`Invalidator`]
//! extension every request behind the layer carries.
//!
//! Build one [`Cache`] per application and make every layer from it, so
//! that they share one store.
//!
//! The [`purge`] module mounts the purge API: `POST /purge` with a JSON
//! body of tags, keys and prefixes, and `PURGE <url>` on any route, behind
//! a bearer token.
//!
//! # Example
//!
//! ```
//! use axum::{Extension, Router, extract::Path, routing::get};
//! use cache_axum::{Cache, CacheHints, CacheLayer, CachePolicy, Invalidator, MokaStore};
//!
//! async fn product(Path(id): Path<u64>) -> (Extension<CacheHints>, String) {
//!     let hints = CacheHints::new().tag(format!("category:{}", id % 10));
//!     (Extension(hints), format!("product {id}"))
//! }
//!
//! async fn update(Path(id): Path<u64>, Extension(invalidator): Extension<Invalidator>) -> &'static str {
//!     // ... write to the database, then:
//!     invalidator.tag(format!("product:{id}")).await.ok();
//!     "updated"
//! }
//!
//! let cache = Cache::new(MokaStore::new());
//! let product_policy = CachePolicy::builder().ttl("1h").tag("product:{id}").build().unwrap();
//! let app: Router = Router::new()
//!     .route("/products/{id}", get(product).put(update).layer(CacheLayer::new(&cache, product_policy)))
//!     .route("/categories", get(|| async { "[]" }))
//!     .layer(CacheLayer::new(&cache, CachePolicy::with_ttl(std::time::Duration::from_secs(7200))));
//! # let _ = app;
//! ```
//!
//! A request passing two cache layers is served by the outer one: to give
//! one route of a router-wide layer its own policy, use
//! [`CacheLayer::route`].
//!
//! # TTL tables from TOML
//!
//! A team's table of endpoints — path pattern, TTL, key, tags, what
//! invalidates it — can live in a TOML file instead of code (feature
//! `config`, on by default): [`Policies::from_toml_file`] loads it, and one
//! layer over the whole app applies it. The [`config`] module describes the
//! format; a mistake stops the start with an error naming the file, the
//! route and the field.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use cache_axum::{Cache, CacheLayer, MokaStore, Policies};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = Cache::new(MokaStore::new());
//! let policies = Policies::from_toml_file("cache.toml")?;
//! let app: Router = Router::new()
//!     .route("/api/v1/products/{id}", get(|| async { "product" }))
//!     .layer(CacheLayer::new(&cache, policies));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! - `moka` (default): the embedded store, [`MokaStore`].
//! - `config` (default): TTL tables from TOML ([`config`]).
//! - `prometheus`: a Prometheus recorder for the cache's metrics
//!   (`metrics::prometheus`).
//!
//! [axum]: https://docs.rs/axum

pub mod purge;

use std::fmt;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams};
use futures_util::FutureExt;
use http::request::Parts;
use tower_layer::Layer;

#[cfg(feature = "config")]
pub use cache_core::config;
pub use cache_core::key::{CacheKey, Tenant, TenantSource};
pub use cache_core::metrics;
pub use cache_core::{
    Cache, CacheBuilder, CacheHints, CachePolicy, CachePolicyBuilder, Clock, ConfigError, Invalidator, Policies, RouteMatch, Store,
    StoreError, Ttl,
};
pub use cache_core::{InvalidationRule, PathPattern};
#[cfg(feature = "moka")]
pub use cache_core::{MokaStore, store::MokaStoreBuilder};
use cache_tower::RouteInfo;
pub use cache_tower::{CacheService, ResponseFuture};

/// Caches the responses of the routes it wraps; see the [crate docs](crate).
///
/// Cheap to clone. Built from a [`Cache`], whose store every layer made
/// from it shares.
#[derive(Clone)]
pub struct CacheLayer {
    inner: cache_tower::CacheLayer,
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl CacheLayer {
    /// A layer applying `policies` (one [`CachePolicy`] for every route, or
    /// a [`Policies`] table by route pattern).
    pub fn new(cache: &Cache, policies: impl Into<Policies>) -> Self {
        CacheLayer {
            inner: cache_tower::CacheLayer::new(cache, policies).route_info(AXUM_ROUTE),
        }
    }

    /// Gives the route registered as `pattern` (`/products/{id}`, as passed
    /// to `Router::route`) its own policy, or none to leave it uncached.
    #[must_use]
    pub fn route(self, pattern: impl Into<String>, policy: impl Into<Option<CachePolicy>>) -> Self {
        CacheLayer {
            inner: self.inner.route(pattern, policy),
        }
    }

    /// The cache this layer serves from.
    pub fn cache(&self) -> &Cache {
        self.inner.cache()
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.inner.layer(inner)
    }
}

/// The route axum matched: its registered pattern ([`MatchedPath`]) and
/// path parameters ([`RawPathParams`]).
const AXUM_ROUTE: RouteInfo = RouteInfo {
    pattern: |extensions| extensions.get::<MatchedPath>().map(MatchedPath::as_str),
    params: axum_params,
};

/// The path parameters as `Path` gives them to handlers: `RawPathParams`
/// holds them percent-decoded.
fn axum_params(parts: &mut Parts) -> Vec<(String, String)> {
    // Path parameters are extracted synchronously; the future is ready at once.
    match RawPathParams::from_request_parts(parts, &()).now_or_never() {
        Some(Ok(params)) => params.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
        _ => Vec::new(),
    }
}
