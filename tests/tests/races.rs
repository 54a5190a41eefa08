//! Races and faults against the consistency contract of `RedisStore` and
//! `TieredStore` (cache-core crate docs, "Consistency"): each test is an
//! interleaving or a fault under which an update was once hidden, an
//! invalidation lost, or Redis skipped for good, found by an adversarial
//! review; each failed before its fix.
//!
//! Store-level where the interleaving must be exact: each step is what an
//! instance of the engine does (a lookup's stamp, a put of the fetched
//! entry with it, an invalidation).

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use cache_core::{Cache, CachedEntry, DataPolicy, RedisStore, Store, StoreError, TieredStore, store::Stamp};
use cache_tests::{fault_proxy::FaultProxy, redis_server::RedisServer, support::body_of as body};

/// Held by every test: each loads Redis or measures time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const KEY: &str = "http:1::/item/1?::";
const TAG: &str = "item:1";
const TTL: Duration = Duration::from_secs(60);

fn address(server: &RedisServer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.port()))
}

/// A response as the engine stores it: fetched at `stamp`, tagged `TAG`.
fn entry(body: &str, stamp: Stamp) -> Arc<CachedEntry> {
    cache_tests::support::fetched_entry(body, TAG, stamp)
}

async fn eventually(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The store's hash of a key or tag (its Redis Cluster hash tag).
fn fnv1a(s: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in s.as_bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The Redis name of the entry at `key`, with the default prefix.
fn entry_name(key: &str) -> String {
    format!("cache:{{{:08x}}}e:{key}", fnv1a(key))
}

async fn tiered(url: String) -> TieredStore {
    let l2 = RedisStore::builder(url).connect().await.expect("connects");
    let store = TieredStore::builder(l2).build().expect("a runtime");
    eventually("subscribed", Duration::from_secs(10), async || store.is_subscribed()).await;
    store
}

/// An application invalidates from a handler (`Invalidator::tags`, the
/// purge API): the handler future is dropped when its client goes away,
/// here after Redis took the tag but before the invalidation was
/// published. The invalidation still runs to its end (on a task of its
/// own): every instance's L1 drops the entry, not only Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_invalidation_still_reaches_every_l1() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let link_a = FaultProxy::start(address(&server)).await;
    let a = tiered(link_a.url()).await;
    let b = tiered(server.url()).await;
    let plain = RedisStore::builder(server.url()).connect().await.expect("connects");

    b.put(KEY, entry("v0", Stamp::NONE), TTL).await.expect("stored");
    assert_eq!(body(a.get(KEY).await.unwrap()), "v0", "A reads it from Redis into its L1");
    assert_eq!(body(b.get(KEY).await.unwrap()), "v0");

    // A's scripts are loaded (else EVALSHA takes three round trips).
    a.invalidate_tags(&["warm-up".to_owned()]).await.expect("Redis answers");
    // A's commands reach Redis 300 ms late; the invalidation's caller goes
    // away after 450 ms: the clock tick is done, the tag take is on its way.
    link_a.set_delay_upstream(Duration::from_millis(300));
    let cancelled = tokio::time::timeout(Duration::from_millis(450), a.invalidate_tags(&[TAG.to_owned()])).await;
    assert!(cancelled.is_err(), "the invalidation was cancelled midway");
    link_a.set_delay_upstream(Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (l2, on_a, on_b) = (
        body(plain.get(KEY).await.unwrap()),
        body(a.get(KEY).await.unwrap()),
        body(b.get(KEY).await.unwrap()),
    );
    println!(
        "1 s after the cancelled invalidation: Redis answers {l2}; A answers {on_a}; B answers {on_b}; A keeps {} invalidations",
        a.l2().pending_invalidations()
    );
    assert_eq!(l2, "a miss", "Redis applied the invalidation");
    assert_eq!(
        (on_a.as_str(), on_b.as_str()),
        ("a miss", "a miss"),
        "the instances' L1s still serve the entry Redis invalidated"
    );
}

/// A fetch began before a write (it read v0); the write's prefix
/// invalidation ran on another instance and returned (nothing was stored
/// yet); then the fetch's response reaches Redis over a slow link. Its
/// write is refused, and no instance ever reads it meanwhile (reads check
/// the recent prefix invalidations against the entry's stamp), so no
/// tiered instance keeps it in L1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_overlapping_a_prefix_invalidation_is_never_read() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let link = FaultProxy::start(address(&server)).await;
    let fetcher = RedisStore::builder(link.url()).connect().await.expect("connects");
    let writer = RedisStore::builder(server.url()).connect().await.expect("connects");
    let reader = tiered(server.url()).await;

    let (_, fetch) = fetcher.get_stamped(KEY).await.expect("Redis answers"); // reads v0
    writer.invalidate_prefix("http:1::/item/").await.expect("Redis answers"); // the write of v1
    link.set_delay_upstream(Duration::from_millis(150));
    let late = tokio::spawn({
        let fetcher = fetcher.clone();
        async move { fetcher.put(KEY, entry("v0", fetch), TTL).await }
    });
    let mut seen = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        let found = body(reader.get(KEY).await.unwrap());
        if found != "a miss" {
            seen.push(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let late = late.await.unwrap();
    link.set_delay_upstream(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (l2, now) = (body(writer.get(KEY).await.unwrap()), body(reader.get(KEY).await.unwrap()));
    println!("the late put: {late:?}; the reader saw {seen:?} meanwhile; now Redis answers {l2}, the reader {now}");
    assert!(
        seen.is_empty() && now == "a miss",
        "the reader read v0, fetched before the prefix invalidation, after it returned ({seen:?}), and still serves {now} \
         (Redis: {l2})"
    );
}

/// A fetch began (it read v0); a prefix invalidation covering its key ran
/// (the write of v1); then the fetch's response reaches Redis. On a single
/// server the write is one script that checks the prefix notes: it is
/// refused and never visible, also once the note has expired (ten minutes
/// later, simulated by expiring it): a write that is withdrawn after it
/// landed could be left behind by a put that timed out before withdrawing
/// it, and served once the note expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_by_a_prefix_invalidation_is_never_visible() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let fetcher = RedisStore::builder(server.url()).connect().await.expect("connects");
    let writer = RedisStore::builder(server.url()).connect().await.expect("connects");
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    let (_, fetch) = fetcher.get_stamped(KEY).await.expect("Redis answers"); // reads v0
    writer.invalidate_prefix("http:1::/item/").await.expect("Redis answers"); // the write of v1
    let put = fetcher.put(KEY, entry("v0", fetch), Duration::from_secs(3600)).await;
    let exists: u64 = redis::cmd("EXISTS").arg(entry_name(KEY)).query_async(&mut conn).await.unwrap();
    let before = body(writer.get(KEY).await.unwrap());
    // Ten minutes later: the prefix note has expired.
    let () = redis::cmd("PEXPIRE")
        .arg("cache:{clock}prefixes")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after = body(writer.get(KEY).await.unwrap());
    println!("the late put: {put:?}; entry in Redis: {exists}; reads: {before} while the note lives, {after} once it expired");
    assert!(matches!(put, Err(StoreError::Superseded)), "{put:?}");
    assert_eq!(exists, 0, "the refused entry was written");
    assert_eq!(
        (before.as_str(), after.as_str()),
        ("a miss", "a miss"),
        "v0, fetched before the prefix invalidation, is served"
    );
}

/// More than 1,024 invalidations are kept during an outage: the store
/// replays "everything under the prefix" instead. The replay's first call
/// (clock tick, prefix note) is the breaker's probe; an invalidation made
/// on the instance meanwhile fails (`CircuitOpen`) and is kept, after the
/// replay's note. The replay must not forget it: a fetch that began after
/// the note and before the write is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_kept_during_an_overflow_replay_is_applied() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let link_a = FaultProxy::start(address(&server)).await;
    let a = RedisStore::builder(link_a.url())
        .response_timeout(Duration::from_secs(2))
        .failure_threshold(1)
        .cool_down(Duration::from_millis(500))
        .connect()
        .await
        .expect("connects");
    let b = RedisStore::builder(server.url()).connect().await.expect("connects");
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    link_a.pause();
    assert!(a.invalidate_tags(&["other:0".to_owned()]).await.is_err(), "Redis unreachable");
    for i in 1..=1024 {
        let _ = a.invalidate_tags(&[format!("other:{i}")]).await;
    }
    assert!(a.pending_invalidations() > 1024, "overflowed: {}", a.pending_invalidations());
    // Redis is back, over a link with a 600 ms round trip.
    link_a.set_delay(Duration::from_millis(300));
    link_a.resume();
    // The replay's probe has noted its prefix invalidation in Redis and
    // is waiting for the answer.
    eventually("the replay noted everything invalidated", Duration::from_secs(20), async || {
        let noted: Option<f64> = redis::cmd("ZSCORE")
            .arg("cache:{clock}prefixes")
            .arg("")
            .query_async(&mut conn)
            .await
            .unwrap();
        noted.is_some()
    })
    .await;
    // A fetch begins on B (it reads v1); then A writes v2 and invalidates.
    let (_, fetch) = b.get_stamped(KEY).await.expect("Redis answers");
    let kept = a.invalidate_tags(&[TAG.to_owned()]).await;
    println!(
        "A's invalidation of {TAG} during the replay: {kept:?}; {} kept",
        a.pending_invalidations()
    );
    eventually("A's replay is over", Duration::from_secs(30), async || {
        a.pending_invalidations() == 0 && a.get("probe").await.is_ok()
    })
    .await;
    link_a.set_delay(Duration::ZERO);
    // B's fetch ends.
    let put = b.put(KEY, entry("v1 (before the write)", fetch), TTL).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (on_a, on_b) = (body(a.get(KEY).await.unwrap()), body(b.get(KEY).await.unwrap()));
    println!("B's put of v1 after A's replay: {put:?}; A reads {on_a}, B reads {on_b}");
    assert!(
        matches!(put, Err(StoreError::Superseded)) && on_a == "a miss",
        "the invalidation of {TAG} A kept during its replay was never applied: v1 stored ({put:?}) and served ({on_a})"
    );
}

/// An invalidation fails on a runtime that then ends (a request's: with
/// actix, a worker's own runtime). Its replay runs on the store's own
/// runtime, so the store does not skip a healthy Redis for good.
#[test]
fn a_replay_outlives_the_runtime_of_the_call_that_kept_it() {
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let (link, store) = main.block_on(async {
        let link = FaultProxy::start(address(&server)).await;
        let store = RedisStore::builder(link.url())
            .response_timeout(Duration::from_millis(100))
            .connect()
            .await
            .expect("connects");
        (link, store)
    });
    link.pause();
    let worker = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert!(worker.block_on(store.invalidate_tags(&[TAG.to_owned()])).is_err());
    drop(worker);
    link.resume();
    main.block_on(async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let read = store.get(KEY).await;
        println!("3 s after Redis is back: {read:?}; {} kept", store.pending_invalidations());
        assert!(
            store.pending_invalidations() == 0 && read.is_ok(),
            "the store skips a healthy Redis: its replay task died with its runtime"
        );
    });
}

/// A fetch began (stamp read), then another instance invalidated the
/// entry's tag, then Redis restarted without persistence (the test
/// servers' and most caches' setting) and lost the stamps. The fetch's
/// response, from before the write, must not be stored: a lost clock counts
/// as an invalidation of everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_in_flight_across_a_redis_restart_is_not_stored() {
    let _serial = SERIAL.lock().await;
    let mut server = RedisServer::start();
    let port = server.port();
    let fetcher = RedisStore::builder(server.url()).connect().await.expect("connects");
    let writer = RedisStore::builder(server.url()).connect().await.expect("connects");

    let (_, fetch) = fetcher.get_stamped(KEY).await.expect("Redis answers"); // reads v0
    writer.invalidate_tags(&[TAG.to_owned()]).await.expect("Redis answers"); // the write of v1
    server.kill();
    let _server = RedisServer::start_on(port, &[]);

    let deadline = Instant::now() + Duration::from_secs(15);
    let put = loop {
        match fetcher.put(KEY, entry("v0", fetch), TTL).await {
            Err(StoreError::Superseded) => break Err(StoreError::Superseded),
            Ok(()) => break Ok(()),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(err) => panic!("Redis did not come back: {err}"),
        }
    };
    let read = loop {
        if let Ok(found) = writer.get(KEY).await {
            break body(found);
        }
        assert!(Instant::now() < deadline, "Redis did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("the fetch's put after the restart: {put:?}; Redis then answers {read}");
    assert!(
        matches!(put, Err(StoreError::Superseded)),
        "v0, fetched before the invalidation, was stored after it (read: {read})"
    );
}

/// A typed-data hit (`get_or_insert_with`) in a tiered store's L1 is
/// answered from L1 alone, without waiting for Redis (the clock is read
/// only when a load follows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_data_hit_in_l1_does_not_wait_for_redis() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let link = FaultProxy::start(address(&server)).await;
    let store = tiered(link.url()).await;
    let cache = Cache::new(store.clone());
    let policy = DataPolicy::builder().namespace("n").ttl("60s").build().unwrap();
    let load = || async { Ok::<_, Infallible>("value".to_owned()) };
    let _: String = cache.get_or_insert_with("k", &policy, load).await.unwrap();
    assert!(store.l1().get_now(&policy.key("k")).is_some(), "in L1");

    link.set_delay(Duration::from_millis(100));
    let started = Instant::now();
    for _ in 0..5 {
        let value: String = cache
            .get_or_insert_with("k", &policy, || async { Err::<String, _>("an L1 hit loaded the value") })
            .await
            .unwrap();
        assert_eq!(value, "value");
    }
    let took = started.elapsed();
    link.set_delay(Duration::ZERO);
    println!("five L1 hits took {took:?}");
    assert!(
        took < Duration::from_millis(100),
        "five L1 hits took {took:?}: each waited for Redis"
    );
}
