//! Invalidation across instances, races and Redis faults, through real
//! HTTP: each test is a way an update was once hidden.
//!
//! 1. A fetch on one instance that overlaps an invalidation on another is
//!    not stored.
//! 2. An invalidation made while Redis is unreachable is applied when it is
//!    back.
//! 3. A breaker probe whose request is cancelled does not leave the breaker
//!    half-open for good.
//! 4. A tag's bookkeeping in Redis holds its live entries only, and
//!    invalidating a huge tag never blocks Redis.

use std::time::{Duration, Instant};

use cache_core::{Cache, Policies, RedisStore, Store, TieredStore, store::BreakerState};
use cache_tests::{
    Adapter, Server,
    axum_adapter::Axum,
    fault_proxy::FaultProxy,
    origin::{DEADLINE_HEADER, Origin},
    redis_server::RedisServer,
};

/// Held by every test: each loads Redis or measures time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Polls `done` until it holds, for at most ten seconds.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn get(server: &Server, path: &str) -> (String, String) {
    let r = server.get(path).send().await.expect("the app answers");
    assert_eq!(r.status(), 200, "GET {path}");
    let x_cache = r.headers()["x-cache"].to_str().unwrap().to_owned();
    (x_cache, r.text().await.unwrap())
}

async fn put(server: &Server, path: &str) {
    let r = server.request(reqwest::Method::PUT, path).send().await.expect("the app answers");
    assert!(r.status().is_success(), "PUT {path}: {}", r.status());
}

fn redis_conn(url: &str) -> impl Future<Output = redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).unwrap();
    async move { client.get_multiplexed_async_connection().await.unwrap() }
}

async fn tiered(url: &str) -> TieredStore {
    let l2 = RedisStore::builder(url).connect().await.expect("connects");
    let store = TieredStore::builder(l2).build().expect("a runtime");
    eventually("the invalidation subscription is up", async || store.is_subscribed()).await;
    store
}

/// Instance B reads the origin, then instance A updates the resource and
/// invalidates it, then B's response reaches Redis (B's link to Redis is
/// slow). B's response predates the update and must not be stored: both
/// instances answer with the update afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_overlapping_an_invalidation_on_another_instance_is_not_stored() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let link_b = FaultProxy::start(format!("127.0.0.1:{}", server.port()).parse().unwrap()).await;
    let origin = Origin::default();
    let a = Axum::start(Cache::new(tiered(&server.url()).await), origin.clone()).await;
    let b = Axum::start(Cache::new(tiered(&link_b.url()).await), origin.clone()).await;

    // Every byte B sends to Redis arrives 200 ms late.
    link_b.set_delay_upstream(Duration::from_millis(200));
    let slow_get = tokio::spawn({
        let request = b.get("/plain/1");
        async move { request.send().await.expect("B answers").text().await.unwrap() }
    });
    // B has read the origin (v0); its write to Redis is on its way.
    eventually("B has read the origin", async || origin.calls("/plain/1") == 1).await;
    put(&a, "/plain/1").await;
    assert_eq!(
        slow_get.await.unwrap(),
        "/plain/1 v0",
        "B's fetch read the origin before the update"
    );
    link_b.set_delay_upstream(Duration::ZERO);

    for (name, server) in [("A", &a), ("B", &b), ("A", &a), ("B", &b)] {
        let (x_cache, body) = get(server, "/plain/1").await;
        assert_eq!(
            body, "/plain/1 v1",
            "{name} answered ({x_cache}) with what B fetched before the update"
        );
    }
}

