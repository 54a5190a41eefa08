use std::{
    collections::BTreeSet,
    convert::Infallible,
    sync::atomic::{AtomicUsize, Ordering},
};

use http::{Request, Response};
use http_body_util::Full;
use proptest::prelude::*;
use serde::Deserialize;

use super::*;
use crate::{CachePolicy, Clock, MokaStore, RouteMatch, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tree {
    name: String,
    children: Vec<Tree>,
}

fn tree(name: &str) -> Tree {
    Tree {
        name: name.to_owned(),
        children: vec![Tree {
            name: format!("{name}/child"),
            children: Vec::new(),
        }],
    }
}

/// A cache on moka with a clock that moves only when told.
fn cache() -> (Cache, Clock) {
    let clock = Clock::manual();
    let cache = Cache::builder().store(MokaStore::new()).clock(clock.clone()).build().unwrap();
    (cache, clock)
}

fn policy() -> DataPolicy {
    DataPolicy::builder()
        .namespace("trees")
        .ttl("10m")
        .tag("category:acme")
        .build()
        .unwrap()
}

/// Counts its calls and answers `value`.
async fn counted<T>(calls: &AtomicUsize, value: T) -> Result<T, Infallible> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(value)
}

#[tokio::test]
async fn a_miss_loads_and_stores_then_a_hit_does_not_load() {
    let (cache, _) = cache();
    let calls = AtomicUsize::new(0);
    let first = cache
        .get_or_insert_with("a", &policy(), || counted(&calls, tree("a")))
        .await
        .unwrap();
    let second = cache
        .get_or_insert_with("a", &policy(), || counted(&calls, tree("b")))
        .await
        .unwrap();
    assert_eq!((first, second), (tree("a"), tree("a")));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let entry = cache.inner.store.get_stamped(&policy().key("a")).await.unwrap().0.expect("stored");
    assert_eq!(entry.headers.get(&header::CONTENT_TYPE).unwrap(), DATA_CONTENT_TYPE);
    assert_eq!(entry.tags, ["category:acme"]);
    assert_eq!(entry.fresh_for_ms, 600_000);
    assert_eq!(serde_json::from_slice::<Tree>(&entry.body).unwrap(), tree("a"));
}

#[tokio::test]
async fn values_expire_with_the_policy_ttl() {
    let (cache, clock) = cache();
    let calls = AtomicUsize::new(0);
    cache.get_or_insert_with("a", &policy(), || counted(&calls, 1)).await.unwrap();
    clock.advance(Duration::from_secs(599));
    assert_eq!(cache.get_or_insert_with("a", &policy(), || counted(&calls, 2)).await, Ok(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get_or_insert_with("a", &policy(), || counted(&calls, 2)).await, Ok(2));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.get_or_insert_with("a", &policy(), || counted(&calls, 3)).await, Ok(2));
}

