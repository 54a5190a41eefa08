//! The categories through the data cache, as in the axum storefront: when
//! the response cache misses, the category list still comes from the cache,
//! not from the database, until an update drops it.

mod common;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use storefront::{CATEGORIES, policies};
use storefront_actix::Config;

/// `GET path` for `acme`: `X-Cache` and the JSON body.
async fn get(client: &Client, base: &str, path: &str) -> (String, Value) {
    let response = client
        .get(format!("{base}{path}"))
        .header("x-tenant-id", "acme")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let x_cache = response.headers()["x-cache"].to_str().expect("ASCII").to_owned();
    (x_cache, response.json().await.expect("a JSON body"))
}

/// Drops acme's cached category responses only, not the data behind them.
async fn drop_category_responses(running: &common::Running) {
    let prefix = policies::categories().key().prefix(Some("acme"), CATEGORIES);
    let dropped = running.cache.invalidator().prefix(&prefix).await.expect("the moka store answers");
    assert_eq!(dropped, 1);
}

#[actix_web::test]
async fn categories_come_from_the_data_cache_when_the_response_is_gone() {
    let config = Config {
        products_per_tenant: 200,
        ..Config::default()
    };
    let running = common::start(config, 2);
    let (base, client) = (running.base.clone(), Client::new());
    let before = running.catalog.queries();
    let (first, categories) = get(&client, &base, CATEGORIES).await;
    assert_eq!(first, "MISS");
    assert_eq!(running.catalog.queries(), before + 1);

    drop_category_responses(&running).await;
    let (second, again) = get(&client, &base, CATEGORIES).await;
    assert_eq!(second, "MISS", "the response was dropped");
    assert_eq!(again, categories);
    assert_eq!(running.catalog.queries(), before + 1, "the categories came from the data cache");

    // Moving a product to another category drops the data with the
    // responses (tag `categories:acme`): the counts are read again.
    let (_, product) = get(&client, &base, "/api/v1/products/5").await;
    let target = if product["category"] == "books" { "games" } else { "books" };
    let moved = client
        .put(format!("{base}/api/v1/products/5"))
        .header("x-tenant-id", "acme")
        .json(&json!({ "category": target }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(moved.status(), StatusCode::OK);
    let queries = running.catalog.queries();
    let (third, after) = get(&client, &base, CATEGORIES).await;
    assert_eq!(third, "MISS");
    assert_eq!(running.catalog.queries(), queries + 1, "the data was dropped too");
    assert_ne!(after, categories);
}
