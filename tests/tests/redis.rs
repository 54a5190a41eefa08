//! Several application instances on one Redis (or Redis Cluster), through
//! real HTTP: the tiered store's invalidation broadcast, cross-instance
//! coalescing, and Redis failing under load.

use std::time::{Duration, Instant};

use cache_core::{Cache, RedisStore, TieredStore, store::BreakerState};
use cache_tests::{
    Adapter, Server,
    axum_adapter::Axum,
    origin::Origin,
    redis_server::{RedisCluster, RedisServer},
};

/// Held by the tests that load the machine and by the one that measures a
/// delay, so that the measurement never runs beside the load.
static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn tiered(url: &str) -> TieredStore {
    let l2 = RedisStore::builder(url).connect().await.expect("connects");
    let store = TieredStore::builder(l2).build().expect("a runtime");
    eventually("the invalidation subscription is up", || store.is_subscribed()).await;
    store
}

/// Polls `done` until it holds, for at most ten seconds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn x_cache(server: &Server, path: &str) -> (String, String) {
    let r = server.get(path).send().await.expect("the app answers");
    assert_eq!(r.status(), 200);
    let x_cache = r.headers()["x-cache"].to_str().unwrap().to_owned();
    (x_cache, r.text().await.unwrap())
}

/// The Redis name of the entry stored for `path`, and its cache key.
async fn entry_for(url: &str, path: &str) -> (String, String) {
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let names: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*}}e:*{path}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(names.len(), 1, "one entry for {path}: {names:?}");
    let name = names.into_iter().next().unwrap();
    let key = name.split_once("}e:").expect("the store's key layout").1.to_owned();
    (name, key)
}

/// A write on instance A makes instance B miss within 50 ms: B's L1 copy is
/// dropped by the invalidation A publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_instance_reaches_the_l1_of_another() {
    let _quiet = TIMING.lock().await;
    let server = RedisServer::start();
    let origin = Origin::default();
    let (store_a, store_b) = (tiered(&server.url()).await, tiered(&server.url()).await);
    let a = Axum::start(Cache::new(store_a), origin.clone()).await;
    let b = Axum::start(Cache::new(store_b.clone()), origin.clone()).await;

    assert_eq!(x_cache(&a, "/plain/1").await.0, "MISS");
    assert_eq!(x_cache(&b, "/plain/1").await, ("HIT".into(), "/plain/1 v0".into()), "from L2");
    let (_, key) = entry_for(&server.url(), "/plain/1").await;
    assert!(store_b.l1().time_to_live(&key).is_some(), "promoted to B's L1");
    assert_eq!(x_cache(&b, "/plain/1").await.0, "HIT");

    let r = a.client.put(format!("{}/plain/1", a.base)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let written = Instant::now();
    loop {
        let (x_cache, body) = x_cache(&b, "/plain/1").await;
        if x_cache == "MISS" {
            assert_eq!(body, "/plain/1 v1");
            break;
        }
        assert!(
            written.elapsed() < Duration::from_millis(50),
            "B still served its L1 copy 50 ms after the write"
        );
    }
    let delay = written.elapsed();
    eprintln!("invalidation reached the other instance in {delay:?}");
    assert_eq!(origin.calls("/plain/1"), 3, "GET on A, PUT on A, GET on B after the write");
}

/// An entry promoted from L2 stays in L1 no longer than L2 keeps it.
#[tokio::test]
async fn l1_keeps_a_promoted_entry_no_longer_than_l2() {
    let server = RedisServer::start();
    let origin = Origin::default();
    let a = Axum::start(Cache::new(tiered(&server.url()).await), origin.clone()).await;
    let store_b = tiered(&server.url()).await;
    let b = Axum::start(Cache::new(store_b.clone()), origin.clone()).await;

    assert_eq!(x_cache(&a, "/plain/1").await.0, "MISS");
    let (name, key) = entry_for(&server.url(), "/plain/1").await;
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("PEXPIRE").arg(&name).arg(5_000).query_async(&mut conn).await.unwrap();

    assert_eq!(x_cache(&b, "/plain/1").await.0, "HIT");
    let ttl = store_b.l1().time_to_live(&key).expect("promoted to L1");
    assert!(ttl <= Duration::from_secs(5), "L1 keeps it for {ttl:?}, L2 for 5 s");
    assert!(ttl > Duration::from_secs(3), "L1 keeps it for {ttl:?}, L2 for 5 s");
}

