//! The cache keeps caching: the ordering of writes against invalidations
//! never refuses every write after a quiet spell, and a connection to Redis
//! that goes silent is replaced each time it does, not once. Both once
//! stopped a healthy cache from caching until the process restarted.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use cache_core::{CachedEntry, RedisStore, Store, store::BreakerState, store::Stamp};
use cache_tests::{
    fault_proxy::FaultProxy,
    redis_server::{RedisCluster, RedisServer},
};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TAG: &str = "item:1";
const TTL: Duration = Duration::from_secs(60);
/// Eleven minutes, in µs: past the ten-minute fetch window.
const ELEVEN_MINUTES_US: u64 = 11 * 60 * 1_000_000;

/// A response as the engine stores it: fetched at `stamp`, tagged `TAG`.
fn entry(body: &str, stamp: Stamp) -> Arc<CachedEntry> {
    cache_tests::support::fetched_entry(body, TAG, stamp)
}

/// The clock moves only when something is invalidated, while the write
/// scripts refuse a fetch older than ten minutes: a fetch's stamp must be
/// the time it began, not the clock's last value. Eleven minutes without an
/// invalidation (simulated: the clock moved eleven minutes back, the prefix
/// notes expired as they would have), and writes are still stored.
async fn writes_after_eleven_quiet_minutes<C: redis::aio::ConnectionLike + Send>(store: &RedisStore, conn: &mut C) {
    // Works on a fresh store.
    let (_, stamp) = store.get_stamped("http:1::/warm?::").await.expect("Redis answers");
    store
        .put("http:1::/warm?::", entry("v0", stamp), TTL)
        .await
        .expect("stored when fresh");
    store.invalidate_tags(&["other".to_owned()]).await.expect("Redis answers");

    let clock: u64 = redis::cmd("GET").arg("cache:{clock}").query_async(conn).await.unwrap();
    let () = redis::cmd("SET")
        .arg("cache:{clock}")
        .arg(clock - ELEVEN_MINUTES_US)
        .query_async(conn)
        .await
        .unwrap();
    let _: u64 = redis::cmd("DEL").arg("cache:{clock}prefixes").query_async(conn).await.unwrap();

    let (_, stamp) = store.get_stamped("http:1::/item/2?::").await.expect("Redis answers");
    let after_miss = store.put("http:1::/item/2?::", entry("v1", stamp), TTL).await;
    let direct = store.put("http:1::/item/3?::", entry("v2", Stamp::NONE), TTL).await;
    println!("eleven minutes without an invalidation: a miss's put {after_miss:?}, a direct put {direct:?}");
    assert!(
        after_miss.is_ok() && direct.is_ok(),
        "the store stopped caching: a miss's put {after_miss:?}, a direct put {direct:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stores_entries_ten_minutes_after_the_last_invalidation() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let store = RedisStore::builder(server.url()).connect().await.expect("connects");
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    writes_after_eleven_quiet_minutes(&store, &mut conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_stores_entries_ten_minutes_after_the_last_invalidation() {
    let _serial = SERIAL.lock().await;
    let cluster = tokio::task::spawn_blocking(RedisCluster::start).await.expect("the cluster starts");
    let store = RedisStore::cluster_builder(cluster.urls()).connect().await.expect("connects");
    let mut conn = redis::cluster::ClusterClient::new(cluster.urls())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    writes_after_eleven_quiet_minutes(&store, &mut conn).await;
}

/// The link to Redis goes silent twice (bytes dropped, connection open),
/// each time for longer than the connection timeout. Each time the
/// breaker opens on timeouts, the store must replace the connection, and
/// use Redis again once the link is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_goes_silent_twice_is_replaced_twice() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let link = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], server.port()))).await;
    let store = RedisStore::builder(link.url())
        .response_timeout(Duration::from_millis(200))
        .connection_timeout(Duration::from_millis(300))
        .failure_threshold(1)
        .cool_down(Duration::from_millis(100))
        .connect()
        .await
        .expect("connects");
    store.get("k").await.expect("Redis answers");

    for round in 1..=2 {
        let opened = store.breaker_stats().opened;
        link.blackhole(true);
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.breaker_stats().opened == opened {
            let _ = store.get("k").await;
            assert!(Instant::now() < deadline, "round {round}: the breaker never opened");
        }
        // Silent for longer than a connection attempt takes.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        link.blackhole(false);
        let back = Instant::now();
        loop {
            if store.get("k").await.is_ok() {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(10),
                "round {round}: 10 s after the link is back the store still cannot use Redis ({:?}, breaker {:?}, {} connections made)",
                store.get("k").await.err(),
                store.breaker_state(),
                link.total_connections()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "round {round}: Redis used again {:?} after the link came back ({} connections made)",
            back.elapsed(),
            link.total_connections()
        );
        assert_eq!(store.breaker_state(), BreakerState::Closed);
    }
}