#[tokio::test]
async fn a_tag_drops_data_and_responses_together() {
    let (cache, _) = cache();
    let http_policy = CachePolicy::builder().ttl("10m").tag("category:acme").build().unwrap();
    let origin = |_req: Request<()>| async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"page")))) };
    let get = || Request::get("/categories").body(()).unwrap();
    let x_cache = |r: &Response<_>| r.headers()["x-cache"].clone();
    let route = RouteMatch::default();

    assert_eq!(x_cache(&cache.serve(&http_policy, &route, get(), origin).await.unwrap()), "MISS");
    let calls = AtomicUsize::new(0);
    cache.get_or_insert_with("acme", &policy(), || counted(&calls, 1)).await.unwrap();
    let other = DataPolicy::builder().namespace("trees").tag("category:globex").build().unwrap();
    cache.get_or_insert_with("globex", &other, || counted(&calls, 1)).await.unwrap();
    assert_eq!(x_cache(&cache.serve(&http_policy, &route, get(), origin).await.unwrap()), "HIT");

    assert_eq!(
        cache.invalidator().tag("category:acme").await.unwrap(),
        2,
        "the response and the value"
    );
    assert_eq!(x_cache(&cache.serve(&http_policy, &route, get(), origin).await.unwrap()), "MISS");
    assert_eq!(cache.get_or_insert_with("acme", &policy(), || counted(&calls, 2)).await, Ok(2));
    assert_eq!(
        cache.get_or_insert_with("globex", &other, || counted(&calls, 2)).await,
        Ok(1),
        "another tag"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn invalidate_data_drops_one_key() {
    let (cache, _) = cache();
    let calls = AtomicUsize::new(0);
    for key in ["a", "b"] {
        cache.get_or_insert_with(key, &policy(), || counted(&calls, 1)).await.unwrap();
    }
    assert!(cache.invalidate_data("a", &policy()).await.unwrap());
    assert!(!cache.invalidate_data("a", &policy()).await.unwrap());
    assert_eq!(cache.get_or_insert_with("a", &policy(), || counted(&calls, 2)).await, Ok(2));
    assert_eq!(cache.get_or_insert_with("b", &policy(), || counted(&calls, 2)).await, Ok(1));
    let other_namespace = DataPolicy::builder().namespace("other").build().unwrap();
    assert!(!cache.invalidate_data("b", &other_namespace).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_callers_load_once() {
    let (cache, _) = cache();
    let calls = AtomicUsize::new(0);
    let load = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        // Paused time moves on only once every caller waits.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<_, Infallible>(tree("root"))
    };
    let policy = policy();
    let callers = (0..100).map(|_| cache.get_or_insert_with("root", &policy, load));
    let values = futures_util::future::join_all(callers).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(values.into_iter().all(|v| v == Ok(tree("root"))));
    assert_eq!(cache.inner.coalescer.in_flight(), 0);
}

#[tokio::test]
async fn errors_are_returned_and_not_cached() {
    let (cache, _) = cache();
    let calls = AtomicUsize::new(0);
    let failing = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<u32, _>("database down")
    };
    assert_eq!(cache.get_or_insert_with("a", &policy(), failing).await, Err("database down"));
    assert_eq!(cache.inner.store.get_stamped(&policy().key("a")).await.unwrap().0, None);
    let ok = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, &str>(7)
    };
    assert_eq!(cache.get_or_insert_with("a", &policy(), ok).await, Ok(7));
    assert_eq!(cache.get_or_insert_with("a", &policy(), failing).await, Ok(7));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn after_the_leaders_error_waiters_load_for_themselves() {
    let (cache, _) = cache();
    let calls = AtomicUsize::new(0);
    let policy = policy();
    let leader = async {
        cache
            .get_or_insert_with("a", &policy, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                Err::<u32, _>("timeout")
            })
            .await
    };
    let waiter = || {
        cache.get_or_insert_with("a", &policy, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<u32, &str>(5)
        })
    };
    let started = tokio::time::Instant::now();
    let (leader, first, second) = tokio::join!(leader, waiter(), waiter());
    assert_eq!((leader, first, second), (Err("timeout"), Ok(5), Ok(5)));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "released by the error, not by the coalescing timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_leader_hands_over_to_a_waiter() {
    let (cache, _) = cache();
    let leader = tokio::spawn({
        let cache = cache.clone();
        async move {
            cache
                .get_or_insert_with("a", &policy(), std::future::pending::<Result<u32, Infallible>>)
                .await
        }
    });
    tokio::task::yield_now().await;
    assert_eq!(cache.inner.coalescer.in_flight(), 1, "the first call leads");
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get_or_insert_with("a", &policy(), || async { Ok::<_, Infallible>(9) }).await }
    });
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    leader.abort();
    assert_eq!(waiter.await.unwrap(), Ok(9));
    assert!(started.elapsed() < Duration::from_secs(1), "handed over, not timed out");
    let calls = AtomicUsize::new(0);
    assert_eq!(cache.get_or_insert_with("a", &policy(), || counted(&calls, 1)).await, Ok(9));
}

