//! The purge API on axum: a router serving `POST /purge`, and a layer
//! answering `PURGE <url>` on every route of an app.
//!
//! Requests, answers and limits are those of [`cache_core::purge`]: a
//! bearer token compared in constant time, a JSON body
//! `{"tags": [...], "keys": [...], "prefixes": [...]}` of at most 64 KiB and
//! 1000 items by default, `200 {"dropped": n}`, `401` with
//! `WWW-Authenticate: Bearer`, `413`, `400`, and `503` when the store
//! fails.
//!
//! - [`purge_router`] (or [`purge_route`], to choose the path and limits)
//!   is a `Router` to `.merge()` or `.nest()` into the app.
//! - [`PurgeLayer`] goes on the app's `Router` with `.layer(...)`: a
//!   `PURGE` on any route drops every stored variant of its URL, with the
//!   key its route's policy builds (give it the same policies as the cache
//!   layers, by route pattern). Send the headers the key is made of, such as
//!   the tenant header.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use cache_axum::purge::{PurgeAuth, PurgeLayer, Purger, purge_router};
//! use cache_axum::{Cache, CacheLayer, CachePolicy, MokaStore, Policies};
//!
//! let cache = Cache::new(MokaStore::new());
//! let policy = CachePolicy::builder().ttl("1h").tag("product:{id}").build().unwrap();
//! let auth = PurgeAuth::bearer("s3cret").unwrap(); // from the environment, in a real app
//! let app: Router = Router::new()
//!     .route("/products/{id}", get(|| async { "a product" }).layer(CacheLayer::new(&cache, policy.clone())))
//!     .merge(purge_router(&cache, auth.clone()))
//!     .layer(PurgeLayer::new(Purger::new(&cache, auth), Policies::new(None)).route("/products/{id}", policy));
//! # let _ = app;
//! ```
//!
//! ```text
//! curl -X POST -H 'Authorization: Bearer s3cret' -d '{"tags": ["product:42"]}' http://HOST/purge
//! curl -X PURGE -H 'Authorization: Bearer s3cret' http://HOST/products/42
//! ```

use std::fmt;

use axum::{
    Router,
    body::Body,
    extract::Request,
    routing::{MethodRouter, post},
};
pub use cache_core::purge::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ITEMS, PURGE_PATH, PurgeAuth, PurgeError, PurgeLimits, PurgeOutcome, PurgeRequest, Purger,
};
use cache_core::{Cache, CachePolicy, Policies};
pub use cache_tower::purge::{PurgeBody, PurgeFuture, PurgeService};
use tower_layer::Layer;

use crate::AXUM_ROUTE;

/// A router serving `POST /purge` ([`PURGE_PATH`]) for `cache`, to requests bearing `auth`'s
/// token, with the default limits. Merge it into the app
/// (`app.merge(purge_router(..))`) or nest it (`/admin/purge` with
/// `.nest("/admin", ..)`).
pub fn purge_router<S>(cache: &Cache, auth: PurgeAuth) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(PURGE_PATH, purge_route(Purger::new(cache, auth)))
}

/// The purge endpoint as a route, for any path: `POST` purges with
/// `purger` (its limits apply), other methods get `405`.
///
/// ```
/// # use axum::Router;
/// # use cache_axum::{Cache, MokaStore, purge::{PurgeAuth, Purger, purge_route}};
/// # let cache = Cache::new(MokaStore::new());
/// let purger = Purger::new(&cache, PurgeAuth::bearer("s3cret").unwrap()).max_items(100);
/// let admin: Router = Router::new().route("/admin/cache/purge", purge_route(purger));
/// ```
pub fn purge_route<S>(purger: Purger) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    post(move |request: Request| {
        let answer = purger.serve_json(request);
        async move { answer.await.map(Body::from) }
    })
}

/// Answers `PURGE <url>` on every route it wraps; other requests pass
/// through. See the [module docs](self).
///
/// Put it on the app's `Router` (`.layer(...)`), outside the cache layers:
/// it picks the policy of the matched route by pattern, as
/// [`CacheLayer`](crate::CacheLayer) does. A URL whose route has no policy
/// gets `404`. Built without a [`Purger`] (`PurgeLayer::new(None, ..)`) it
/// is inert, so that an app with purging turned off has the same type.
#[derive(Clone)]
pub struct PurgeLayer {
    inner: cache_tower::purge::PurgeLayer,
}

impl fmt::Debug for PurgeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl PurgeLayer {
    /// A layer purging with `purger` (inert with `None`), with `policies`
    /// (one [`CachePolicy`] for every route, or a [`Policies`] table by
    /// route pattern).
    pub fn new(purger: impl Into<Option<Purger>>, policies: impl Into<Policies>) -> Self {
        PurgeLayer {
            inner: cache_tower::purge::PurgeLayer::new(purger, policies).route_info(AXUM_ROUTE),
        }
    }

    /// Gives the route registered as `pattern` (`/products/{id}`) its
    /// policy, or none (`404`).
    #[must_use]
    pub fn route(self, pattern: impl Into<String>, policy: impl Into<Option<CachePolicy>>) -> Self {
        PurgeLayer {
            inner: self.inner.route(pattern, policy),
        }
    }

    /// Whether the layer purges (it was given a [`Purger`]).
    pub fn is_enabled(&self) -> bool {
        self.inner.is_enabled()
    }
}

impl<S> Layer<S> for PurgeLayer {
    type Service = PurgeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.inner.layer(inner)
    }
}
