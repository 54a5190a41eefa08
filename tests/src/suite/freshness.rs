//! TTLs, expiry, stale answers and early refresh.

use cache_core::{CacheHints, CacheMode};
use http::{HeaderName, header::CACHE_CONTROL};

use super::*;
use crate::{
    handlers::versioned,
    origin::{OriginResponse, text},
};

/// A `503` from an origin that is down.
fn origin_down() -> OriginResponse {
    let mut r = text("origin down");
    r.status = StatusCode::SERVICE_UNAVAILABLE;
    r
}

/// TTL and tags set by a handler through `CacheHints`.
pub async fn handler_hints_set_ttl_and_tags<A: Adapter>() {
    let s = App::new()
        .route("/hinted", p().ttl("60s"), |_, origin| async move {
            let mut r = text(format!("hinted v{}", origin.version()));
            r.hints = Some(CacheHints::new().tag("hinted-tag").ttl(Duration::from_secs(5)));
            r
        })
        .start::<A>()
        .await;
    fetch(&s, "/hinted").await;
    assert_eq!(fetch(&s, "/hinted").await.2, "cache; hit; ttl=5");
    s.cache.clock().advance(Duration::from_secs(5));
    let (_, x, cs, _) = fetch(&s, "/hinted").await;
    assert_eq!((x.as_str(), cs.as_str()), ("MISS", "cache; fwd=stale; fwd-status=200; stored"));
    assert_eq!(s.cache.invalidator().tag("hinted-tag").await.unwrap(), 1);
    assert_eq!(fetch(&s, "/hinted").await.1, "MISS");
    assert_eq!(s.origin.calls("/hinted"), 3);
}

/// Entries are fresh for their TTL and then fetched again.
pub async fn entries_expire<A: Adapter>() {
    let s = with_plain(App::new()).start::<A>().await;
    fetch(&s, "/plain/9").await;
    s.cache.clock().advance(Duration::from_secs(59));
    assert_eq!(fetch(&s, "/plain/9").await.2, "cache; hit; ttl=1");
    s.cache.clock().advance(Duration::from_secs(1));
    assert_eq!(fetch(&s, "/plain/9").await.2, "cache; fwd=stale; fwd-status=200; stored");
    assert_eq!(fetch(&s, "/plain/9").await.2, "cache; hit; ttl=60");
    assert_eq!(s.origin.calls("/plain/9"), 2);
}

/// Inside the stale-while-revalidate window, the stale entry answers at once
/// and one background refresh stores the new response (adapters that refresh
/// in the background); otherwise the request that starts the refresh waits
/// for it, and every request meanwhile answers stale at once.
pub async fn stale_while_revalidate<A: Adapter>() {
    let s = with_plain(App::new())
        .route(
            "/swr/{id}",
            p().ttl("60s").stale_while_revalidate("30s"),
            |req, origin| async move {
                // The version when the request arrives; the answer once the
                // gate is open.
                let version = origin.version();
                origin.wait_for_gate().await;
                text(format!("{} v{version}", req.path))
            },
        )
        .start::<A>()
        .await;
    assert_eq!(fetch(&s, "/swr/1").await.1, "MISS");
    s.cache.clock().advance(Duration::from_secs(65));
    new_origin_version(&s).await;

    if !A::BACKGROUND_REFRESH {
        s.origin.close();
        let refresher = tokio::spawn(s.get("/swr/1").send());
        until("the refresh reaches the origin", || s.origin.calls("/swr/1") == 2).await;
        let stale = tokio::time::timeout(PATIENCE, join_all((0..20).map(|_| fetch(&s, "/swr/1"))))
            .await
            .expect("stale hits do not wait for the refresh");
        for (status, x_cache, cache_status, body) in stale {
            assert_eq!(status, StatusCode::OK);
            assert_eq!((x_cache.as_str(), body.as_str()), ("STALE", "/swr/1 v0"));
            assert_eq!(cache_status, "cache; hit; ttl=-5");
        }
        s.origin.open();
        let r = tokio::time::timeout(PATIENCE, refresher).await.unwrap().unwrap().unwrap();
        assert_eq!(header(&r, "x-cache"), "MISS");
        assert_eq!(header(&r, "cache-status"), "cache; fwd=stale; fwd-status=200; stored");
        assert_eq!(r.text().await.unwrap(), "/swr/1 v1");
        assert_eq!(fetch(&s, "/swr/1").await.1, "HIT");
        assert_eq!(s.origin.calls("/swr/1"), 2, "one refresh for all the stale hits");
        return;
    }
    let stale = join_all((0..20).map(|_| fetch(&s, "/swr/1"))).await;
    for (status, x_cache, cache_status, body) in stale {
        assert_eq!(status, StatusCode::OK);
        // A request may arrive after the refresh stored the new version.
        match x_cache.as_str() {
            "STALE" => {
                assert_eq!(body, "/swr/1 v0");
                assert_eq!(cache_status, "cache; hit; ttl=-5");
            }
            _ => assert_eq!((x_cache.as_str(), body.as_str()), ("HIT", "/swr/1 v1")),
        }
    }
    eventually_serves(&s, "/swr/1", "HIT", "/swr/1 v1").await;
    assert_eq!(s.origin.calls("/swr/1"), 2, "one background refresh for all the stale hits");

    // Past the window the entry is not served stale.
    s.cache.clock().advance(Duration::from_secs(60 + 31));
    let (_, x_cache, cache_status, _) = fetch(&s, "/swr/1").await;
    assert_eq!(
        (x_cache.as_str(), cache_status.as_str()),
        ("MISS", "cache; fwd=stale; fwd-status=200; stored")
    );
}