#[tokio::test]
async fn a_value_of_another_type_is_a_miss_and_overwritten() {
    let (cache, _) = cache();
    let calls = AtomicUsize::new(0);
    cache
        .get_or_insert_with("a", &policy(), || counted(&calls, "version 1".to_owned()))
        .await
        .unwrap();
    // Version 2 of the application reads the key as another type.
    assert_eq!(
        cache.get_or_insert_with("a", &policy(), || counted(&calls, tree("v2"))).await,
        Ok(tree("v2"))
    );
    assert_eq!(
        cache.get_or_insert_with("a", &policy(), || counted(&calls, tree("v3"))).await,
        Ok(tree("v2"))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_response_at_a_data_key_is_a_miss() {
    let (cache, clock) = cache();
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let foreign = CachedEntry::new(StatusCode::OK, headers, Bytes::from_static(b"1"), clock.now_ms(), 600_000);
    let key = policy().key("a");
    cache
        .inner
        .store
        .put(&key, Arc::new(foreign), Duration::from_secs(600))
        .await
        .unwrap();
    let calls = AtomicUsize::new(0);
    assert_eq!(cache.get_or_insert_with("a", &policy(), || counted(&calls, 2)).await, Ok(2));
    assert_eq!(cache.get_or_insert_with("a", &policy(), || counted(&calls, 3)).await, Ok(2));
}

/// A store whose every operation fails.
struct Broken;

impl Store for Broken {
    async fn get(&self, _: &str) -> Result<Option<Arc<CachedEntry>>, StoreError> {
        Err(StoreError::backend("down"))
    }
    async fn put(&self, _: &str, _: Arc<CachedEntry>, _: Duration) -> Result<(), StoreError> {
        Err(StoreError::backend("down"))
    }
    async fn delete(&self, _: &str) -> Result<bool, StoreError> {
        Err(StoreError::backend("down"))
    }
    async fn invalidate_tags(&self, _: &[String]) -> Result<u64, StoreError> {
        Err(StoreError::backend("down"))
    }
    async fn invalidate_prefix(&self, _: &str) -> Result<u64, StoreError> {
        Err(StoreError::backend("down"))
    }
}

#[tokio::test]
async fn a_failing_store_degrades_to_loading() {
    let cache = Cache::new(Broken);
    let calls = AtomicUsize::new(0);
    for i in 0..3 {
        assert_eq!(cache.get_or_insert_with("a", &policy(), || counted(&calls, i)).await, Ok(i));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        cache.invalidate_data("a", &policy()).await.is_err(),
        "invalidation reports the store's error"
    );
}

#[tokio::test]
async fn a_load_that_overlaps_an_invalidation_is_not_stored() {
    let (cache, _) = cache();
    let calls = AtomicUsize::new(0);
    let load = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        // The data changes while it is being read.
        cache.invalidator().tag("category:acme").await.unwrap();
        Ok::<_, Infallible>(1)
    };
    assert_eq!(cache.get_or_insert_with("a", &policy(), load).await, Ok(1));
    assert_eq!(cache.get_or_insert_with("a", &policy(), || counted(&calls, 2)).await, Ok(2));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn values_that_cannot_be_serialized_are_returned_not_stored() {
    let (cache, _) = cache();
    // JSON object keys must be strings.
    let map: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
    let value = cache
        .get_or_insert_with("a", &policy(), || async { Ok::<_, Infallible>(map.clone()) })
        .await
        .unwrap();
    assert_eq!(value, map);
    assert_eq!(cache.inner.store.get_stamped(&policy().key("a")).await.unwrap().0, None);
}

#[test]
fn the_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let cache = Cache::new(MokaStore::new());
    let policy = policy();
    let future = cache.get_or_insert_with("a", &policy, || async { Ok::<_, Infallible>(tree("a")) });
    assert_send(&future);
}

#[test]
fn keys_are_readable_and_namespaced() {
    assert_eq!(policy().key("acme"), "data::trees:acme");
    assert_eq!(policy().prefix(), "data::trees:");
    let odd = DataPolicy::builder().namespace("a:b").build().unwrap();
    assert_eq!(odd.key("c:d/e f"), "data::a%3Ab:c%3Ad/e%20f");
    assert_eq!(DataPolicy::builder().build().unwrap().key(""), "data::default:");
}

#[test]
fn data_keys_are_never_http_keys() {
    // An HTTP policy in the namespace `data`.
    let http = CachePolicy::builder().namespace("data").build().unwrap();
    let parts = Request::get("/x").body(()).unwrap().into_parts().0;
    let http_key = http.key().build(&parts);
    assert!(http_key.as_str().starts_with("data:1:"), "{http_key}");
    assert!(!http_key.as_str().starts_with(DATA_KEY_HEAD));
}

#[test]
fn long_keys_are_hashed_and_stay_distinct() {
    let long = "k".repeat(400);
    let a = policy().key(&format!("{long}a"));
    let b = policy().key(&format!("{long}b"));
    assert_ne!(a, b);
    assert!(a.len() <= crate::key::MAX_KEY_LEN);
    assert!(a.starts_with(policy().prefix()));
    assert!(a.contains('#'));
}

#[test]
fn build_checks_every_setting() {
    let field = |r: Result<DataPolicy, ConfigError>| match r {
        Err(ConfigError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    };
    assert_eq!(field(DataPolicy::builder().ttl("ten minutes").build()), "ttl");
    assert_eq!(field(DataPolicy::builder().ttl(Duration::ZERO).build()), "ttl");
    assert_eq!(field(DataPolicy::builder().coalesce_timeout("0").build()), "coalesce_timeout");
    assert_eq!(field(DataPolicy::builder().namespace("").build()), "namespace");
    assert_eq!(field(DataPolicy::builder().namespace(":".repeat(40)).build()), "namespace");
    let p = DataPolicy::builder().tags(["a", "b"]).tag("c").build().unwrap();
    assert_eq!(
        (p.ttl(), p.tags(), p.namespace()),
        (DEFAULT_DATA_TTL, &["a".to_owned(), "b".into(), "c".into()][..], "default")
    );
    assert_eq!(p.coalesce_timeout(), DEFAULT_COALESCE_TIMEOUT);
}

fn component() -> impl Strategy<Value = String> {
    // Separators, escapes and hash marks are the interesting bytes.
    proptest::string::string_regex("[a-c:%#=/ é]{0,6}").unwrap()
}

proptest! {
    #[test]
    fn different_pairs_never_share_a_key(pairs in proptest::collection::vec((component(), component()), 1..20)) {
        let mut seen = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for (namespace, key) in pairs {
            let Ok(policy) = DataPolicy::builder().namespace(namespace.clone()).build() else { continue };
            if seen.insert((namespace, key.clone())) {
                prop_assert!(keys.insert(policy.key(&key)));
            }
        }
    }
}
