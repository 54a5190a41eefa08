//! The storefront: the project's main demo. A multi-tenant product catalog
//! API on axum, over an embedded SQLite [`catalog`] (4,000 products for each
//! of the tenants `acme`, `globex` and `initech`), cached with `cache-axum`
//! on the embedded moka store, on Redis, or on moka in front of Redis
//! ([`StoreConfig`]).
//!
//! | route                          | answer                        | cache                               |
//! |--------------------------------|-------------------------------|-------------------------------------|
//! | `GET /`                        | this list, as text            | none                                |
//! | `GET /api/v1/products`         | [`catalog::ProductPage`]      | 5m, by tenant and list parameters   |
//! | `GET /api/v1/products/{id}`    | [`catalog::Product`] or `404` | 1h, by tenant and path              |
//! | `PUT /api/v1/products/{id}`    | the updated product           | invalidates the product and lists   |
//! | `GET /api/v1/categories`       | `Vec<`[`catalog::Category`]`>` | 2h, by tenant                      |
//! | `GET /metrics`                 | Prometheus text ([`metrics`]) | none                                |
//!
//! Every `/api/` request names its tenant in `X-Tenant-ID`; without a known
//! one it gets `400`. Errors are JSON: `{"error": "..."}`. See
//! [`policies`] for the TTL table and how tags tie entries to the data.
//! With a purge token (`--purge-token`), [`purge`] adds `POST /purge` and
//! `PURGE <url>`.
//!
//! # Example
//!
//! Build the app in-process and serve it on a free port:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use storefront::{Config, app, serve};
//!
//! let app = app(&Config { products_per_tenant: 100, ..Config::default() })?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("listening on {}", listener.local_addr()?);
//! serve(listener, app.router).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Run the binary with `cargo run --release -p storefront -- --db-latency 35ms`.
//!
//! # Redis
//!
//! `--redis redis://127.0.0.1:6379` caches in a tiered store: a moka L1 of
//! `--cache-capacity` bytes in front of Redis, invalidated on every instance
//! over Redis pub/sub, so that several storefronts share their entries.
//! `--redis-cluster URL,URL,...` does the same over a Redis Cluster (seed
//! nodes, comma-separated), `--redis-only` leaves the L1 out (every hit is
//! a Redis round trip), and `--redis-prefix` (default `storefront:`)
//! prefixes every key. The storefront starts without waiting for Redis and
//! serves from its database until Redis answers. In code, set
//! [`Config::store`] and build the app within a tokio runtime.
//!
//! Each storefront has a database of its own in memory, unless `--db PATH`
//! ([`Config::db`]) keeps the catalog in a SQLite file: storefronts started
//! with the same path share it, as instances of a real application share
//! their database, so an update through one is what the others read next.

pub mod cli;
mod config;
mod error;
mod handlers;
pub mod metrics;
mod middleware;
pub mod policies;
pub mod purge;
mod routes;
mod store;
mod tenant;
pub mod warm;

use std::future::Future;

use cache_axum::{Cache, Policies};
use catalog::Catalog;

pub use config::{Config, DEFAULT_CACHE_CAPACITY_BYTES};
pub use error::{ApiError, StorefrontError};
// Framework-neutral pieces, shared with the actix-web storefront.
pub use handlers::{bad_product_id, invalidate_product, list_hints, no_product, no_route, not_allowed, product_hints};
pub use routes::{CATEGORIES, PRODUCT, PRODUCTS, index_page};
pub use store::{CacheStore, DEFAULT_REDIS_PREFIX, RedisTarget, StoreConfig, store_from};
pub use tenant::{TENANT_HEADER, TenantId};

/// The name of the cache in `Cache-Status` headers.
pub const CACHE_NAME: &str = "storefront";

/// A built storefront: its router and the parts tests look into.
#[derive(Debug)]
pub struct App {
    /// Every route, ready to serve.
    pub router: axum::Router,
    /// The response cache behind the router.
    pub cache: Cache,
    /// The database behind the router; [`Catalog::queries`] counts the
    /// requests the cache did not answer.
    pub catalog: Catalog,
}

/// Builds the catalog, the cache and the router, without binding a socket.
///
/// The router serves `GET /metrics` from the process's Prometheus recorder,
/// which the first call installs ([`metrics::prometheus`]).
///
/// # Errors
///
/// The catalog could not be opened, or the cache not configured.
pub fn app(config: &Config) -> Result<App, StorefrontError> {
    let (catalog, cache) = build(config)?;
    let table = cache_table(config)?;
    let router = routes::router(catalog.clone(), &cache, table);
    let router = purge::mount(router, &cache, config.purge_token.as_ref());
    let router = metrics::mount(router, &cache);
    Ok(App { router, cache, catalog })
}

/// Opens the catalog and builds the response cache (named [`CACHE_NAME`],
/// on the store [`store_from`] builds from `config`) that an app serves
/// from; `config.listen` is not used.
///
/// With Redis configured, call it within a tokio runtime: Redis is
/// connected in the background.
///
/// # Errors
///
/// The catalog could not be opened, or the cache or its store not
/// configured.
pub fn build(config: &Config) -> Result<(Catalog, Cache), StorefrontError> {
    let catalog = match &config.db {
        Some(path) => Catalog::open_file(path, config.products_per_tenant)?,
        None => Catalog::open(config.products_per_tenant)?,
    };
    let catalog = catalog.with_latency(config.db_latency);
    let cache = cache_on(store_from(config)?)?;
    Ok((catalog, cache))
}

/// The TTL table of `config.cache_table`, when there is one.
///
/// # Errors
///
/// The file cannot be read or holds a mistake; the error names the file,
/// the route and the field.
pub fn cache_table(config: &Config) -> Result<Option<Policies>, StorefrontError> {
    match &config.cache_table {
        Some(path) => Ok(Some(Policies::from_toml_file(path)?)),
        None => Ok(None),
    }
}

/// The response cache an app serves from, named [`CACHE_NAME`], on `store`.
///
/// # Errors
///
/// The cache could not be configured.
pub fn cache_on(store: CacheStore) -> Result<Cache, StorefrontError> {
    Ok(Cache::builder().name(CACHE_NAME).store(store).build()?)
}

/// The router over `catalog`, caching in `cache`: for tests that bring
/// their own cache (a manual clock, a failing store).
pub fn app_with_cache(catalog: Catalog, cache: Cache) -> axum::Router {
    routes::router(catalog, &cache, None)
}

/// Serves `router` on `listener` until the listener fails.
///
/// # Errors
///
/// The I/O error [`axum::serve()`] returns.
pub async fn serve(listener: tokio::net::TcpListener, router: axum::Router) -> std::io::Result<()> {
    serve_with_shutdown(listener, router, std::future::pending()).await
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes
/// the requests in flight.
///
/// # Errors
///
/// The I/O error [`axum::serve()`] returns.
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
