//! The purge API, mounted when the storefront has a purge token
//! (`--purge-token TOKEN`, [`Config::purge_token`](crate::Config::purge_token)).
//!
//! - `POST /purge` with `Authorization: Bearer TOKEN` and a JSON body
//!   `{"tags": [...], "keys": [...], "prefixes": [...]}` drops those entries
//!   and answers `{"dropped": n}`; e.g. `{"tags": ["products:acme"]}` drops
//!   every product list of `acme`.
//! - `PURGE <url>` with the token and the tenant header drops every stored
//!   variant of that URL, such as `PURGE /api/v1/products/42` with
//!   `X-Tenant-ID: acme`.
//!
//! Without a token neither exists: `POST /purge` is a `404`, and `PURGE` a
//! `405` like any other method the routes do not serve.

use axum::Router;
use cache_axum::purge::{PurgeAuth, PurgeLayer, Purger, purge_router};
use cache_axum::{Cache, Policies};

use crate::{CATEGORIES, PRODUCT, PRODUCTS, policies};

/// The policy of every cached route by pattern: what a `PURGE` builds its
/// key with, as the cache layers do. Shared with the actix-web storefront.
pub fn policies() -> Policies {
    Policies::new(None)
        .route(PRODUCTS, policies::product_list())
        .route(PRODUCT, policies::product())
        .route(CATEGORIES, policies::categories())
}

/// `router` with the purge API of `cache` when there is a `token`, or as it
/// is.
pub fn mount(router: Router, cache: &Cache, token: Option<&PurgeAuth>) -> Router {
    let Some(token) = token else {
        return router;
    };
    router
        .merge(purge_router(cache, token.clone()))
        .layer(PurgeLayer::new(Purger::new(cache, token.clone()), policies()))
}
