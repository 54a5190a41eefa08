//! The storefront's `GET /metrics` through a real TCP socket, after a few
//! API requests. The only test of this binary, which holds the process's
//! Prometheus recorder: the values are exact.

use reqwest::{Client, StatusCode};
use serde_json::json;
use storefront::{App, Config};
use tokio::net::TcpListener;

#[tokio::test]
async fn metrics_show_requests_by_route_and_outcome() {
    let config = Config {
        products_per_tenant: 50,
        ..Config::default()
    };
    let App { router, catalog, .. } = storefront::app(&config).expect("the app builds");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    tokio::spawn(storefront::serve(listener, router));
    let client = Client::new();
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
    assert_eq!(get("globex", "/api/v1/products/7").await, "MISS");
    assert_eq!(get("acme", "/api/v1/products?limit=5").await, "MISS");
    assert_eq!(get("acme", "/api/v1/products?limit=5").await, "HIT");
    let put = client
        .put(format!("{base}/api/v1/products/7"))
        .header("x-tenant-id", "acme")
        .json(&json!({"price_cents": 1234}))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(put.headers()["x-cache"], "BYPASS");
    assert_eq!(get("acme", "/api/v1/products/7").await, "MISS", "the update dropped it");
    assert_eq!(get("acme", "/api/v1/products?limit=5").await, "MISS", "and the lists");
    let queries = catalog.queries();

    let response = client.get(format!("{base}/metrics")).send().await.expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], storefront::metrics::CONTENT_TYPE);
    assert!(response.headers().get("x-cache").is_none(), "not behind the cache");
    let text = response.text().await.expect("a text body");
    assert_eq!(catalog.queries(), queries, "a scrape reads no data");
    let product = "/api/v1/products/{id}";
    let list = "/api/v1/products";
    let expected = [
        "# TYPE http_cache_requests_total counter".to_owned(),
        format!(r#"http_cache_requests_total{{route="{product}",outcome="miss"}} 3"#),
        format!(r#"http_cache_requests_total{{route="{product}",outcome="hit"}} 1"#),
        format!(r#"http_cache_requests_total{{route="{product}",outcome="bypass"}} 1"#),
        format!(r#"http_cache_requests_total{{route="{list}",outcome="miss"}} 2"#),
        format!(r#"http_cache_requests_total{{route="{list}",outcome="hit"}} 1"#),
        // The handler dropped `product:acme:7` and `products:acme` (the
        // product and the list), then the engine the route's tag and the
        // tag of the PUT's URI again (nothing left).
        r#"http_cache_invalidations_total{kind="tag"} 4"#.to_owned(),
        r#"http_cache_invalidated_entries_total{kind="tag"} 2"#.to_owned(),
        // globex's product, and acme's product and list fetched again.
        r#"http_cache_store_entries{store="moka"} 3"#.to_owned(),
        r#"http_cache_store_operation_seconds_count{store="moka",operation="put"} 5"#.to_owned(),
        "# TYPE http_cache_store_bytes gauge".to_owned(),
    ];
    for line in &expected {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
    for secret in ["acme", "globex", "/api/v1/products/7", "limit"] {
        assert!(!text.contains(secret), "{secret:?} is in a label:\n{text}");
    }
}
