//! Typed cache-aside (`Cache::get_or_insert_with`) on the shared stores:
//! one set of checks run against a Redis server, a Redis Cluster and the
//! tiered store, then what only a shared store shows: instances share
//! values, and a dead Redis degrades to loading.
//!
//! Each test starts its own `redis-server` on a free port. Without
//! `redis-server` installed these tests fail: they never pass by skipping.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use cache_core::{Cache, CachePolicy, Clock, DataPolicy, RedisStore, RouteMatch, Store, TieredStore, data::DATA_CONTENT_TYPE};
use cache_tests::redis_server::{RedisCluster, RedisServer};
use http::{Request, Response};

/// A value with some shape: category id → product ids.
type Tree = BTreeMap<String, Vec<u64>>;

fn tree(version: u64) -> Tree {
    [("books".to_owned(), vec![version, 2, 3]), ("ünïcode:/%".to_owned(), Vec::new())].into()
}

/// The policy of one tenant's categories.
fn policy(tenant: &str) -> DataPolicy {
    DataPolicy::builder()
        .namespace("categories")
        .ttl("10m")
        .tag(format!("categories:{tenant}"))
        .build()
        .expect("a valid policy")
}

/// Counts the loads, as a database counts queries.
#[derive(Default)]
struct Loads(AtomicUsize);

