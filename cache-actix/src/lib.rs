//! Server-side HTTP response caching for [actix-web].
//!
//! [`CacheMiddleware`] serves requests through the same `cache-core` engine
//! as the tower and axum adapters — same keys, coalescing, `304`s, tags and
//! invalidation — mounted with `.wrap(...)` on an `App`, a `scope` or a
//! `resource`, each with its own policy. A scope-level middleware takes
//! per-resource overrides by full route pattern ([`CacheMiddleware::route`]).
//! Tag templates such as `product:{tenant}:{id}` are filled from
//! `match_info` path parameters. Handlers refine a response's TTL and tags by
//! inserting a [`CacheHints`] into the response's extensions (it is removed
//! before the client sees the response), and invalidate through the
//! [`Invalidator`] every request behind the middleware carries
//! (`web::ReqData<Invalidator>`), or one registered as `web::Data`.
//!
//! The middleware fits actix's model: it needs no `Send` futures (each
//! worker runs its own runtime; the cache itself is shared by every
//! worker), passes the wrapped service's body through as the left side of an
//! `EitherBody` when it does not touch a response, streams bodies over the
//! policy's limit without buffering them, and keeps the wrapped service's
//! errors.
//!
//! Inside a stale-while-revalidate window, the request that finds the entry
//! stale refreshes it before answering (an actix request cannot be replayed
//! on a background task), and every request for the key meanwhile answers
//! with the stale entry at once: one request waits, none else does.
//!
//! A conditional or `HEAD` request that misses is forwarded as a plain `GET`
//! (the engine answers conditionals itself, and needs a whole response to
//! store), which changes the request's head: like actix's `NormalizePath`,
//! that needs the only reference to the request, so a middleware outside
//! this one must not hold a clone of the `HttpRequest` while it calls in.
//!
//! The [`purge`] module mounts the purge API: `POST /purge` with a JSON
//! body of tags, keys and prefixes, and `PURGE <url>` on any route, behind
//! a bearer token.
//!
//! # Example
//!
//! ```
//! use actix_web::{App, HttpResponse, web};
//! use cache_actix::{Cache, CacheHints, CacheMiddleware, CachePolicy, Invalidator, MokaStore};
//!
//! async fn product(path: web::Path<u64>) -> HttpResponse {
//!     let mut response = HttpResponse::Ok().body(format!("product {path}"));
//!     response.extensions_mut().insert(CacheHints::new().tag("catalog"));
//!     response
//! }
//!
//! async fn update(path: web::Path<u64>, invalidator: web::ReqData<Invalidator>) -> HttpResponse {
//!     // ... write to the database, then:
//!     invalidator.tag(format!("product:{path}")).await.ok();
//!     HttpResponse::NoContent().finish()
//! }
//!
//! let cache = Cache::new(MokaStore::new());
//! let policy = CachePolicy::builder().ttl("1h").tag("product:{id}").build().unwrap();
//! let app = App::new().service(
//!     web::resource("/products/{id}")
//!         .wrap(CacheMiddleware::new(&cache, policy))
//!         .route(web::get().to(product))
//!         .route(web::put().to(update)),
//! );
//! # let _ = app;
//! ```
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
//! use actix_web::{App, web};
//! use cache_actix::{Cache, CacheMiddleware, MokaStore, Policies};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = Cache::new(MokaStore::new());
//! let policies = Policies::from_toml_file("cache.toml")?;
//! let app = App::new()
//!     .wrap(CacheMiddleware::new(&cache, policies))
//!     .route("/api/v1/products/{id}", web::get().to(|| async { "product" }));
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
//! [actix-web]: https://docs.rs/actix-web

mod body;
mod convert;
mod middleware;
pub mod purge;

pub use body::{CachedBody, CachedBodyError, OriginBody, OriginBodyError};
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
pub use middleware::{CacheMiddleware, CacheService};
