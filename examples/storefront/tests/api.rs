//! The storefront through a real TCP socket: caching, invalidation, tenants.
//!
//! `api_with_table.rs` runs these tests again with the policies of
//! `cache.toml` instead of the in-code ones.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use storefront::{App, Config};
use tokio::net::TcpListener;

/// The TTL table the storefront runs with, if any: none, the in-code
/// policies (`api_with_table.rs` includes this file with its own).
#[allow(dead_code)]
const CACHE_TABLE: Option<&str> = None;

/// A storefront serving on a free port, with a client for it.
struct Server {
    base: String,
    app_catalog: catalog::Catalog,
    cache: cache_axum::Cache,
    client: Client,
}

impl Server {
    async fn start() -> Server {
        let config = Config {
            products_per_tenant: 200,
            cache_table: crate::CACHE_TABLE.map(std::path::PathBuf::from),
            ..Config::default()
        };
        let App { router, catalog, cache } = storefront::app(&config).expect("the app builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("a bound address"));
        tokio::spawn(storefront::serve(listener, router));
        Server {
            base,
            app_catalog: catalog,
            cache,
            client: Client::new(),
        }
    }

    async fn get(&self, tenant: &str, path: &str) -> Response {
        let request = self.client.get(format!("{}{path}", self.base)).header("x-tenant-id", tenant);
        request.send().await.expect("the server answers")
    }

    async fn put(&self, tenant: &str, path: &str, body: Value) -> Response {
        let request = self
            .client
            .put(format!("{}{path}", self.base))
            .header("x-tenant-id", tenant)
            .json(&body);
        request.send().await.expect("the server answers")
    }
}

fn x_cache(response: &Response) -> &str {
    response.headers().get("x-cache").and_then(|v| v.to_str().ok()).unwrap_or("none")
}

/// The x-cache header and the JSON body of a response with `status`.
async fn expect_json(response: Response, status: StatusCode) -> (String, Value) {
    assert_eq!(response.status(), status);
    let x_cache = x_cache(&response).to_owned();
    (x_cache, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn second_get_is_a_hit_that_skips_the_database() {
    let server = Server::start().await;
    let before = server.app_catalog.queries();
    let (first, body) = expect_json(server.get("acme", "/api/v1/products/42").await, StatusCode::OK).await;
    assert_eq!((first.as_str(), body["id"].as_u64()), ("MISS", Some(42)));
    assert_eq!(server.app_catalog.queries(), before + 1);
    let (second, again) = expect_json(server.get("acme", "/api/v1/products/42").await, StatusCode::OK).await;
    assert_eq!(second, "HIT");
    assert_eq!(again, body);
    assert_eq!(server.app_catalog.queries(), before + 1);
}

#[tokio::test]
async fn put_changes_the_price_and_invalidates_product_and_lists() {
    let server = Server::start().await;
    let list = "/api/v1/products?sort=id&limit=5";
    server.get("acme", "/api/v1/products/3").await;
    let (_, old_list) = expect_json(server.get("acme", list).await, StatusCode::OK).await;
    assert_eq!(x_cache(&server.get("acme", list).await), "HIT");

    let update = json!({ "price_cents": 12_345 });
    let (_, updated) = expect_json(server.put("acme", "/api/v1/products/3", update).await, StatusCode::OK).await;
    assert_eq!(updated["price_cents"], 12_345);

    let (first, product) = expect_json(server.get("acme", "/api/v1/products/3").await, StatusCode::OK).await;
    assert_eq!((first.as_str(), &product["price_cents"]), ("MISS", &json!(12_345)));
    assert_eq!(x_cache(&server.get("acme", "/api/v1/products/3").await), "HIT");
    let (list_cache, new_list) = expect_json(server.get("acme", list).await, StatusCode::OK).await;
    assert_eq!(list_cache, "MISS", "the tenant's lists are invalidated by the update");
    assert_ne!(new_list, old_list);
    assert_eq!(new_list["items"][2]["price_cents"], 12_345);
}

#[tokio::test]
async fn invalid_updates_are_json_errors_and_change_nothing() {
    let server = Server::start().await;
    let (_, error) = expect_json(
        server.put("acme", "/api/v1/products/3", json!({ "price_cents": -1 })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("price_cents")), "{error}");
    let (_, error) = expect_json(
        server.put("acme", "/api/v1/products/9999", json!({ "price_cents": 1 })).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(error["error"].is_string());
}

#[tokio::test]
async fn requests_without_a_known_tenant_are_rejected() {
    let server = Server::start().await;
    let missing = server
        .client
        .get(format!("{}/api/v1/products/1", server.base))
        .send()
        .await
        .expect("the server answers");
    let (_, error) = expect_json(missing, StatusCode::BAD_REQUEST).await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("X-Tenant-ID")), "{error}");
    expect_json(server.get("umbrella", "/api/v1/categories").await, StatusCode::BAD_REQUEST).await;
    // A rejected request is not stored: the next one is rejected again, not served.
    let again = server
        .client
        .get(format!("{}/api/v1/products/1", server.base))
        .send()
        .await
        .expect("the server answers");
    assert_eq!((again.status(), x_cache(&again)), (StatusCode::BAD_REQUEST, "MISS"));
}

#[tokio::test]
async fn tenants_never_share_a_cached_response() {
    let server = Server::start().await;
    let (_, acme) = expect_json(server.get("acme", "/api/v1/products/7").await, StatusCode::OK).await;
    let (globex_cache, globex) = expect_json(server.get("globex", "/api/v1/products/7").await, StatusCode::OK).await;
    assert_eq!(globex_cache, "MISS");
    assert_eq!((acme["tenant"].as_str(), globex["tenant"].as_str()), (Some("acme"), Some("globex")));
    assert_ne!(acme, globex);
}

#[tokio::test]
async fn lists_are_keyed_by_their_parameters_and_bad_ones_are_400() {
    let server = Server::start().await;
    let (_, books) = expect_json(server.get("acme", "/api/v1/products?category=books&limit=3").await, StatusCode::OK).await;
    assert!(
        books["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|p| p["category"] == "books"))
    );
    let tracking = server.get("acme", "/api/v1/products?limit=3&category=books&utm_source=mail").await;
    assert_eq!(x_cache(&tracking), "HIT", "parameters outside the key do not split the cache");
    let (_, error) = expect_json(server.get("acme", "/api/v1/products?sort=colour").await, StatusCode::BAD_REQUEST).await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("sort")), "{error}");
}

#[tokio::test]
async fn handler_tags_let_one_category_be_invalidated() {
    let server = Server::start().await;
    let (books, games) = ("/api/v1/products?category=books", "/api/v1/products?category=games");
    for path in [books, games, books, games] {
        server.get("acme", path).await;
    }
    let dropped = server
        .cache
        .invalidator()
        .tag("category:acme:books")
        .await
        .expect("the moka store answers");
    assert_eq!(dropped, 1);
    assert_eq!(x_cache(&server.get("acme", books).await), "MISS");
    assert_eq!(x_cache(&server.get("acme", games).await), "HIT");
}

#[tokio::test]
async fn changing_a_category_refreshes_the_category_counts() {
    let server = Server::start().await;
    let (_, before) = expect_json(server.get("acme", "/api/v1/categories").await, StatusCode::OK).await;
    let (_, product) = expect_json(server.get("acme", "/api/v1/products/5").await, StatusCode::OK).await;
    let target = if product["category"] == "books" { "games" } else { "books" };
    let moved = server.put("acme", "/api/v1/products/5", json!({ "category": target })).await;
    expect_json(moved, StatusCode::OK).await;
    let (x_cache, after) = expect_json(server.get("acme", "/api/v1/categories").await, StatusCode::OK).await;
    assert_eq!(x_cache, "MISS");
    assert_ne!(after, before);
}

#[tokio::test]
async fn index_and_unknown_routes() {
    let server = Server::start().await;
    let index = server
        .client
        .get(format!("{}/", server.base))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(index.status(), StatusCode::OK);
    assert!(index.text().await.expect("a text body").contains("/api/v1/products/{id}"));
    let (_, error) = expect_json(server.get("acme", "/api/v2/nothing").await, StatusCode::NOT_FOUND).await;
    assert!(error["error"].is_string());
}

/// Every spelling of a product's URL that the handler answers for that
/// product (`042`, `%34%32`, `+42`) is dropped by the product's update:
/// `%34%32` shares the key of `42`, and the handler tags the others from
/// the id it parsed.
#[tokio::test]
async fn an_update_reaches_every_spelling_of_the_product_url() {
    let server = Server::start().await;
    let aliases = [
        "/api/v1/products/42",
        "/api/v1/products/042",
        "/api/v1/products/%34%32",
        "/api/v1/products/+42",
    ];
    for path in aliases {
        let (_, body) = expect_json(server.get("acme", path).await, StatusCode::OK).await;
        assert_eq!(body["id"], 42, "{path}");
        assert_eq!(x_cache(&server.get("acme", path).await), "HIT", "{path}");
    }
    let update = json!({ "price_cents": 4_242 });
    expect_json(server.put("acme", "/api/v1/products/42", update).await, StatusCode::OK).await;
    // `%34%32` is `42` spelled with escapes: the same key, filled again
    // by the first request.
    for (path, want) in aliases.into_iter().zip(["MISS", "MISS", "HIT", "MISS"]) {
        let (x_cache, body) = expect_json(server.get("acme", path).await, StatusCode::OK).await;
        assert_eq!((x_cache.as_str(), &body["price_cents"]), (want, &json!(4_242)), "{path}");
    }
}
