//! Small helpers shared by the adapter-specific tests.

use std::sync::Arc;

use cache_core::{Cache, CachePolicy, CachedEntry, Clock, store::Stamp};

use crate::Server;

/// A policy with `ttl` and the tag `plain:{id}`.
pub fn policy(ttl: &str) -> CachePolicy {
    CachePolicy::builder().ttl(ttl).tag("plain:{id}").build().expect("a valid policy")
}

/// A cache on the default store with a manual clock.
pub fn manual_cache() -> Cache {
    Cache::builder().clock(Clock::manual()).build().expect("a valid cache")
}

/// The `Cache-Status` of a GET of `path`, checking that at most one cache
/// layer answered.
pub async fn cache_status(s: &Server, path: &str) -> String {
    let r = s.get(path).send().await.expect("an answer");
    let values: Vec<_> = r
        .headers()
        .get_all("cache-status")
        .iter()
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .collect();
    assert!(values.len() <= 1, "one cache layer answers: {values:?}");
    values.into_iter().next().unwrap_or_default()
}

/// Checks an app whose one cache layer has a default TTL of 60 s, an
/// override of 1 h for `/plain/{id}` (tag `plain:{id}`), and no policy for
/// `/uncached`; `/etag` uses the default.
pub async fn assert_route_overrides(s: &Server) {
    cache_status(s, "/plain/1").await;
    assert_eq!(cache_status(s, "/plain/1").await, "cache; hit; ttl=3600");
    cache_status(s, "/etag").await;
    assert_eq!(cache_status(s, "/etag").await, "cache; hit; ttl=60");
    assert_eq!(cache_status(s, "/uncached").await, "");
    assert_eq!(cache_status(s, "/uncached").await, "");
    assert_eq!(s.origin.calls("/uncached"), 2);
    // The override's tag template got the path parameter.
    assert_eq!(s.cache.invalidator().tag("plain:1").await.expect("the store invalidates"), 1);
    assert_eq!(s.origin.calls("/plain/1"), 1);
}

/// An entry as the engine stores it after a fetch that began at `stamp`:
/// `body`, stored now and fresh for a minute, tagged `tag`.
pub fn fetched_entry(body: &str, tag: &str, stamp: Stamp) -> Arc<CachedEntry> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    let mut entry = CachedEntry::new(
        http::StatusCode::OK,
        http::HeaderMap::new(),
        bytes::Bytes::from(body.to_owned()),
        u64::try_from(now.as_millis()).expect("a sane clock"),
        60_000,
    );
    entry.tags = vec![tag.to_owned()];
    Arc::new(entry.with_stamp(stamp))
}

/// The body of an entry a store answered with, or `a miss`.
pub fn body_of(found: Option<Arc<CachedEntry>>) -> String {
    found.map_or_else(|| "a miss".to_owned(), |e| String::from_utf8_lossy(&e.body).into_owned())
}
