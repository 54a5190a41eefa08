//! The router: routes, their cache layers, and the router-wide middleware.

use axum::http::{HeaderMap, header};
use axum::routing::get;
use axum::{Extension, Router};
use cache_axum::{Cache, CacheLayer, Policies};
use catalog::Catalog;

use crate::middleware::catch_panic;
use crate::{handlers, policies};

/// Route pattern of the product lists.
pub const PRODUCTS: &str = "/api/v1/products";
/// Route pattern of one product.
pub const PRODUCT: &str = "/api/v1/products/{id}";
/// Route pattern of the categories.
pub const CATEGORIES: &str = "/api/v1/categories";

/// Every route, each behind exactly one cache layer with a policy for it.
///
/// `/api/v1/products/{id}` carries its own layer (`MethodRouter::layer`),
/// so its `PUT` passes that layer too; the router-wide layer holds the
/// policies of the other routes by pattern and lets every other request
/// (this one included) through untouched, because its default is none.
///
/// With a TTL table (`--config cache.toml`), one layer holding the table
/// replaces both: it selects each route's policy by the matched pattern.
pub(crate) fn router(catalog: Catalog, cache: &Cache, cache_table: Option<Policies>) -> Router {
    let product = get(handlers::product).put(handlers::update_product);
    let (product, table) = match cache_table {
        Some(cache_table) => (product, CacheLayer::new(cache, cache_table)),
        None => (
            product.layer(CacheLayer::new(cache, policies::product())),
            CacheLayer::new(cache, Policies::new(None))
                .route(PRODUCTS, policies::product_list())
                .route(CATEGORIES, policies::categories()),
        ),
    };
    Router::new()
        .route("/", get(index))
        .route(PRODUCTS, get(handlers::list_products))
        .route(PRODUCT, product)
        .route(CATEGORIES, get(handlers::categories))
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .fallback(handlers::not_found)
        // The categories handler reads through the same cache's data API.
        .layer(Extension(cache.clone()))
        .layer(table)
        .layer(catch_panic())
        .with_state(catalog)
}

/// `GET /`: what there is to try, with this server's address filled in.
async fn index(headers: HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:3000");
    index_page(host)
}

/// The text of `GET /`, with `host` in its example URLs.
pub fn index_page(host: &str) -> String {
    INDEX.replace("HOST", host)
}

const INDEX: &str = "storefront: a multi-tenant catalog API behind an HTTP response cache

Tenants: acme, globex, initech (header X-Tenant-ID, required on /api/)

  GET  /api/v1/products?category=&page=&limit=&search=&sort=   (sort: id, name, -name, price, -price)
  GET  /api/v1/products/{id}
  PUT  /api/v1/products/{id}   JSON body: any of name, category, price_cents
  GET  /api/v1/categories

Try (and watch the x-cache and cache-status headers):

  curl -i -H 'X-Tenant-ID: acme' http://HOST/api/v1/products/42
  curl -i -H 'X-Tenant-ID: acme' 'http://HOST/api/v1/products?category=books&sort=-price&limit=5'
  curl -i -X PUT -H 'X-Tenant-ID: acme' -H 'content-type: application/json' \\
       -d '{\"price_cents\": 1999}' http://HOST/api/v1/products/42
  curl -i -H 'X-Tenant-ID: acme' http://HOST/api/v1/categories
";
