//! The headers the cache adds and reads: `Cache-Status`, CDN headers, downstream `Cache-Control`.

use cache_core::CacheMode;
use http::{
    HeaderName, HeaderValue,
    header::{ACCEPT_LANGUAGE, CACHE_CONTROL, VARY},
};

use super::*;
use crate::{
    handlers::versioned,
    origin::{OriginRequest, OriginResponse, text},
};

/// `Cache-Status` keeps the members of caches further in and adds this
/// cache's last (RFC 9211 §2), on the miss and on hits.
pub async fn cache_status_appends_its_member<A: Adapter>() {
    let s = App::new()
        .route("/behind-cdn", p().ttl("60s"), |_, _| async {
            text("behind").header(HeaderName::from_static("cache-status"), "inner; fwd=uri-miss")
        })
        .start::<A>()
        .await;
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

/// `/unparseable/{field}`: `for {accept-language:?}`, with a
/// `Cache-Control` (`cc`, `cc-quoted`) or `Vary` (`vary`) that holds a byte
/// outside ASCII, bare (where the syntax has no room for one) or quoted,
/// next to a directive or name that matters.
async fn unparseable(req: OriginRequest, _origin: Origin) -> OriginResponse {
    let (name, value): (HeaderName, &[u8]) = match req.path.trim_start_matches("/unparseable/") {
        "cc" => (CACHE_CONTROL, b"private, x=\xc3\xbc"),
        "cc-quoted" => (CACHE_CONTROL, b"private, x=\"\xc3\xbc\""),
        _ => (VARY, b"accept-language, x-\xc3\xbc"),
    };
    let mut r = text(format!("for {:?}", req.headers.get(ACCEPT_LANGUAGE)));
    r.headers
        .insert(name, HeaderValue::from_bytes(value).expect("obs-text is a valid header value"));
    r
}

/// A `Cache-Control` or `Vary` the cache cannot fully parse makes the
/// response not storable: what it could not read might forbid sharing.
/// `obs-text` in a quoted string is valid, and `private` there is read.
pub async fn unparseable_directives_fail_closed<A: Adapter>() {
    let s = App::new()
        .route("/unparseable/{field}", p().ttl("60s"), unparseable)
        .start::<A>()
        .await;
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
    let s = with_plain(App::new())
        .route(
            "/tagged/{id}",
            p().ttl("60s")
                .tag("item:{id}")
                .tag("group")
                .tag("two words")
                .surrogate_key_header()
                .cache_tag_header()
                .downstream_cdn_cache_control("max-age=3600"),
            versioned,
        )
        .start::<A>()
        .await;
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
    let s = App::new()
        .route(
            "/cdn-target",
            p().mode(CacheMode::Rfc9111).cdn_cache_control_target(true),
            |_, _| async {
                text("cdn")
                    .header(CACHE_CONTROL, "no-store")
                    .header(HeaderName::from_static("cdn-cache-control"), "max-age=60")
            },
        )
        .start::<A>()
        .await;
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
    let s = with_plain(App::new()).start_with::<A>(cache).await;
    assert_eq!(
        fetch(&s, "/plain/1").await.2,
        "cache; fwd=uri-miss; fwd-status=200; stored; key=\"http:1::/plain/1?::\""
    );
    assert_eq!(fetch(&s, "/plain/1").await.2, "cache; hit; ttl=60; key=\"http:1::/plain/1?::\"");
    let plain = with_plain(App::new()).start::<A>().await;
    assert_eq!(fetch(&plain, "/plain/1").await.2, "cache; fwd=uri-miss; fwd-status=200; stored");
}

/// The policy's downstream `Cache-Control` replaces the origin's on stored
/// responses, and never on responses that could not be stored.
pub async fn downstream_cache_control<A: Adapter>() {
    let policy = || p().ttl("60s").downstream_cache_control("public, max-age=30");
    let s = App::new()
        .route("/downstream", policy(), |_, _| async {
            text("downstream").header(CACHE_CONTROL, "max-age=5")
        })
        .route("/downstream-private", policy(), |_, _| async {
            text("downstream-private").header(CACHE_CONTROL, "private")
        })
        .start::<A>()
        .await;
    for expected in ["MISS", "HIT"] {
        let r = get(&s, "/downstream").await;
        assert_eq!(header(&r, "x-cache"), expected);
        assert_eq!(header(&r, "cache-control"), "public, max-age=30");
    }
    let r = get(&s, "/downstream-private").await;
    assert_eq!(header(&r, "cache-control"), "private");
}
