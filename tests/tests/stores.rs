//! The store conformance suite against every store.

use cache_core::{Cache, Clock, MokaStore, RedisStore, Store, TieredStore};
use std::time::Duration;

use cache_tests::{
    Adapter,
    axum_adapter::Axum,
    conformance,
    origin::Origin,
    redis_server::{RedisCluster, RedisServer, free_port},
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
    foreign_values_are_misses_and_overwritten(&store, &server.url()).await;
}

/// `rediss://`: the store speaks TLS to a server whose certificate a given
/// CA issued, and refuses a server it cannot verify.
#[tokio::test]
async fn redis_store_over_tls_conforms() {
    let (server, ca) = RedisServer::start_tls();
    assert!(server.url().starts_with("rediss://"));
    let untrusted = RedisStore::builder(server.url()).connect().await;
    assert!(untrusted.is_err(), "a certificate from an unknown CA is refused");
    let store = RedisStore::builder(server.url())
        .root_certificate_pem(ca)
        .connect()
        .await
        .expect("connects over TLS");
    conformance::run(store, "").await;
}

#[tokio::test]
async fn redis_cluster_store_conforms() {
    let cluster = RedisCluster::start();
    let store = RedisStore::cluster_builder(cluster.urls())
        .prefix("app:")
        .connect()
        .await
        .expect("connects");
    conformance::run(store.clone(), "").await;
    // Entries spread over the masters, and tags and their entries sit on
    // different slots: the suite's tag and prefix checks cross slots.
    foreign_values_are_misses_and_overwritten(&store, &cluster.urls()[0]).await;
}

#[tokio::test]
async fn tiered_store_conforms() {
    let server = RedisServer::start();
    let l2 = RedisStore::builder(server.url()).connect().await.expect("connects");
    let store = TieredStore::builder(l2).build().expect("a runtime");
    conformance::run(store, "").await;
}

#[tokio::test]
async fn tiered_store_on_a_cluster_conforms() {
    let cluster = RedisCluster::start();
    let l2 = RedisStore::cluster_builder(cluster.urls()).connect().await.expect("connects");
    let store = TieredStore::builder(l2).build().expect("a runtime");
    conformance::run(store, "").await;
}

