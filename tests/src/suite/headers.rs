//! The headers the cache adds and reads: `Cache-Status`, CDN headers, downstream `Cache-Control`.

use super::*;

/// `Cache-Status` keeps the members of caches further in and adds this
/// cache's last (RFC 9211 §2), on the miss and on hits.
pub async fn cache_status_appends_its_member<A: Adapter>() {
    let s = start::<A>().await;
    let r = get(&s, "/behind-cdn").await;
    assert_eq!(
        header(&r, "cache-status"),
        "inner; fwd=uri-miss, cache; fwd=uri-miss; fwd-status=200; stored"
    );
    assert_eq!(header(&r, "x-cache"), "MISS");
    let r = get(&s, "/behind-cdn").await;
    assert_eq!(header(&r, "cache-status"), "inner; fwd=uri-miss, cache; hit; ttl=60");
    assert_eq!(r.headers().get_all("cache-status").iter().count(), 1);
}

/// A `Cache-Control` or `Vary` the cache cannot fully parse makes the
/// response not storable: what it could not read might forbid sharing.
/// `obs-text` in a quoted string is valid, and `private` there is read.
pub async fn unparseable_directives_fail_closed<A: Adapter>() {
    let s = start::<A>().await;
    for field in ["cc", "cc-quoted", "vary"] {
        let path = format!("/unparseable/{field}");
        let r = s.get(&path).header("accept-language", "fr").send().await.unwrap();
        assert_eq!(
            header(&r, "cache-status"),
            "cache; fwd=uri-miss; fwd-status=200",
            "{field}: not stored"
        );
        let r = s.get(&path).header("accept-language", "de").send().await.unwrap();
        assert_eq!(header(&r, "x-cache"), "MISS", "{field}");
        assert_eq!(
            r.text().await.unwrap(),
            "for Some(\"de\")",
            "{field}: never another client's response"
        );
    }
}

/// Tags in `Surrogate-Key` and `Cache-Tag` and the policy's
/// `CDN-Cache-Control`, for a CDN in front, on stored and served responses.
pub async fn tags_and_cdn_headers_go_downstream<A: Adapter>() {
    let s = start::<A>().await;
    for x_cache in ["MISS", "HIT"] {
        let r = get(&s, "/tagged/7").await;
        assert_eq!(header(&r, "x-cache"), x_cache);
        // Sorted; the internal URI tag and a tag with a space left out.
        assert_eq!(header(&r, "surrogate-key"), "group item:7");
        assert_eq!(header(&r, "cache-tag"), "group,item:7");
        assert_eq!(header(&r, "cdn-cache-control"), "max-age=3600");
    }
    let r = get(&s, "/plain/1").await;
    assert!(r.headers().get("surrogate-key").is_none(), "only where the policy asks");
}

/// A policy in RFC 9111 mode that targets `CDN-Cache-Control` follows it
/// over `Cache-Control` (RFC 9213), which still reaches the client.
pub async fn cdn_cache_control_target<A: Adapter>() {
    let s = start::<A>().await;
    assert_eq!(fetch(&s, "/cdn-target").await.1, "MISS");
    let r = get(&s, "/cdn-target").await;
    assert_eq!(header(&r, "x-cache"), "HIT");
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert_eq!(s.origin.calls("/cdn-target"), 1);
}

/// With `debug_keys`, `Cache-Status` names the key (RFC 9211 `key`); never
/// without it.
pub async fn debug_keys_in_cache_status<A: Adapter>() {
    let cache = Cache::builder()
        .clock(Clock::manual())
        .debug_keys(true)
        .build()
        .expect("a valid cache");
    let s = A::start(cache, Origin::default()).await;
    assert_eq!(
        fetch(&s, "/plain/1").await.2,
        "cache; fwd=uri-miss; fwd-status=200; stored; key=\"http:1::/plain/1?::\""
    );
    assert_eq!(fetch(&s, "/plain/1").await.2, "cache; hit; ttl=60; key=\"http:1::/plain/1?::\"");
    let plain = start::<A>().await;
    assert_eq!(fetch(&plain, "/plain/1").await.2, "cache; fwd=uri-miss; fwd-status=200; stored");
}

/// The policy's downstream `Cache-Control` replaces the origin's on stored
/// responses, and never on responses that could not be stored.
pub async fn downstream_cache_control<A: Adapter>() {
    let s = start::<A>().await;
    for expected in ["MISS", "HIT"] {
        let r = get(&s, "/downstream").await;
        assert_eq!(header(&r, "x-cache"), expected);
        assert_eq!(header(&r, "cache-control"), "public, max-age=30");
    }
    let r = get(&s, "/downstream-private").await;
    assert_eq!(header(&r, "cache-control"), "private");
}
