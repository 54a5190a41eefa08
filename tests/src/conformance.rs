//! The store conformance suite: one generic body that every [`Store`]
//! must pass.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use cache_core::{CachedEntry, Store};
use http::{HeaderMap, HeaderValue, StatusCode, header};

const TTL: Duration = Duration::from_secs(300);

fn entry(body: &'static str, tags: &[&str]) -> Arc<CachedEntry> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let mut e = CachedEntry::new(
        StatusCode::OK,
        headers,
        Bytes::from_static(body.as_bytes()),
        1_700_000_000_000,
        60_000,
    );
    e.tags = tags.iter().map(|t| (*t).to_owned()).collect();
    e.vary = vec![(header::ACCEPT_LANGUAGE, Some(HeaderValue::from_static("en")))];
    Arc::new(e)
}

/// An entry with `body`, for tests that need any entry.
pub fn sample_entry(body: &'static str) -> Arc<CachedEntry> {
    entry(body, &["sample"])
}

async fn body_at(store: &impl Store, key: &str) -> Option<Bytes> {
    let entry = store.get(key).await.expect("the store answers");
    if let Some(now) = store.get_now(key) {
        assert_eq!(Some(&now), entry.as_ref(), "get_now and get disagree at {key}");
    }
    entry.map(|e| e.body.clone())
}

/// Runs every check against `store`, which must start empty. Keys are
/// prefixed with `prefix` so that one store can run the suite twice.
pub async fn run(store: impl Store, prefix: &str) {
    let k = |name: &str| format!("{prefix}{name}");
    assert_eq!(body_at(&store, &k("missing")).await, None);

    // put, get, replace: the whole entry comes back.
    let first = entry("one", &["t:a"]);
    store.put(&k("a"), Arc::clone(&first), TTL).await.unwrap();
    assert_eq!(store.get(&k("a")).await.unwrap().as_deref(), Some(&*first));
    store.put(&k("a"), entry("one again", &["t:a"]), TTL).await.unwrap();
    assert_eq!(body_at(&store, &k("a")).await.as_deref(), Some(&b"one again"[..]));

    // delete says whether there was an entry.
    assert!(store.delete(&k("a")).await.unwrap());
    assert!(!store.delete(&k("a")).await.unwrap());
    assert_eq!(body_at(&store, &k("a")).await, None);

    // Tags drop exactly the entries that carry them.
    store.put(&k("p1"), entry("p1", &["product:1", "products"]), TTL).await.unwrap();
    store.put(&k("p2"), entry("p2", &["product:2", "products"]), TTL).await.unwrap();
    store.put(&k("other"), entry("other", &["categories"]), TTL).await.unwrap();
    assert_eq!(store.invalidate_tags(&["product:1".to_owned()]).await.unwrap(), 1);
    assert_eq!(body_at(&store, &k("p1")).await, None);
    assert_eq!(body_at(&store, &k("p2")).await.as_deref(), Some(&b"p2"[..]));
    assert_eq!(
        store.invalidate_tags(&["products".to_owned(), "nothing".to_owned()]).await.unwrap(),
        1
    );
    assert_eq!(body_at(&store, &k("p2")).await, None);
    assert_eq!(body_at(&store, &k("other")).await.as_deref(), Some(&b"other"[..]));
    assert_eq!(
        store.invalidate_tags(&["products".to_owned()]).await.unwrap(),
        0,
        "a tag is gone once invalidated"
    );

    // An entry replaced by one without the tag is not dropped by it.
    store.put(&k("r"), entry("old", &["old-tag"]), TTL).await.unwrap();
    store.put(&k("r"), entry("new", &["new-tag"]), TTL).await.unwrap();
    assert_eq!(store.invalidate_tags(&["old-tag".to_owned()]).await.unwrap(), 0);
    assert_eq!(body_at(&store, &k("r")).await.as_deref(), Some(&b"new"[..]));
    assert_eq!(store.invalidate_tags(&["new-tag".to_owned()]).await.unwrap(), 1);

    // Prefixes drop the keys that start with them, and only those.
    for name in ["x:1", "x:2", "x:22", "y:1"] {
        store.put(&k(name), entry("x", &[]), TTL).await.unwrap();
    }
    assert_eq!(store.invalidate_prefix(&k("x:2")).await.unwrap(), 2);
    assert_eq!(body_at(&store, &k("x:1")).await.as_deref(), Some(&b"x"[..]));
    assert_eq!(store.invalidate_prefix(&k("x:")).await.unwrap(), 1);
    assert_eq!(body_at(&store, &k("y:1")).await.as_deref(), Some(&b"x"[..]));

    // Keys are opaque bytes: separators and escapes do not alias.
    store.put(&k("a:b"), entry("colon", &[]), TTL).await.unwrap();
    store.put(&k("a%3Ab"), entry("escaped", &[]), TTL).await.unwrap();
    assert_eq!(body_at(&store, &k("a:b")).await.as_deref(), Some(&b"colon"[..]));
    assert_eq!(body_at(&store, &k("a%3Ab")).await.as_deref(), Some(&b"escaped"[..]));
}