/// An instance updates a resource while Redis is paused (its breaker open):
/// the invalidation cannot reach Redis. Once Redis answers again, neither
/// that instance nor another one serves the old copy from Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_made_while_redis_is_unreachable_is_applied_when_it_is_back() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let l2 = RedisStore::builder(server.url())
        .response_timeout(Duration::from_millis(200))
        .failure_threshold(2)
        .cool_down(Duration::from_millis(300))
        .connect()
        .await
        .expect("connects");
    let store_a = TieredStore::builder(l2).build().expect("a runtime");
    eventually("A's subscription is up", async || store_a.is_subscribed()).await;
    let origin = Origin::default();
    let a = Axum::start(Cache::new(store_a.clone()), origin.clone()).await;
    let b = Axum::start(Cache::new(tiered(&server.url()).await), origin.clone()).await;

    assert_eq!(get(&a, "/plain/1").await, ("MISS".into(), "/plain/1 v0".into()));
    assert_eq!(get(&b, "/plain/1").await, ("HIT".into(), "/plain/1 v0".into()), "from Redis");

    server.pause();
    let mut other = 2;
    eventually("A's breaker opens", async || {
        get(&a, &format!("/plain/{other}")).await;
        other += 1;
        store_a.l2().breaker_state() == BreakerState::Open
    })
    .await;
    let started = Instant::now();
    put(&a, "/plain/1").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the update waited {:?}",
        started.elapsed()
    );
    server.resume();

    // Until A's breaker lets it reach Redis again.
    eventually("A's breaker closes", async || {
        get(&a, "/plain/99").await;
        store_a.l2().breaker_state() == BreakerState::Closed
    })
    .await;
    eventually("A's kept invalidation is applied", async || {
        store_a.l2().pending_invalidations() == 0
    })
    .await;
    for (name, server) in [("A", &a), ("B", &b), ("A", &a), ("B", &b)] {
        let (x_cache, body) = get(server, "/plain/1").await;
        assert_eq!(
            body, "/plain/1 v1",
            "{name} answered ({x_cache}) with the copy from before the update"
        );
    }
}

/// With Redis paused and the breaker open, the request that probes Redis
/// after the cool-down is cancelled before Redis answers (its client gave
/// up). The breaker must not stay half-open: once Redis answers again, the
/// cache uses it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_breaker_probe_does_not_leave_the_breaker_half_open() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let store = RedisStore::builder(server.url())
        .response_timeout(Duration::from_millis(400))
        .failure_threshold(2)
        .cool_down(Duration::from_millis(200))
        .connect()
        .await
        .expect("connects");
    let origin = Origin::default();
    let app = Axum::start(Cache::new(store.clone()), origin.clone()).await;

    server.pause();
    eventually("the breaker opens", async || {
        get(&app, "/plain/1").await;
        store.breaker_state() == BreakerState::Open
    })
    .await;
    // Requests whose handler is dropped after 100 ms, before the 400 ms
    // response timeout: one of them is the probe after the cool-down.
    let opened = store.breaker_stats().opened;
    eventually("a probe was cancelled", async || {
        let r = app.get("/plain/1").header(DEADLINE_HEADER, "100").send().await.unwrap();
        // 200 when the breaker skipped Redis, 504 when the request waited
        // on Redis and was dropped.
        assert!(matches!(r.status().as_u16(), 200 | 504), "{}", r.status());
        store.breaker_stats().opened > opened || store.breaker_state() == BreakerState::HalfOpen
    })
    .await;

    server.resume();
    eventually("the cache uses Redis again", async || get(&app, "/plain/1").await.0 == "HIT").await;
    assert_eq!(store.breaker_state(), BreakerState::Closed);
}

/// Instance B's link to Redis goes silent (a half-open connection: no
/// reset, no answer). B's keepalive notices that its subscription is dead,
/// and after the grace B stops serving its L1 copies, so an update made on
/// A meanwhile, whose invalidation B cannot hear, is hidden for a bounded
/// time only. Once the link is back, B resubscribes and drops its L1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_cannot_hear_invalidations_stops_serving_its_l1() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let link_b = FaultProxy::start(format!("127.0.0.1:{}", server.port()).parse().unwrap()).await;
    let origin = Origin::default();
    let a = Axum::start(Cache::new(tiered(&server.url()).await), origin.clone()).await;
    let l2 = RedisStore::builder(link_b.url())
        .response_timeout(Duration::from_millis(200))
        .connect()
        .await
        .expect("connects");
    let store_b = TieredStore::builder(l2)
        .keepalive(Duration::from_millis(100))
        .l1_grace(Duration::from_millis(300))
        .build()
        .expect("a runtime");
    eventually("B's subscription is up", async || store_b.is_subscribed()).await;
    let b = Axum::start(Cache::new(store_b.clone()), origin.clone()).await;

    assert_eq!(get(&a, "/plain/1").await.0, "MISS");
    assert_eq!(get(&b, "/plain/1").await, ("HIT".into(), "/plain/1 v0".into()));
    link_b.blackhole(true);
    assert_eq!(get(&b, "/plain/1").await, ("HIT".into(), "/plain/1 v0".into()), "from B's L1");
    put(&a, "/plain/1").await;
    let updated = Instant::now();
    loop {
        let (x_cache, body) = get(&b, "/plain/1").await;
        if body == "/plain/1 v1" {
            break;
        }
        assert!(
            updated.elapsed() < Duration::from_secs(2),
            "B still answered {x_cache} from its L1 {:?} after the update",
            updated.elapsed()
        );
    }
    eprintln!("B stopped serving its L1 {:?} after the update", updated.elapsed());
    assert!(!store_b.is_subscribed() && !store_b.is_l1_trusted());

    link_b.blackhole(false);
    link_b.reset_all();
    eventually("B resubscribes", async || store_b.is_subscribed()).await;
    assert!(store_b.is_l1_trusted());
    assert_eq!(get(&b, "/plain/1").await.1, "/plain/1 v1");
}

