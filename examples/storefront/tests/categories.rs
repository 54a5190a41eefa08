//! The categories through the data cache: when the response cache misses,
//! the category list still comes from the cache, not from the database,
//! until an update drops it.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use storefront::{App, CATEGORIES, Config, policies};
use tokio::net::TcpListener;

/// A storefront on a free port: its address and what tests look into.
async fn start() -> (String, App, Client) {
    let config = Config {
        products_per_tenant: 200,
        ..Config::default()
    };
    let app = storefront::app(&config).expect("the app builds");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    tokio::spawn(storefront::serve(listener, app.router.clone()));
    (base, app, Client::new())
}

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
async fn drop_category_responses(app: &App) {
    let prefix = policies::categories().key().prefix(Some("acme"), CATEGORIES);
    let dropped = app.cache.invalidator().prefix(&prefix).await.expect("the moka store answers");
    assert_eq!(dropped, 1);
}

#[tokio::test]
async fn categories_come_from_the_data_cache_when_the_response_is_gone() {
    let (base, app, client) = start().await;
    let before = app.catalog.queries();
    let (first, categories) = get(&client, &base, CATEGORIES).await;
    assert_eq!(first, "MISS");
    assert_eq!(app.catalog.queries(), before + 1);

    drop_category_responses(&app).await;
    let (second, again) = get(&client, &base, CATEGORIES).await;
    assert_eq!(second, "MISS", "the response was dropped");
    assert_eq!(again, categories);
    assert_eq!(app.catalog.queries(), before + 1, "the categories came from the data cache");

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
    let queries = app.catalog.queries();
    let (third, after) = get(&client, &base, CATEGORIES).await;
    assert_eq!(third, "MISS");
    assert_eq!(app.catalog.queries(), queries + 1, "the data was dropped too");
    assert_ne!(after, categories);

    drop_category_responses(&app).await;
    let (_, cached) = get(&client, &base, CATEGORIES).await;
    assert_eq!(cached, after);
    assert_eq!(app.catalog.queries(), queries + 1);
}