/// Foreign bytes, or a value of another type, at an entry's key read as a
/// miss, and the next store overwrites them.
async fn foreign_values_are_misses_and_overwritten(store: &RedisStore, url: &str) {
    let client = redis::Client::open(url).unwrap();
    for (i, foreign) in ["string", "set"].into_iter().enumerate() {
        let key = format!("foreign-{i}");
        store
            .put(&key, conformance::sample_entry("mine"), Duration::from_secs(60))
            .await
            .unwrap();
        let name = entry_name(&client, &key).await;
        let mut conn = node_for(&client, &name).await;
        let _: () = redis::cmd("DEL").arg(&name).query_async(&mut conn).await.unwrap();
        let _: () = match foreign {
            "string" => redis::cmd("SET")
                .arg(&name)
                .arg("not an entry")
                .query_async(&mut conn)
                .await
                .unwrap(),
            _ => redis::cmd("SADD").arg(&name).arg("member").query_async(&mut conn).await.unwrap(),
        };
        assert!(store.get(&key).await.unwrap().is_none(), "{foreign} at an entry's key is a miss");
        store
            .put(&key, conformance::sample_entry("again"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.get(&key).await.unwrap().unwrap().body, "again");
    }
}

/// The Redis key an entry is stored under, found with `SCAN` (on every
/// node of a cluster).
async fn entry_name(client: &redis::Client, key: &str) -> String {
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let nodes: Vec<String> = match redis::cmd("CLUSTER").arg("NODES").query_async::<String>(&mut conn).await {
        Ok(nodes) => nodes
            .lines()
            .filter(|l| l.contains("master"))
            .map(|l| format!("redis://{}", l.split_whitespace().nth(1).unwrap().split('@').next().unwrap()))
            .collect(),
        // Not a cluster: the one server.
        Err(_) => vec![String::new()],
    };
    for node in nodes {
        let mut conn = if node.is_empty() {
            client.get_multiplexed_async_connection().await.unwrap()
        } else {
            redis::Client::open(node).unwrap().get_multiplexed_async_connection().await.unwrap()
        };
        let names: Vec<String> = redis::cmd("KEYS").arg(format!("*e:{key}")).query_async(&mut conn).await.unwrap();
        if let Some(name) = names.into_iter().next() {
            return name;
        }
    }
    panic!("no entry stored for {key}");
}

/// A connection to the node holding `name`.
async fn node_for(client: &redis::Client, name: &str) -> redis::aio::MultiplexedConnection {
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    match redis::cmd("CLUSTER").arg("KEYSLOT").arg(name).query_async::<u16>(&mut conn).await {
        Err(_) => conn,
        Ok(slot) => {
            let slots: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut conn).await.unwrap();
            for range in slots {
                let redis::Value::Array(range) = range else { continue };
                let (start, end): (u16, u16) = (
                    redis::from_redis_value_ref(&range[0]).unwrap(),
                    redis::from_redis_value_ref(&range[1]).unwrap(),
                );
                if (start..=end).contains(&slot) {
                    let redis::Value::Array(master) = &range[2] else { unreachable!() };
                    let port: u16 = redis::from_redis_value_ref(&master[1]).unwrap();
                    return redis::Client::open(format!("redis://127.0.0.1:{port}"))
                        .unwrap()
                        .get_multiplexed_async_connection()
                        .await
                        .unwrap();
                }
            }
            panic!("no node serves slot {slot}");
        }
    }
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

/// Tag bookkeeping expires with its entries; a 1 MiB value fits the
/// default timeouts; compressible bodies are stored compressed.
#[tokio::test]
async fn redis_store_bookkeeping_expires_and_large_values_fit() {
    let server = RedisServer::start();
    let store = RedisStore::builder(server.url()).connect().await.expect("connects");
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pttl_conn = conn.clone();
    let pttl = |name: String| {
        let mut conn = pttl_conn.clone();
        async move { redis::cmd("PTTL").arg(name).query_async::<i64>(&mut conn).await.unwrap() }
    };

    store
        .put("short", conformance::sample_entry("s"), Duration::from_secs(30))
        .await
        .unwrap();
    store
        .put("long", conformance::sample_entry("l"), Duration::from_secs(90))
        .await
        .unwrap();
    let tag_set: Vec<String> = redis::cmd("KEYS").arg("cache:*}t:sample").query_async(&mut conn).await.unwrap();
    let tag_ttl = pttl(tag_set[0].clone()).await;
    assert!(
        (80_000..=90_000).contains(&tag_ttl),
        "the tag set lives as long as its longest entry: {tag_ttl} ms"
    );
    let own: Vec<String> = redis::cmd("KEYS").arg("cache:*}o:short").query_async(&mut conn).await.unwrap();
    let own_ttl = pttl(own[0].clone()).await;
    assert!(
        (20_000..=30_000).contains(&own_ttl),
        "an entry's tag set expires with it: {own_ttl} ms"
    );

    // 1 MiB that does not compress, and 1 MiB that does.
    let mut noise = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    for (name, body) in [("noise", noise), ("text", b"product ".repeat(1 << 17))] {
        let mut entry = (*conformance::sample_entry("")).clone();
        entry.body = body.clone().into();
        store.put(name, std::sync::Arc::new(entry), Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.get(name).await.unwrap().expect("stored").body, body);
        let stored: Vec<String> = redis::cmd("KEYS")
            .arg(format!("cache:*}}e:{name}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        let len: usize = redis::cmd("STRLEN").arg(&stored[0]).query_async(&mut conn).await.unwrap();
        if name == "text" {
            assert!(len < body.len() / 10, "a compressible body is stored compressed: {len} bytes");
        } else {
            assert!(len > body.len(), "noise is stored as it is: {len} bytes");
        }
    }
}

/// An ACL user and a database number from the URL.
#[tokio::test]
async fn redis_acl_user_and_database_from_the_url() {
    let server = RedisServer::start_with(&["--user", "cacher", "on", ">acl-pass", "~*", "&*", "+@all"]);
    let url = server.url().replace("redis://", "redis://cacher:acl-pass@") + "/3";
    let store = RedisStore::builder(&url).connect().await.expect("connects as the ACL user");
    assert!(!format!("{store:?}").contains("acl-pass"));
    store
        .put("k", conformance::sample_entry("in db 3"), Duration::from_secs(60))
        .await
        .unwrap();
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let in_db3: Vec<String> = redis::cmd("KEYS").arg("*}e:k").query_async(&mut conn).await.unwrap();
    assert_eq!(in_db3.len(), 1, "the entry is in database 3");
    let wrong = server.url().replace("redis://", "redis://cacher:wrong@");
    assert!(RedisStore::builder(wrong).connect().await.is_err(), "a wrong password is refused");
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

/// The harness notices a port another test's server holds, instead of
/// handing out that server (which is how parallel tests would collide).
#[test]
fn a_taken_port_is_not_mistaken_for_a_new_server() {
    let first = RedisServer::start();
    let port = first.port();
    let second = std::panic::catch_unwind(|| RedisServer::start_on(port, &[]));
    assert!(second.is_err(), "a second server on port {port} was reported as started");
}
