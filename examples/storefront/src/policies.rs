//! The cache policy of each API route: the storefront's TTL table.
//!
//! | route                   | TTL | key                                    | tags                        |
//! |-------------------------|-----|----------------------------------------|-----------------------------|
//! | `/api/v1/products`      | 5m  | tenant, category/page/limit/search/sort | `products:{tenant}` (+ `category:{tenant}:{category}` from the handler) |
//! | `/api/v1/products/{id}` | 1h  | tenant, path                           | `product:{tenant}:{id}`     |
//! | `/api/v1/categories`    | 2h  | tenant, path                           | `categories:{tenant}`       |
//!
//! Behind the response cache, the categories handler reads the category
//! list through the data cache ([`categories_data`]: 2h, tagged
//! `categories:{tenant}` too), so that the list is read from the database
//! once per tenant even when its responses are dropped.
//!
//! A `PUT /api/v1/products/{id}` drops `product:{tenant}:{id}` and
//! `products:{tenant}` (and `categories:{tenant}`, responses and data, when
//! the product changes category); `404`s for unknown ids are kept one
//! minute.
//!
//! Clients get `public, max-age=60` for single products and `public,
//! no-cache` for lists: lists change with any product, so clients
//! revalidate them, which the cache answers with a cheap `304`. The cache
//! adds `Vary: x-tenant-id` to every response of these routes.
//!
//! Each policy is labelled with its route pattern, the `route` label of
//! the cache's request metrics (`GET /metrics`).

use cache_axum::{CachePolicy, CachePolicyBuilder};
use cache_core::DataPolicy;

use crate::routes::{CATEGORIES, PRODUCT, PRODUCTS};
use crate::tenant::TENANT_HEADER;

/// The query parameters that select a product list; others are ignored.
pub const LIST_QUERY_PARAMS: [&str; 5] = ["category", "page", "limit", "search", "sort"];

/// `GET /api/v1/products`.
pub fn product_list() -> CachePolicy {
    tenant_scoped("5m")
        .label(PRODUCTS)
        .query_allow(LIST_QUERY_PARAMS)
        .tag("products:{tenant}")
        .downstream_cache_control("public, no-cache")
        .build()
        .expect("the product list policy is made of valid constants")
}

/// `GET /api/v1/products/{id}`. Unknown ids (`404`) are kept a minute only.
pub fn product() -> CachePolicy {
    tenant_scoped("1h")
        .label(PRODUCT)
        .ignore_query()
        .status_ttl(axum::http::StatusCode::NOT_FOUND, "1m")
        .tag("product:{tenant}:{id}")
        .downstream_cache_control("public, max-age=60")
        .build()
        .expect("the product policy is made of valid constants")
}

/// `GET /api/v1/categories`.
pub fn categories() -> CachePolicy {
    tenant_scoped("2h")
        .label(CATEGORIES)
        .ignore_query()
        .tag("categories:{tenant}")
        .downstream_cache_control("public, no-cache")
        .build()
        .expect("the categories policy is made of valid constants")
}

/// The tenant's categories as data, read through
/// [`Cache::get_or_insert_with`](cache_core::Cache::get_or_insert_with)
/// under the key `{tenant}`: kept 2h, tagged `categories:{tenant}` like the
/// categories' responses, so that one invalidation drops both.
pub fn categories_data(tenant: &str) -> DataPolicy {
    DataPolicy::builder()
        .namespace("categories")
        .ttl("2h")
        .tag(format!("categories:{tenant}"))
        .build()
        .expect("the categories data policy is made of valid constants")
}

/// A policy keyed by tenant, in the storefront's namespace.
fn tenant_scoped(ttl: &str) -> CachePolicyBuilder {
    CachePolicy::builder().namespace("storefront").ttl(ttl).tenant_header(TENANT_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_builds() {
        assert_eq!(product_list().ttl().as_secs(), 300);
        assert_eq!(product().ttl().as_secs(), 3600);
        assert_eq!(categories().ttl().as_secs(), 7200);
        assert_eq!(categories_data("acme").ttl().as_secs(), 7200);
        assert_eq!(categories_data("acme").tags(), ["categories:acme"]);
        assert_eq!(
            [product_list().label(), product().label(), categories().label()],
            [PRODUCTS, PRODUCT, CATEGORIES]
        );
    }
}
