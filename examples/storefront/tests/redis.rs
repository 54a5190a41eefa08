//! Two storefronts sharing one Redis, through real TCP sockets: an entry one
//! stores is a hit on the other, and an update on one is a miss on the other.
//!
//! Each test starts its own `redis-server` on a free port. Without
//! `redis-server` installed these tests fail: they never pass by skipping.

use std::time::{Duration, Instant};

use cache_tests::redis_server::{RedisServer, free_port};
use catalog::Catalog;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use storefront::{CacheStore, Config, DEFAULT_REDIS_PREFIX, RedisTarget, StoreConfig};
use tokio::net::TcpListener;

fn redis_url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// One storefront instance serving on a free port.
struct Storefront {
    base: String,
    store: CacheStore,
    client: Client,
}

impl Storefront {
    /// A storefront over `catalog` (the database instances share), caching
    /// in the tiered store over the Redis at `url`, built as the binary
    /// builds it for `--redis URL`.
    async fn start(catalog: &Catalog, url: String) -> Storefront {
        let config = Config {
            store: StoreConfig::Redis {
                target: RedisTarget::Server(url),
                prefix: DEFAULT_REDIS_PREFIX.to_owned(),
                l1: true,
            },
            ..Config::default()
        };
        let store = storefront::store_from(&config).expect("the store builds");
        let cache = storefront::cache_on(store.clone()).expect("the cache builds");
        let router = storefront::app_with_cache(catalog.clone(), cache);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("a bound address"));
        tokio::spawn(storefront::serve(listener, router));
        Storefront {
            base,
            store,
            client: Client::new(),
        }
    }

    /// Waits until the store is connected and subscribed to invalidations.
    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.store.is_ready() {
            assert!(
                Instant::now() < deadline,
                "the store did not connect to Redis within 10 s: {:?}",
                self.store
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn get(&self, path: &str) -> Response {
        let request = self.client.get(format!("{}{path}", self.base)).header("x-tenant-id", "acme");
        request.send().await.expect("the server answers")
    }

    async fn put(&self, path: &str, body: Value) -> Response {
        let request = self
            .client
            .put(format!("{}{path}", self.base))
            .header("x-tenant-id", "acme")
            .json(&body);
        request.send().await.expect("the server answers")
    }
}

/// The `x-cache` header and the JSON body of a `200`.
async fn ok_json(response: Response) -> (String, Value) {
    assert_eq!(response.status(), StatusCode::OK);
    let x_cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    (x_cache, response.json().await.expect("a JSON body"))
}

const PRODUCT: &str = "/api/v1/products/42";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_storefronts_share_entries_and_invalidations_through_redis() {
    let redis = RedisServer::start();
    let catalog = Catalog::open(200).expect("the catalog opens");
    let a = Storefront::start(&catalog, redis_url(redis.port())).await;
    let b = Storefront::start(&catalog, redis_url(redis.port())).await;
    a.ready().await;
    b.ready().await;

    let before = catalog.queries();
    let (on_a, product) = ok_json(a.get(PRODUCT).await).await;
    assert_eq!((on_a.as_str(), product["id"].as_u64()), ("MISS", Some(42)));
    let (on_b, from_redis) = ok_json(b.get(PRODUCT).await).await;
    assert_eq!(on_b, "HIT", "B finds what A stored in Redis");
    assert_eq!(from_redis, product);
    assert_eq!(catalog.queries(), before + 1, "only A's miss reached the database");

    let new_price = product["price_cents"].as_i64().expect("a price") + 1;
    let (_, updated) = ok_json(a.put(PRODUCT, json!({ "price_cents": new_price })).await).await;
    assert_eq!(updated["price_cents"], new_price);

    // B's L1 copy is dropped when A's invalidation arrives over pub/sub.
    let deadline = Instant::now() + Duration::from_millis(50);
    let (on_b, fresh) = loop {
        let (on_b, body) = ok_json(b.get(PRODUCT).await).await;
        if on_b == "MISS" {
            break (on_b, body);
        }
        assert!(
            Instant::now() < deadline,
            "B still answers {on_b} with {body} 50 ms after the update on A"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    assert_eq!((on_b.as_str(), &fresh["price_cents"]), ("MISS", &json!(new_price)));
    // And what B stored in Redis is a hit on A, whose own copy is gone too.
    let (on_a, again) = ok_json(a.get(PRODUCT).await).await;
    assert_eq!((on_a.as_str(), again), ("HIT", fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storefront_starts_without_redis_and_uses_it_once_it_answers() {
    let port = free_port();
    let catalog = Catalog::open(200).expect("the catalog opens");
    let storefront = Storefront::start(&catalog, redis_url(port)).await;
    let (_, product) = ok_json(storefront.get(PRODUCT).await).await;
    assert_eq!(product["id"], 42, "served from the database while Redis is down");
    assert!(!storefront.store.is_ready());

    let _redis = RedisServer::start_on(port, &[]);
    storefront.ready().await;
    let (first, _) = ok_json(storefront.get("/api/v1/products/43").await).await;
    assert_eq!(first, "MISS");
    let other = Storefront::start(&catalog, redis_url(port)).await;
    other.ready().await;
    let (on_other, _) = ok_json(other.get("/api/v1/products/43").await).await;
    assert_eq!(on_other, "HIT", "the first storefront stored its miss in Redis");
}
