//! Warming the cache at start: the most requested products and lists of
//! every tenant, through the router, before traffic arrives.

use axum::body::Body;
use axum::http::Request;
use cache_tower::warm::{WarmReport, Warmed, warm};
use catalog::TENANTS;

use crate::{App, TENANT_HEADER};

/// Requests [`warm_up`] sends: for every tenant, the first `products`
/// products (the most requested), the first pages of the product list, and
/// the category tree.
pub fn warm_requests(app: &App, products: usize) -> Vec<Request<Body>> {
    let ids = app.catalog.popular_product_ids(products);
    let mut paths = Vec::new();
    for tenant in TENANTS {
        for id in &ids {
            paths.push((tenant, format!("/api/v1/products/{id}")));
        }
        for page in 1..=3 {
            paths.push((tenant, format!("/api/v1/products?page={page}")));
        }
        paths.push((tenant, "/api/v1/categories".to_owned()));
    }
    paths
        .into_iter()
        .map(|(tenant, path)| {
            Request::get(path)
                .header(TENANT_HEADER, tenant)
                .body(Body::empty())
                .expect("a path and a tenant id make a valid request")
        })
        .collect()
}

/// Sends [`warm_requests`] through the app's router, 16 at a time, calling
/// `progress` as each completes.
pub async fn warm_up(app: &App, products: usize, progress: impl FnMut(Warmed)) -> WarmReport {
    warm(app.router.clone(), warm_requests(app, products), 16, progress).await
}