/// When the origin fails (5xx) inside the stale-if-error window, the stale
/// entry answers; past the window the failure passes through.
pub async fn stale_if_error<A: Adapter>() {
    let s = App::new()
        .route("/flaky", p().ttl("60s").stale_if_error("5m"), |_, origin| async move {
            if origin.failing() {
                return origin_down();
            }
            text(format!("flaky v{}", origin.version()))
        })
        .route("/flaky-directive", p().ttl("60s"), |_, origin| async move {
            if origin.failing() {
                return origin_down();
            }
            text("flaky-directive").header(CACHE_CONTROL, "max-age=60, stale-if-error=120")
        })
        .start::<A>()
        .await;
    assert_eq!(fetch(&s, "/flaky").await.1, "MISS");
    s.cache.clock().advance(Duration::from_secs(70));
    s.origin.fail(true);
    let (status, x_cache, cache_status, body) = fetch(&s, "/flaky").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((x_cache.as_str(), body.as_str()), ("STALE", "flaky v0"));
    assert_eq!(cache_status, "cache; fwd=stale; fwd-status=503; ttl=-10");
    assert_eq!(s.origin.calls("/flaky"), 2);

    s.origin.fail(false);
    let (_, x_cache, _, body) = fetch(&s, "/flaky").await;
    assert_eq!(
        (x_cache.as_str(), body.as_str()),
        ("MISS", "flaky v0"),
        "a working origin refreshes it"
    );
    s.cache.clock().advance(Duration::from_secs(60 + 301));
    s.origin.fail(true);
    let (status, x_cache, _, _) = fetch(&s, "/flaky").await;
    assert_eq!((status, x_cache.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "MISS"));

    // The window from the response's own `stale-if-error` (RFC 5861), on a
    // route whose policy has none.
    s.origin.fail(false);
    assert_eq!(fetch(&s, "/flaky-directive").await.1, "MISS");
    s.origin.fail(true);
    s.cache.clock().advance(Duration::from_secs(60 + 119));
    let (status, x_cache, _, body) = fetch(&s, "/flaky-directive").await;
    assert_eq!(
        (status, x_cache.as_str(), body.as_str()),
        (StatusCode::OK, "STALE", "flaky-directive")
    );
    s.cache.clock().advance(Duration::from_secs(2));
    assert_eq!(fetch(&s, "/flaky-directive").await.0, StatusCode::SERVICE_UNAVAILABLE);
}

/// Whether a stale entry may be served is read from the directives that
/// targeted the cache: `must-revalidate` in `CDN-Cache-Control` beats a
/// request's `max-stale` even when `Cache-Control` would allow it.
pub async fn cdn_cache_control_forbids_stale<A: Adapter>() {
    let s = with_plain(App::new())
        .route(
            "/cdn-strict",
            p().mode(CacheMode::Rfc9111).cdn_cache_control_target(true),
            |_, origin| async move {
                text(format!("cdn-strict v{}", origin.version()))
                    .header(CACHE_CONTROL, "max-age=600")
                    .header(HeaderName::from_static("cdn-cache-control"), "max-age=60, must-revalidate")
            },
        )
        .start::<A>()
        .await;
    assert_eq!(fetch(&s, "/cdn-strict").await.1, "MISS");
    s.cache.clock().advance(Duration::from_secs(65));
    new_origin_version(&s).await;
    let r = s.get("/cdn-strict").header("cache-control", "max-stale").send().await.unwrap();
    assert_eq!(header(&r, "x-cache"), "MISS");
    assert_eq!(header(&r, "cache-status"), "cache; fwd=stale; fwd-status=200; stored");
    assert_eq!(r.text().await.unwrap(), "cdn-strict v1");
    assert_eq!(s.origin.calls("/cdn-strict"), 2);
}

/// XFetch early refresh: near expiry (here a huge β makes it near certain),
/// fresh hits start a background refresh while they answer from the entry.
pub async fn early_refresh<A: Adapter>() {
    let s = with_plain(App::new())
        .route("/early", p().ttl("60s").early_refresh(1e6), versioned)
        .start::<A>()
        .await;
    assert_eq!(fetch(&s, "/early").await.1, "MISS");
    s.cache.clock().advance(Duration::from_secs(59));
    new_origin_version(&s).await;
    for _ in 0..20 {
        let (_, x_cache, cache_status, body) = fetch(&s, "/early").await;
        // Answered from the entry: the old version, fresh, or the new one
        // once the refresh stored it.
        match x_cache.as_str() {
            "HIT" if body == "/early v0" => assert_eq!(cache_status, "cache; hit; ttl=1"),
            "HIT" => assert_eq!((body.as_str(), cache_status.as_str()), ("/early v1", "cache; hit; ttl=60")),
            other => panic!("{other}: {cache_status}"),
        }
        if s.origin.calls("/early") == 2 {
            break;
        }
    }
    if A::BACKGROUND_REFRESH {
        until("the early refresh reaches the origin", || s.origin.calls("/early") == 2).await;
        eventually_serves(&s, "/early", "HIT", "/early v1").await;
    } else {
        assert_eq!(s.origin.calls("/early"), 1, "no background refresh: hits only");
    }
}
