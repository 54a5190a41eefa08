//! The actix-web storefront through a real TCP socket: caching,
//! invalidation, tenants, errors.
//!
//! `api_with_table.rs` runs these tests again with the policies of
//! `examples/storefront/cache.toml` instead of the in-code ones.

mod common;

use std::ops::Deref;

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use storefront_actix::Config;

/// The TTL table the storefront runs with, if any: none, the in-code
/// policies (`api_with_table.rs` includes this file with its own).
#[allow(dead_code)]
const CACHE_TABLE: Option<&str> = None;

/// A running storefront with a client for it.
struct Server {
    running: common::Running,
    client: Client,
}

impl Deref for Server {
    type Target = common::Running;
    fn deref(&self) -> &common::Running {
        &self.running
    }
}

impl Server {
    fn start() -> Server {
        let config = Config {
            products_per_tenant: 200,
            cache_table: crate::CACHE_TABLE.map(std::path::PathBuf::from),
            ..Config::default()
        };
        Server {
            running: common::start(config, 2),
            client: Client::new(),
        }
    }

    async fn get(&self, tenant: &str, path: &str) -> Response {
        let request = self.client.get(format!("{}{path}", self.base)).header("x-tenant-id", tenant);
        request.send().await.expect("the server answers")
    }

    async fn get_without_tenant(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the server answers")
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

fn header<'r>(response: &'r Response, name: &str) -> &'r str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("none")
}

fn x_cache(response: &Response) -> &str {
    header(response, "x-cache")
}

/// The x-cache header and the JSON body of a response with `status`.
async fn expect_json(response: Response, status: StatusCode) -> (String, Value) {
    assert_eq!(response.status(), status);
    assert_eq!(header(&response, "content-type"), "application/json");
    let x_cache = x_cache(&response).to_owned();
    (x_cache, response.json().await.expect("a JSON body"))
}

#[actix_web::test]
async fn second_get_is_a_hit_that_skips_the_database() {
    let server = Server::start();
    let before = server.catalog.queries();
    let (first, body) = expect_json(server.get("acme", "/api/v1/products/42").await, StatusCode::OK).await;
    assert_eq!((first.as_str(), body["id"].as_u64()), ("MISS", Some(42)));
    assert_eq!(server.catalog.queries(), before + 1);
    let (second, again) = expect_json(server.get("acme", "/api/v1/products/42").await, StatusCode::OK).await;
    assert_eq!(second, "HIT");
    assert_eq!(again, body);
    assert_eq!(server.catalog.queries(), before + 1);
}

#[actix_web::test]
async fn responses_vary_by_tenant_and_carry_the_policy_headers() {
    let server = Server::start();
    let product = server.get("acme", "/api/v1/products/1").await;
    assert_eq!(product.status(), StatusCode::OK);
    assert!(header(&product, "vary").to_ascii_lowercase().contains("x-tenant-id"));
    assert_eq!(header(&product, "cache-control"), "public, max-age=60");
    assert!(
        header(&product, "cache-status").starts_with("storefront"),
        "{:?}",
        product.headers()
    );
    let list = server.get("acme", "/api/v1/products").await;
    assert!(header(&list, "vary").to_ascii_lowercase().contains("x-tenant-id"));
    assert_eq!(header(&list, "cache-control"), "public, no-cache");
    let categories = server.get("acme", "/api/v1/categories").await;
    assert!(header(&categories, "vary").to_ascii_lowercase().contains("x-tenant-id"));
}

#[actix_web::test]
async fn put_changes_the_price_and_invalidates_product_and_lists() {
    let server = Server::start();
    let list = "/api/v1/products?sort=id&limit=5";
    server.get("acme", "/api/v1/products/3").await;
    let (_, old_list) = expect_json(server.get("acme", list).await, StatusCode::OK).await;
    assert_eq!(x_cache(&server.get("acme", list).await), "HIT");
    assert_eq!(x_cache(&server.get("acme", "/api/v1/products/3").await), "HIT");

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
    assert_eq!(x_cache(&server.get("acme", list).await), "HIT");
}

