//! The storefront on actix-web: the same multi-tenant catalog API as the
//! axum [`storefront`] — routes, JSON bodies, tenants, errors, TTLs, tags
//! and invalidation — over the same [`catalog`], cached with `cache-actix`
//! on the same store: embedded moka by default, Redis or moka in front of
//! Redis with `--redis`, `--redis-cluster` and `--redis-only`
//! ([`storefront::StoreConfig`], built by [`storefront::store_from`]).
//!
//! | route                          | answer                        | cache                               |
//! |--------------------------------|-------------------------------|-------------------------------------|
//! | `GET /`                        | the routes, as text           | none                                |
//! | `GET /api/v1/products`         | [`catalog::ProductPage`]      | 5m, by tenant and list parameters   |
//! | `GET /api/v1/products/{id}`    | [`catalog::Product`] or `404` | 1h, by tenant and path              |
//! | `PUT /api/v1/products/{id}`    | the updated product           | invalidates the product and lists   |
//! | `GET /api/v1/categories`       | `Vec<`[`catalog::Category`]`>` | 2h, by tenant                      |
//! | `GET /metrics`                 | Prometheus text ([`metrics`]) | none                                |
//!
//! The policies are [`storefront::policies`]; only the mounting is actix's:
//!
//! - the `/api/v1` scope is wrapped in one [`CacheMiddleware`](cache_actix::CacheMiddleware) whose
//!   default is no policy, holding the policies of the lists and the
//!   categories by full route pattern
//!   ([`CacheMiddleware::route`](cache_actix::CacheMiddleware::route));
//! - the `/api/v1/products/{id}` resource inside it is wrapped in its own
//!   `CacheMiddleware` with [`storefront::policies::product`]. The scope's
//!   middleware has no policy for that pattern, so it lets those requests
//!   through, and each request meets exactly one middleware with a policy
//!   for it.
//!
//! With a TTL table (`--config examples/storefront/cache.toml`), the
//! scope's middleware holds the whole table instead. The categories handler
//! reads the category tree through the data cache
//! ([`storefront::policies::categories_data`], the `Cache` registered as
//! `web::Data`), like the axum storefront's.
//!
//! Handlers take the tenant from `X-Tenant-ID` (`400` without a known one),
//! invalidate through `web::ReqData<`[`Invalidator`](cache_actix::Invalidator)`>`
//! and tag filtered lists with a [`CacheHints`](cache_actix::CacheHints) in
//! the response's extensions. Errors are JSON: `{"error": "..."}`.
//!
//! # Example
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use actix_web::HttpServer;
//! use storefront_actix::{Config, app, build};
//!
//! let (catalog, cache) = build(&Config { products_per_tenant: 100, ..Config::default() })?;
//! actix_web::rt::System::new().block_on(async move {
//!     HttpServer::new(move || app(catalog.clone(), &cache)).bind("127.0.0.1:3001")?.run().await
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! Run the binary with `cargo run --release -p storefront-actix -- --db-latency 35ms`.

mod error;
mod handlers;
pub mod metrics;
mod routes;
mod tenant;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::App;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use cache_actix::purge::{PURGE_PATH, PurgeAuth, PurgeMiddleware, Purger, purge_resource};
use cache_actix::{Cache, Policies};
use catalog::Catalog;

pub use error::ApiError;
pub use routes::{configure, configure_with_table};
pub use storefront::{Config, StorefrontError};

/// The address the binary listens on by default: next to the axum
/// storefront's `127.0.0.1:3000`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3001);

/// [`Config::default()`], listening on [`DEFAULT_LISTEN`].
pub fn default_config() -> Config {
    Config {
        listen: DEFAULT_LISTEN,
        ..Config::default()
    }
}

/// Opens the catalog and builds the response cache an app serves from
/// (the same as the axum storefront's); `config.listen` is not used.
///
/// Build them once and hand clones to every worker's [`app`]: the cache and
/// the catalog are shared by all workers. With Redis configured, call it
/// within the actix system (or any tokio runtime), which then runs the
/// Redis connection and the invalidation subscription.
///
/// # Errors
///
/// The catalog could not be opened, or the cache or its store not
/// configured.
pub fn build(config: &Config) -> Result<(Catalog, Cache), StorefrontError> {
    storefront::build(config)
}

/// An `App` serving the storefront over `catalog`, caching in `cache`: the
/// factory to call in `HttpServer::new(move || ...)`. See [`configure`];
/// `GET /metrics` serves the cache's metrics ([`metrics`]).
pub fn app(
    catalog: Catalog,
    cache: &Cache,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody + use<>>,
        Error = actix_web::Error,
        InitError = (),
    > + use<>,
> {
    App::new().configure(|config| {
        configure(config, catalog, cache);
        config.service(metrics::resource(cache));
    })
}

/// [`app`] with the purge API when there is a `purge_token` (see
/// [`storefront::purge`]): `POST /purge` and `PURGE <url>`, and the
/// policies of `cache_table` (`--config cache.toml`) when there is one.
pub fn app_with_purge(
    catalog: Catalog,
    cache: &Cache,
    purge_token: Option<&PurgeAuth>,
    cache_table: Option<&Policies>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody + use<>>,
        Error = actix_web::Error,
        InitError = (),
    > + use<>,
> {
    let purger = purge_token.map(|token| Purger::new(cache, token.clone()));
    App::new()
        .wrap(PurgeMiddleware::new(purger.clone(), storefront::purge::policies()))
        .configure(|config| {
            if let Some(purger) = purger {
                config.service(purge_resource(PURGE_PATH, purger));
            }
            configure_with_table(config, catalog, cache, cache_table);
            config.service(metrics::resource(cache));
        })
}