/// After Redis restarts, an instance resubscribes and drops its L1, which
/// may hold entries whose invalidation it missed.
#[tokio::test]
async fn l1_is_dropped_when_the_subscription_reconnects() {
    let mut server = RedisServer::start();
    let port = server.port();
    let origin = Origin::default();
    let store = tiered(&server.url()).await;
    let app = Axum::start(Cache::new(store.clone()), origin.clone()).await;
    assert_eq!(x_cache(&app, "/plain/1").await.0, "MISS");
    assert_eq!(x_cache(&app, "/plain/1").await.0, "HIT");
    assert_eq!(store.l1_resets(), 1, "the first subscription");

    server.kill();
    eventually("the subscription notices", || !store.is_subscribed()).await;
    // L1 keeps serving while Redis is away.
    assert_eq!(x_cache(&app, "/plain/1").await.0, "HIT");
    let _server = RedisServer::start_on(port, &[]);
    eventually("the subscription is back", || store.is_subscribed()).await;
    assert_eq!(store.l1_resets(), 2);
    assert_eq!(
        x_cache(&app, "/plain/1").await,
        ("MISS".into(), "/plain/1 v0".into()),
        "L1 was dropped"
    );
    assert_eq!(origin.calls("/plain/1"), 2);
}

/// Four instances (separate L1s, one Redis) × 250 concurrent requests on
/// one cold key: the origin is called once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_key_across_four_instances_reaches_the_origin_once() {
    let _load = TIMING.lock().await;
    let server = RedisServer::start();
    let origin = Origin::default();
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(Axum::start(Cache::new(tiered(&server.url()).await), origin.clone()).await);
    }
    origin.close();
    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..1000)
        .map(|i| {
            let url = format!("{}/shared-slow", instances[i % 4].base);
            let client = client.clone();
            tokio::spawn(async move {
                let r = client.get(url).send().await.expect("the app answers");
                let status = r.headers()["cache-status"].to_str().unwrap().to_owned();
                (r.status(), status, r.text().await.unwrap())
            })
        })
        .collect();
    // Let every request reach its instance while the first fetch is held.
    eventually("the first fetch reaches the origin", || origin.calls("/shared-slow") == 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    origin.open();
    let mut collapsed = 0;
    for request in requests {
        let (status, cache_status, body) = request.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, "slow v0");
        collapsed += usize::from(cache_status.contains("collapsed"));
    }
    assert_eq!(origin.calls("/shared-slow"), 1);
    assert!(collapsed >= 900, "only {collapsed} of 1000 requests waited for the one fetch");
}

