//! The actix-web storefront's `GET /metrics` through a real TCP socket,
//! after a few API requests. The only test of this binary, which holds the
//! process's Prometheus recorder: the values are exact.

mod common;

use reqwest::{Client, StatusCode};
use storefront_actix::Config;

#[actix_web::test]
async fn metrics_show_requests_by_route_and_outcome() {
    let config = Config {
        products_per_tenant: 50,
        ..Config::default()
    };
    let running = common::start(config, 1);
    let client = Client::new();
    let base = running.base.clone();
    let get = |tenant: &'static str, path: &'static str| {
        let request = client.get(format!("{base}{path}")).header("x-tenant-id", tenant);
        async move {
            let response = request.send().await.expect("the server answers");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.headers()["x-cache"].to_str().expect("ASCII").to_owned()
        }
    };

    assert_eq!(get("acme", "/api/v1/products/7").await, "MISS");
    assert_eq!(get("acme", "/api/v1/products/7").await, "HIT");
    assert_eq!(get("acme", "/api/v1/categories").await, "MISS");
    assert_eq!(get("acme", "/api/v1/categories").await, "HIT");
    assert_eq!(get("initech", "/api/v1/categories").await, "MISS");
    let put = client
        .put(format!("{base}/api/v1/products/7"))
        .header("x-tenant-id", "acme")
        .header("content-type", "application/json")
        .body(r#"{"price_cents": 1234}"#)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(put.headers()["x-cache"], "BYPASS");
    assert_eq!(get("acme", "/api/v1/products/7").await, "MISS", "the update dropped it");

    let response = client.get(format!("{base}/metrics")).send().await.expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], storefront::metrics::CONTENT_TYPE);
    assert!(response.headers().get("x-cache").is_none(), "not behind the cache");
    let text = response.text().await.expect("a text body");
    let product = "/api/v1/products/{id}";
    let categories = "/api/v1/categories";
    let expected = [
        "# TYPE http_cache_requests_total counter".to_owned(),
        format!(r#"http_cache_requests_total{{route="{product}",outcome="miss"}} 2"#),
        format!(r#"http_cache_requests_total{{route="{product}",outcome="hit"}} 1"#),
        format!(r#"http_cache_requests_total{{route="{product}",outcome="bypass"}} 1"#),
        format!(r#"http_cache_requests_total{{route="{categories}",outcome="miss"}} 2"#),
        format!(r#"http_cache_requests_total{{route="{categories}",outcome="hit"}} 1"#),
        // The handler dropped `product:acme:7` and `products:acme`, then
        // the engine the route's tag and the PUT's URI again: the product.
        r#"http_cache_invalidations_total{kind="tag"} 4"#.to_owned(),
        r#"http_cache_invalidated_entries_total{kind="tag"} 1"#.to_owned(),
        // Two tenants' category responses and the category data behind
        // them (the data cache shares the store), and acme's product
        // fetched again.
        r#"http_cache_store_entries{store="moka"} 5"#.to_owned(),
    ];
    for line in &expected {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
    for secret in ["acme", "initech", "/api/v1/products/7"] {
        assert!(!text.contains(secret), "{secret:?} is in a label:\n{text}");
    }
}