/// A tag that keeps receiving entries (a list with a changing search
/// parameter, beside a long-lived entry with the same tag) holds in Redis
/// the keys of its live entries only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_set_holds_only_live_entries() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let store = RedisStore::builder(server.url()).connect().await.expect("connects");
    let policies = Policies::from_toml_str(
        r#"
        [[route]]
        path = "/list"
        ttl = "300ms"
        tags = ["list"]

        [[route]]
        path = "/list-all"
        ttl = "60s"
        tags = ["list"]
        "#,
        "cache.toml",
    )
    .expect("a valid table");
    let origin = Origin::default();
    let app = Axum::start_with_table(Cache::new(store), origin.clone(), policies).await;
    let mut conn = redis_conn(&server.url()).await;

    assert_eq!(get(&app, "/list-all").await.0, "MISS");
    for i in 0..40 {
        assert_eq!(get(&app, &format!("/list?search={i}")).await.0, "MISS");
    }
    eventually("the entries expired", async || {
        let entries: Vec<String> = redis::cmd("KEYS").arg(r"*}e:*/list\?*").query_async(&mut conn).await.unwrap();
        entries.is_empty()
    })
    .await;
    assert_eq!(get(&app, "/list?search=new").await.0, "MISS");

    let sets: Vec<String> = redis::cmd("KEYS").arg("*t:list").query_async(&mut conn).await.unwrap();
    assert_eq!(sets.len(), 1, "one set for the tag: {sets:?}");
    let kind: String = redis::cmd("TYPE").arg(&sets[0]).query_async(&mut conn).await.unwrap();
    let members: u64 = match kind.as_str() {
        "zset" => redis::cmd("ZCARD").arg(&sets[0]).query_async(&mut conn).await.unwrap(),
        _ => redis::cmd("SCARD").arg(&sets[0]).query_async(&mut conn).await.unwrap(),
    };
    assert_eq!(members, 2, "the tag lists its two live entries, not every entry it ever had");
}

/// Invalidating a tag of 200,000 keys never runs one long command in
/// Redis: no command in the slow log over 50 ms (taking such a tag in one
/// script takes over 100 ms here; the batches take well under a
/// millisecond, and the margin is for a loaded machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidating_a_huge_tag_never_blocks_redis() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start_with(&["--slowlog-log-slower-than", "50000"]);
    let store = RedisStore::builder(server.url()).connect().await.expect("connects");
    let mut conn = redis_conn(&server.url()).await;
    // Learn the tag's set name from one real entry, then list 200,000 more
    // keys under it.
    let mut entry = (*cache_tests::conformance::sample_entry("x")).clone();
    entry.tags = vec!["huge".to_owned()];
    store.put("k", std::sync::Arc::new(entry), Duration::from_secs(60)).await.unwrap();
    let sets: Vec<String> = redis::cmd("KEYS").arg("*t:huge").query_async(&mut conn).await.unwrap();
    let kind: String = redis::cmd("TYPE").arg(&sets[0]).query_async(&mut conn).await.unwrap();
    for batch in 0..40 {
        let mut add = match kind.as_str() {
            "zset" => redis::cmd("ZADD"),
            _ => redis::cmd("SADD"),
        };
        add.arg(&sets[0]);
        for i in 0..5_000 {
            if kind == "zset" {
                add.arg(4_000_000_000_000u64);
            }
            add.arg(format!("key-{batch}-{i}"));
        }
        let _: u64 = add.query_async(&mut conn).await.unwrap();
    }
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut conn).await.unwrap();

    let started = Instant::now();
    assert_eq!(store.invalidate_tags(&["huge".to_owned()]).await.unwrap(), 1, "one real entry");
    eprintln!("a tag of 200,001 keys invalidated in {:?}", started.elapsed());
    let slow: Vec<redis::Value> = redis::cmd("SLOWLOG").arg("GET").arg(10).query_async(&mut conn).await.unwrap();
    assert!(slow.is_empty(), "commands over 50 ms in Redis: {slow:?}");
    assert!(store.get("k").await.unwrap().is_none());
}