/// Killing Redis under load: every request still gets the origin's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_fails_no_request() {
    let _load = TIMING.lock().await;
    let mut server = RedisServer::start();
    let store = RedisStore::builder(server.url()).connect().await.expect("connects");
    let app = Axum::start(Cache::new(store.clone()), Origin::default()).await;
    let base = app.base.clone();
    let load: Vec<_> = (0..8)
        .map(|worker| {
            let (client, base) = (app.client.clone(), base.clone());
            tokio::spawn(async move {
                let mut slowest = Duration::ZERO;
                for i in 0..150 {
                    let path = format!("/plain/{}", (worker * 150 + i) % 40);
                    let started = Instant::now();
                    let r = client.get(format!("{base}{path}")).send().await.expect("the app answers");
                    assert_eq!(r.status(), 200);
                    assert_eq!(r.text().await.unwrap(), format!("{path} v0"));
                    slowest = slowest.max(started.elapsed());
                }
                slowest
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.kill();
    let mut slowest = Duration::ZERO;
    for worker in load {
        slowest = slowest.max(worker.await.expect("no request failed"));
    }
    assert!(
        slowest < cache_core::store::DEFAULT_RESPONSE_TIMEOUT + Duration::from_secs(1),
        "a request took {slowest:?}"
    );
    assert_ne!(store.breaker_stats().failures, 0, "Redis was gone for part of the run");

    // Redis back on its port: the store reconnects and caches again.
    let _server = RedisServer::start_on(server.port(), &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while x_cache(&app, "/plain/1").await.0 != "HIT" {
        assert!(Instant::now() < deadline, "the store never reconnected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A paused Redis (SIGSTOP) costs a request at most the response timeout;
/// the breaker opens after consecutive failures, skips Redis, probes it
/// after the cool-down and closes once Redis answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_redis_opens_the_breaker_and_recovers() {
    let _quiet = TIMING.lock().await;
    let server = RedisServer::start();
    let timeout = Duration::from_millis(300);
    let store = RedisStore::builder(server.url())
        .response_timeout(timeout)
        .failure_threshold(3)
        .cool_down(Duration::from_millis(500))
        .connect()
        .await
        .expect("connects");
    let origin = Origin::default();
    let app = Axum::start(Cache::new(store.clone()), origin.clone()).await;
    assert_eq!(x_cache(&app, "/plain/1").await.0, "MISS");
    assert_eq!(x_cache(&app, "/plain/1").await.0, "HIT");

    server.pause();
    for i in 0..6 {
        let started = Instant::now();
        assert_eq!(
            x_cache(&app, "/plain/1").await,
            ("MISS".into(), "/plain/1 v0".into()),
            "request {i}"
        );
        let took = started.elapsed();
        // One read and one write may each wait the timeout.
        assert!(took < 2 * timeout + Duration::from_millis(500), "request {i} took {took:?}");
    }
    assert_eq!(store.breaker_state(), BreakerState::Open);
    let opened = store.breaker_stats().opened;
    assert!(opened >= 1);

    server.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    while x_cache(&app, "/plain/1").await.0 != "HIT" {
        assert!(Instant::now() < deadline, "the cache never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.breaker_state(), BreakerState::Closed);
    assert!(store.breaker_stats().closed >= 1);
}

/// Two instances on a Redis Cluster share entries and invalidations.
#[tokio::test]
async fn instances_share_a_cluster() {
    let cluster = RedisCluster::start();
    let origin = Origin::default();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let store = RedisStore::cluster_builder(cluster.urls()).connect().await.expect("connects");
        instances.push(Axum::start(Cache::new(store), origin.clone()).await);
    }
    for id in 0..20 {
        let path = format!("/plain/{id}");
        assert_eq!(x_cache(&instances[0], &path).await.0, "MISS");
        assert_eq!(x_cache(&instances[1], &path).await, ("HIT".into(), format!("{path} v0")));
    }
    let r = instances[1]
        .client
        .put(format!("{}/plain/7", instances[1].base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(x_cache(&instances[0], "/plain/7").await, ("MISS".into(), "/plain/7 v1".into()));
    assert_eq!(x_cache(&instances[0], "/plain/8").await.0, "HIT");
}

/// A write whose client goes away while the invalidation waits on Redis
/// still invalidates: the invalidation does not run in the request's future.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_outlives_its_cancelled_request() {
    let server = RedisServer::start();
    let store = RedisStore::builder(server.url()).connect().await.expect("connects");
    let origin = Origin::default();
    let app = Axum::start(Cache::new(store), origin.clone()).await;
    assert_eq!(x_cache(&app, "/plain/1").await.0, "MISS");
    assert_eq!(x_cache(&app, "/plain/1").await.0, "HIT");

    server.pause();
    let r = app
        .client
        .put(format!("{}/plain/1", app.base))
        .header(cache_tests::origin::DEADLINE_HEADER, "100")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504, "the request was dropped while invalidating");
    server.resume();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (x_cache, body) = x_cache(&app, "/plain/1").await;
        if x_cache == "MISS" {
            assert_eq!(body, "/plain/1 v1");
            break;
        }
        assert!(Instant::now() < deadline, "the entry outlived the write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A lease whose holder died (never released) delays the other instances
/// until it expires, then one of them fetches.
#[tokio::test]
async fn a_dead_lease_holder_releases_by_expiry() {
    let server = RedisServer::start();
    let origin = Origin::default();
    let app = Axum::start(Cache::new(tiered(&server.url()).await), origin.clone()).await;
    // The lease a crashed instance left behind, as the store names it.
    let key = "http:1::/shared-slow?::";
    let hash = key
        .bytes()
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("cache:{{{hash:08x}}}l:{key}"))
        .arg("token-of-a-dead-instance")
        .arg("PX")
        .arg(600)
        .query_async(&mut conn)
        .await
        .unwrap();

    let started = Instant::now();
    let r = app.get("/shared-slow").send().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-status"].to_str().unwrap().contains("stored"));
    assert!(
        waited >= Duration::from_millis(500),
        "fetched after {waited:?}, before the lease expired"
    );
    assert_eq!(origin.calls("/shared-slow"), 1);
}
