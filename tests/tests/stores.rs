//! The store conformance suite against every store.

use cache_core::{Cache, Clock, MokaStore, RedisStore, Store};
use std::time::Duration;

use cache_tests::{
    Adapter,
    axum_adapter::Axum,
    conformance,
    origin::Origin,
    redis_server::{RedisServer, free_port},
};

#[tokio::test]
async fn moka_store_conforms() {
    conformance::run(MokaStore::new(), "").await;
}

#[tokio::test]
async fn redis_store_conforms() {
    let server = RedisServer::start();
    let store = RedisStore::builder(server.url()).prefix("app:").connect().await.expect("connects");
    conformance::run(store.clone(), "").await;
    // Foreign bytes at an entry's key read as a miss, and the next store
    // overwrites them.
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("app:e:foreign")
        .arg("not an entry")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(store.get("foreign").await.unwrap().is_none());
}

#[tokio::test]
async fn redis_credentials_stay_out_of_debug_output() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret-pass"]);
    let url = server.url().replace("redis://", "redis://:s3cret-pass@");
    let builder = RedisStore::builder(url);
    assert!(!format!("{builder:?}").contains("s3cret"));
    let store = builder.connect().await.expect("connects with the password");
    let debug = format!("{store:?}");
    assert!(debug.contains("127.0.0.1"), "{debug}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(store.get("anything").await.unwrap().is_none(), "authenticated commands work");
}

/// Two app instances on one Redis: what one stores, the other serves.
#[tokio::test]
async fn redis_store_is_shared_by_instances() {
    let server = RedisServer::start();
    let clock = Clock::manual();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let store = RedisStore::builder(server.url()).connect().await.expect("connects");
        let cache = Cache::builder().store(store).clock(clock.clone()).build().expect("a valid cache");
        instances.push(Axum::start(cache, Origin::default()).await);
    }
    let first = instances[0].get("/plain/1").send().await.unwrap();
    assert_eq!(first.headers()["x-cache"], "MISS");
    let second = instances[1].get("/plain/1").send().await.unwrap();
    assert_eq!(second.headers()["x-cache"], "HIT");
    assert_eq!(second.headers()["cache-status"], "cache; hit; ttl=60");
    assert_eq!(second.text().await.unwrap(), "/plain/1 v0");
    assert_eq!(instances[1].origin.calls("/plain/1"), 0);
    // A tag invalidated on one instance is gone for the other.
    assert_eq!(instances[1].cache.invalidator().tag("plain:1").await.unwrap(), 1);
    assert_eq!(instances[0].get("/plain/1").send().await.unwrap().headers()["x-cache"], "MISS");
}

/// An application whose Redis is not there at start serves every request
/// from its origin, and caches once Redis comes up.
#[tokio::test]
async fn redis_absent_at_start_serves_from_the_origin() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let store = RedisStore::builder(url).connect_lazy().expect("a valid URL");
    let cache = Cache::builder().store(store).clock(Clock::manual()).build().expect("a valid cache");
    let app = Axum::start(cache, Origin::default()).await;
    for _ in 0..2 {
        let r = app.get("/plain/1").send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-status"], "cache; fwd=uri-miss; fwd-status=200");
        assert_eq!(r.text().await.unwrap(), "/plain/1 v0");
    }
    assert_eq!(app.origin.calls("/plain/1"), 2);

    let _server = RedisServer::start_on(port, &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get("/plain/1").send().await.unwrap();
        if r.headers()["cache-status"].to_str().unwrap().ends_with("stored") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the store never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.get("/plain/1").send().await.unwrap().headers()["x-cache"], "HIT");
}