impl Loads {
    async fn load<T>(&self, value: T) -> Result<T, Infallible> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(value)
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The checks every shared store passes, on a cache over `store` (which
/// holds nothing yet) with a manual clock.
async fn conforms<S: Store + Clone>(store: &S) {
    let clock = Clock::manual();
    let cache = &Cache::builder().store(store.clone()).clock(clock.clone()).build().unwrap();
    let loads = Loads::default();
    let acme = policy("acme");

    // A miss loads and stores; a hit returns the same value without loading.
    assert_eq!(cache.get_or_insert_with("acme", &acme, || loads.load(tree(1))).await, Ok(tree(1)));
    assert_eq!(cache.get_or_insert_with("acme", &acme, || loads.load(tree(2))).await, Ok(tree(1)));
    assert_eq!(loads.count(), 1);

    // The value is an ordinary entry, marked as data, with the policy's tag.
    let stored = store.get(&acme.key("acme")).await.expect("the store answers").expect("an entry");
    assert_eq!(
        stored.headers.get(&http::header::CONTENT_TYPE).expect("a content type"),
        DATA_CONTENT_TYPE
    );
    assert_eq!(stored.tags, ["categories:acme"]);

    // Expiry follows the cache's clock.
    clock.advance(Duration::from_secs(601));
    assert_eq!(cache.get_or_insert_with("acme", &acme, || loads.load(tree(3))).await, Ok(tree(3)));
    assert_eq!(loads.count(), 2);

    // One tag drops the value and a response that depends on the same data.
    let http = CachePolicy::builder()
        .ttl("10m")
        .tag("categories:{tenant}")
        .tenant_header("x-tenant-id")
        .build()
        .unwrap();
    assert_eq!(serve(cache, &http).await, "MISS");
    assert_eq!(serve(cache, &http).await, "HIT");
    assert_eq!(cache.invalidator().tag("categories:acme").await.expect("the store answers"), 2);
    assert_eq!(serve(cache, &http).await, "MISS");
    assert_eq!(cache.get_or_insert_with("acme", &acme, || loads.load(tree(4))).await, Ok(tree(4)));
    assert_eq!(loads.count(), 3);

    // One key.
    assert!(cache.invalidate_data("acme", &acme).await.expect("the store answers"));
    assert_eq!(cache.get_or_insert_with("acme", &acme, || loads.load(tree(5))).await, Ok(tree(5)));
    assert_eq!(loads.count(), 4);

    // A value of another type (an older version of the application) is a
    // miss, and overwritten.
    let renamed: Vec<String> = vec!["books".to_owned()];
    assert_eq!(
        cache.get_or_insert_with("acme", &acme, || loads.load(renamed.clone())).await,
        Ok(renamed.clone())
    );
    assert_eq!(
        cache.get_or_insert_with("acme", &acme, || loads.load(Vec::new())).await,
        Ok(renamed)
    );
    assert_eq!(loads.count(), 5);

    // An error is returned and not stored.
    let other = policy("acme");
    let failed = cache
        .get_or_insert_with("errors", &other, || async { Err::<Tree, _>("down") })
        .await;
    assert_eq!(failed, Err("down"));
    assert_eq!(
        cache.get_or_insert_with("errors", &other, || loads.load(tree(6))).await,
        Ok(tree(6))
    );
    assert_eq!(loads.count(), 6);

    // Concurrent callers of a cold key load once.
    let slow = || async {
        loads.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, Infallible>(tree(7))
    };
    let callers = (0..50).map(|_| cache.get_or_insert_with("crowd", &acme, slow));
    let values = futures_util::future::join_all(callers).await;
    assert!(values.iter().all(|v| *v == Ok(tree(7))));
    assert_eq!(loads.count(), 7);
}

/// `GET /categories` for tenant `acme` through the cache; its `X-Cache`.
async fn serve(cache: &Cache, policy: &CachePolicy) -> String {
    let request = Request::get("/categories").header("x-tenant-id", "acme").body(()).unwrap();
    let origin = |_req| async { Ok::<_, Infallible>(Response::new(String::from("[\"books\"]"))) };
    let response = cache.serve(policy, &RouteMatch::default(), request, origin).await.unwrap();
    response.headers()["x-cache"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn data_on_a_redis_store() {
    let server = RedisServer::start();
    let store = RedisStore::builder(server.url()).prefix("app:").connect().await.expect("connects");
    conforms(&store).await;
}

#[tokio::test]
async fn data_on_a_redis_cluster_store() {
    let cluster = RedisCluster::start();
    let store = RedisStore::cluster_builder(cluster.urls())
        .prefix("app:")
        .connect()
        .await
        .expect("connects");
    conforms(&store).await;
}

#[tokio::test]
async fn data_on_a_tiered_store() {
    let server = RedisServer::start();
    let l2 = RedisStore::builder(server.url()).connect().await.expect("connects");
    let store = TieredStore::builder(l2).build().expect("a runtime");
    conforms(&store).await;
}

/// What one instance loads, another reads from Redis; what one invalidates,
/// the other loads again.
#[tokio::test]
async fn instances_share_values_through_redis() {
    let server = RedisServer::start();
    let connect = || async { RedisStore::builder(server.url()).prefix("app:").connect().await.expect("connects") };
    let (one, two) = (Cache::new(connect().await), Cache::new(connect().await));
    let loads = Loads::default();
    let acme = policy("acme");
    assert_eq!(one.get_or_insert_with("acme", &acme, || loads.load(tree(1))).await, Ok(tree(1)));
    assert_eq!(two.get_or_insert_with("acme", &acme, || loads.load(tree(2))).await, Ok(tree(1)));
    assert_eq!(loads.count(), 1, "the second instance read the first's value");
    two.invalidator().tag("categories:acme").await.expect("Redis answers");
    assert_eq!(one.get_or_insert_with("acme", &acme, || loads.load(tree(3))).await, Ok(tree(3)));
    assert_eq!(loads.count(), 2);
}

/// With Redis gone every call loads, and none fails.
#[tokio::test]
async fn a_dead_redis_degrades_to_loading() {
    let mut server = RedisServer::start();
    let store = RedisStore::builder(server.url()).connect().await.expect("connects");
    let cache = Cache::new(store);
    let loads = Loads::default();
    let acme = policy("acme");
    cache.get_or_insert_with("acme", &acme, || loads.load(tree(1))).await.unwrap();
    server.kill();
    for version in 2..10 {
        let value = cache.get_or_insert_with("acme", &acme, || loads.load(tree(version))).await;
        assert_eq!(value, Ok(tree(version)));
    }
    assert_eq!(loads.count(), 9);
    assert!(
        cache.invalidate_data("acme", &acme).await.is_err(),
        "invalidation reports the store's error"
    );
}