#[actix_web::test]
async fn an_update_leaves_other_tenants_cached() {
    let server = Server::start();
    server.get("globex", "/api/v1/products/3").await;
    server.get("globex", "/api/v1/products").await;
    expect_json(
        server.put("acme", "/api/v1/products/3", json!({ "name": "Renamed" })).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(x_cache(&server.get("globex", "/api/v1/products/3").await), "HIT");
    assert_eq!(x_cache(&server.get("globex", "/api/v1/products").await), "HIT");
}

#[actix_web::test]
async fn invalid_updates_are_json_errors_and_change_nothing() {
    let server = Server::start();
    let (_, error) = expect_json(
        server.put("acme", "/api/v1/products/3", json!({ "price_cents": -1 })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("price_cents")), "{error}");
    let (_, error) = expect_json(
        server.put("acme", "/api/v1/products/3", json!({ "colour": "red" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("colour")), "{error}");
    let (_, error) = expect_json(
        server.put("acme", "/api/v1/products/9999", json!({ "price_cents": 1 })).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(error["error"].is_string());
    let malformed = server
        .client
        .put(format!("{}/api/v1/products/3", server.base))
        .header("x-tenant-id", "acme")
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("the server answers");
    expect_json(malformed, StatusCode::BAD_REQUEST).await;
    let not_json = server
        .client
        .put(format!("{}/api/v1/products/3", server.base))
        .header("x-tenant-id", "acme")
        .body("{}")
        .send()
        .await
        .expect("the server answers");
    expect_json(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let (_, product) = expect_json(server.get("acme", "/api/v1/products/3").await, StatusCode::OK).await;
    assert_ne!(product["price_cents"], -1);
}

#[actix_web::test]
async fn requests_without_a_known_tenant_are_rejected() {
    let server = Server::start();
    let (_, error) = expect_json(server.get_without_tenant("/api/v1/products/1").await, StatusCode::BAD_REQUEST).await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("X-Tenant-ID")), "{error}");
    expect_json(server.get("umbrella", "/api/v1/categories").await, StatusCode::BAD_REQUEST).await;
    expect_json(server.get_without_tenant("/api/v1/products").await, StatusCode::BAD_REQUEST).await;
    let put = server
        .client
        .put(format!("{}/api/v1/products/1", server.base))
        .json(&json!({ "price_cents": 1 }))
        .send()
        .await
        .expect("the server answers");
    expect_json(put, StatusCode::BAD_REQUEST).await;
    // A rejected request is not stored: the next one is rejected again, not served.
    let again = server.get_without_tenant("/api/v1/products/1").await;
    assert_eq!((again.status(), x_cache(&again)), (StatusCode::BAD_REQUEST, "MISS"));
}

#[actix_web::test]
async fn tenants_never_share_a_cached_response() {
    let server = Server::start();
    let (_, acme) = expect_json(server.get("acme", "/api/v1/products/7").await, StatusCode::OK).await;
    let (globex_cache, globex) = expect_json(server.get("globex", "/api/v1/products/7").await, StatusCode::OK).await;
    assert_eq!(globex_cache, "MISS");
    assert_eq!((acme["tenant"].as_str(), globex["tenant"].as_str()), (Some("acme"), Some("globex")));
    assert_ne!(acme, globex);
}

#[actix_web::test]
async fn lists_are_keyed_by_their_parameters_and_bad_ones_are_400() {
    let server = Server::start();
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
    let (_, error) = expect_json(server.get("acme", "/api/v1/products?page=first").await, StatusCode::BAD_REQUEST).await;
    assert!(error["error"].is_string());
}

#[actix_web::test]
async fn product_ids_must_be_numbers_and_unknown_ones_are_404() {
    let server = Server::start();
    let (_, error) = expect_json(server.get("acme", "/api/v1/products/abc").await, StatusCode::BAD_REQUEST).await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("whole number")), "{error}");
    let (first, _) = expect_json(server.get("acme", "/api/v1/products/9999").await, StatusCode::NOT_FOUND).await;
    assert_eq!(first, "MISS");
    let (second, _) = expect_json(server.get("acme", "/api/v1/products/9999").await, StatusCode::NOT_FOUND).await;
    assert_eq!(second, "HIT", "404s are kept a minute");
}

#[actix_web::test]
async fn handler_tags_let_one_category_be_invalidated() {
    let server = Server::start();
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

#[actix_web::test]
async fn changing_a_category_refreshes_the_category_counts() {
    let server = Server::start();
    let (_, before) = expect_json(server.get("acme", "/api/v1/categories").await, StatusCode::OK).await;
    assert_eq!(x_cache(&server.get("acme", "/api/v1/categories").await), "HIT");
    let (_, product) = expect_json(server.get("acme", "/api/v1/products/5").await, StatusCode::OK).await;
    let target = if product["category"] == "books" { "games" } else { "books" };
    let moved = server.put("acme", "/api/v1/products/5", json!({ "category": target })).await;
    expect_json(moved, StatusCode::OK).await;
    let (x_cache, after) = expect_json(server.get("acme", "/api/v1/categories").await, StatusCode::OK).await;
    assert_eq!(x_cache, "MISS");
    assert_ne!(after, before);
}

#[actix_web::test]
async fn a_price_change_keeps_the_category_counts() {
    let server = Server::start();
    server.get("acme", "/api/v1/categories").await;
    expect_json(
        server.put("acme", "/api/v1/products/5", json!({ "price_cents": 1 })).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(x_cache(&server.get("acme", "/api/v1/categories").await), "HIT");
}

#[actix_web::test]
async fn index_and_unknown_routes() {
    let server = Server::start();
    let index = server.get_without_tenant("/").await;
    assert_eq!(index.status(), StatusCode::OK);
    let text = index.text().await.expect("a text body");
    assert!(text.contains("/api/v1/products/{id}"));
    assert!(
        text.contains(server.base.trim_start_matches("http://")),
        "the index names this server"
    );
    let (_, error) = expect_json(server.get("acme", "/api/v2/nothing").await, StatusCode::NOT_FOUND).await;
    assert!(error["error"].is_string());
    let (_, error) = expect_json(server.get("acme", "/api/v1/nothing").await, StatusCode::NOT_FOUND).await;
    assert!(error["error"].is_string());
    let delete = server
        .client
        .delete(format!("{}/api/v1/products/1", server.base))
        .header("x-tenant-id", "acme")
        .send()
        .await
        .expect("the server answers");
    expect_json(delete, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[actix_web::test]
async fn head_is_answered_like_get() {
    let server = Server::start();
    let url = format!("{}/api/v1/products/2", server.base);
    let head = server
        .client
        .head(&url)
        .header("x-tenant-id", "acme")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(x_cache(&server.get("acme", "/api/v1/products/2").await), "HIT");
    let index = server
        .client
        .head(format!("{}/", server.base))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(index.status(), StatusCode::OK);
}

/// Every spelling of a product's URL that the handler answers for that
/// product (`042`, `%34%32`, `+42`) is dropped by the product's update:
/// `%34%32` shares the key of `42`, and the handler tags the others from
/// the id it parsed.
#[actix_web::test]
async fn an_update_reaches_every_spelling_of_the_product_url() {
    let server = Server::start();
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