/// A URI invalidated (by an unsafe request) while Redis is unreachable, on
/// a route whose entries carry no tag of the app's: the invalidation is
/// kept and, once Redis is back, reaches the entry by its URI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_invalidation_kept_while_redis_is_away_reaches_an_untagged_entry() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let store = RedisStore::builder(server.url())
        .response_timeout(Duration::from_millis(200))
        .failure_threshold(2)
        .cool_down(Duration::from_millis(300))
        .connect()
        .await
        .expect("connects");
    let app = cache_tests::App::new()
        .route(
            "/doc/{id}",
            cache_core::CachePolicy::builder().ttl("60s"),
            cache_tests::handlers::plain,
        )
        .start_with::<Axum>(Cache::new(store.clone()))
        .await;
    assert_eq!(get(&app, "/doc/1").await, ("MISS".into(), "/doc/1 v0".into()));
    assert_eq!(get(&app, "/doc/1").await, ("HIT".into(), "/doc/1 v0".into()));

    server.pause();
    let mut other = 2;
    eventually("the breaker opens", async || {
        get(&app, &format!("/doc/{other}")).await;
        other += 1;
        store.breaker_state() == BreakerState::Open
    })
    .await;
    put(&app, "/doc/1").await;
    let kept = store.pending_invalidations();
    server.resume();
    eventually("the breaker closes", async || {
        get(&app, "/doc/99").await;
        store.breaker_state() == BreakerState::Closed
    })
    .await;
    eventually("the kept invalidations are applied", async || store.pending_invalidations() == 0).await;
    let (x_cache, body) = get(&app, "/doc/1").await;
    assert_eq!(
        body, "/doc/1 v1",
        "served ({x_cache}) the copy from before the update; {kept} invalidation(s) had been kept"
    );
}

/// The same with a tiered store whose subscription stays up through the
/// outage (so its L1 is never reset): the instance that made the update
/// drops its own L1 copy at once, whatever L2 answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_invalidation_kept_while_redis_is_away_drops_the_l1_copy_at_once() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let l2 = RedisStore::builder(server.url())
        .response_timeout(Duration::from_millis(200))
        .failure_threshold(2)
        .cool_down(Duration::from_millis(300))
        .connect()
        .await
        .expect("connects");
    // A keepalive longer than the outage: the subscription stays up.
    let store = TieredStore::builder(l2)
        .keepalive(Duration::from_secs(30))
        .build()
        .expect("a runtime");
    eventually("subscribed", async || store.is_subscribed()).await;
    let app = cache_tests::App::new()
        .route(
            "/doc/{id}",
            cache_core::CachePolicy::builder().ttl("60s"),
            cache_tests::handlers::plain,
        )
        .start_with::<Axum>(Cache::new(store.clone()))
        .await;
    assert_eq!(get(&app, "/doc/1").await, ("MISS".into(), "/doc/1 v0".into()));
    assert_eq!(get(&app, "/doc/1").await, ("HIT".into(), "/doc/1 v0".into()));

    server.pause();
    let mut other = 2;
    eventually("the breaker opens", async || {
        get(&app, &format!("/doc/{other}")).await;
        other += 1;
        store.l2().breaker_state() == BreakerState::Open
    })
    .await;
    put(&app, "/doc/1").await;
    let (x_cache, body) = get(&app, "/doc/1").await;
    server.resume();
    assert_eq!(body, "/doc/1 v1", "right after its own PUT, served ({x_cache}) the old copy");
}
