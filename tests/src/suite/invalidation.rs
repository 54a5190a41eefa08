//! Invalidation by handlers, unsafe methods and tags, and its ordering against fetches.

use super::*;
use crate::handlers::{items, language, slow, status, versioned};

/// A handler invalidates a tag through the adapter's invalidation handle.
pub async fn handler_invalidates_tags<A: Adapter>() {
    let s = App::new()
        .route("/items/{id}", p().ttl("60s").tag("item:{id}"), items)
        .start::<A>()
        .await;
    assert_eq!(fetch(&s, "/items/1").await.3, "/items/1 v0");
    assert_eq!(fetch(&s, "/items/2").await.3, "/items/2 v0");
    assert_eq!(fetch(&s, "/items/1").await.1, "HIT");
    let put = s.request(Method::PUT, "/items/1").send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(put.text().await.unwrap(), "dropped 1");
    let (_, x, _, body) = fetch(&s, "/items/1").await;
    assert_eq!((x.as_str(), body.as_str()), ("MISS", "/items/1 v1"));
    let (_, x, _, body) = fetch(&s, "/items/2").await;
    assert_eq!(
        (x.as_str(), body.as_str()),
        ("HIT", "/items/2 v0"),
        "another item's entry was dropped"
    );
}

/// A successful unsafe request drops its URI's entries and its route's
/// tags; a failed one drops nothing.
pub async fn unsafe_method_invalidates_uri_and_route_tags<A: Adapter>() {
    let s = with_plain(App::new())
        .route("/status/{code}", p().ttl("60s").status_ttl(StatusCode::NOT_FOUND, "5s"), status)
        .start::<A>()
        .await;
    fetch(&s, "/plain/7").await;
    assert_eq!(fetch(&s, "/plain/7").await.1, "HIT");
    let put = s.request(Method::PUT, "/plain/7").send().await.unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&put, "x-cache"), "BYPASS");
    assert_eq!(header(&put, "cache-status"), "cache; fwd=method");
    let (_, x, _, body) = fetch(&s, "/plain/7").await;
    assert_eq!((x.as_str(), body.as_str()), ("MISS", "/plain/7 v1"));

    fetch(&s, "/status/404").await;
    let delete = s.request(Method::DELETE, "/status/404").send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::NOT_FOUND);
    assert_eq!(fetch(&s, "/status/404").await.1, "HIT", "a failed DELETE invalidated");

    // Safe methods pass through and change nothing; a method not known to
    // be safe invalidates like PUT (RFC 9111 §4.4).
    fetch(&s, "/plain/8").await;
    let options = s.request(Method::OPTIONS, "/plain/8").send().await.unwrap();
    assert_eq!(
        (options.status(), header(&options, "x-cache")),
        (StatusCode::OK, "BYPASS".to_owned())
    );
    assert_eq!(fetch(&s, "/plain/8").await.1, "HIT", "OPTIONS invalidated");
    let propfind = s
        .request(Method::from_bytes(b"PROPFIND").unwrap(), "/plain/8")
        .send()
        .await
        .unwrap();
    assert_eq!(propfind.status(), StatusCode::OK);
    assert_eq!(fetch(&s, "/plain/8").await.1, "HIT", "PROPFIND (registered as safe) invalidated");
    let search = Method::from_bytes(b"M-SEARCH").unwrap();
    let search = s.request(search, "/plain/8").send().await.unwrap();
    assert_eq!((search.status(), header(&search, "x-cache")), (StatusCode::OK, "BYPASS".to_owned()));
    assert_eq!(fetch(&s, "/plain/8").await.1, "MISS", "an extension method did not invalidate");
    assert_eq!(s.origin.calls("/plain/8"), 5);
}

/// A fetch that started before an invalidation is not stored, and a
/// request that arrives after the invalidation does not get its response.
pub async fn invalidation_during_a_fetch_wins<A: Adapter>() {
    let s = with_plain(App::new()).route("/slow", p().ttl("60s"), slow).start::<A>().await;
    s.origin.close();
    let before = tokio::spawn(s.get("/slow").send());
    until("the first request reaches the origin", || s.origin.calls("/slow") == 1).await;
    // The data changes and the application invalidates, while the first
    // request still holds the old data.
    assert_eq!(
        s.request(Method::PUT, "/plain/1").send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    s.cache.invalidator().prefix("").await.unwrap();
    let after = tokio::spawn(s.get("/slow").send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.origin.open();
    let before = tokio::time::timeout(PATIENCE, before).await.unwrap().unwrap().unwrap();
    assert_eq!(
        header(&before, "cache-status"),
        "cache; fwd=uri-miss; fwd-status=200",
        "stored despite the invalidation"
    );
    assert_eq!(before.text().await.unwrap(), "slow v0");
    let after = tokio::time::timeout(PATIENCE, after).await.unwrap().unwrap().unwrap();
    assert_eq!(
        after.text().await.unwrap(),
        "slow v1",
        "a request after the invalidation got older data"
    );
    let (_, x, _, body) = fetch(&s, "/slow").await;
    assert_eq!((x.as_str(), body.as_str()), ("HIT", "slow v1"));
}

/// Requests waiting on a fetch that an invalidation overlapped do not get
/// its response (it may predate the change) and do not each go to the
/// origin either: one of them fetches again, the others share its
/// response.
pub async fn waiters_of_an_invalidated_fetch_share_one_fetch<A: Adapter>() {
    let s = with_plain(App::new()).route("/slow", p().ttl("60s"), slow).start::<A>().await;
    s.origin.close();
    let leader = tokio::spawn(s.get("/slow").send());
    until("the leader reaches the origin", || s.origin.calls("/slow") == 1).await;
    let waiters: Vec<_> = (0..5).map(|_| tokio::spawn(s.get("/slow").send())).collect();
    // Let the waiters join the leader's fetch.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        s.request(Method::PUT, "/plain/1").send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    s.cache.invalidator().prefix("").await.unwrap();
    s.origin.open();
    let leader = tokio::time::timeout(PATIENCE, leader).await.unwrap().unwrap().unwrap();
    assert_eq!(leader.text().await.unwrap(), "slow v0");
    for waiter in waiters {
        let waiter = tokio::time::timeout(PATIENCE, waiter).await.unwrap().unwrap().unwrap();
        assert_eq!(
            waiter.text().await.unwrap(),
            "slow v1",
            "a waiter got the response the invalidation overlapped"
        );
    }
    assert_eq!(s.origin.calls("/slow"), 2, "the leader's fetch, and one more for every waiter");
}

/// The cache's own tags (each entry carries one naming its URI) and an
/// app's tags never meet: an app tag spelled like the cache's neither
/// falls with that URI's invalidation nor drops that URI's entries, and a
/// CDN is told the app's tag as the app wrote it.
pub async fn app_tags_never_name_a_uri<A: Adapter>() {
    let s = with_plain(App::new())
        .route(
            "/header-tag/{id}",
            p().ttl("60s").tag("{header.x-tag}").cache_tag_header(),
            versioned,
        )
        .start::<A>()
        .await;
    let (parts, ()) = http::Request::get("/plain/5").body(()).unwrap().into_parts();
    let policy = cache_core::CachePolicy::builder().ttl("60s").build().unwrap();
    let spoof = format!("@uri:{}", policy.key().build(&parts).uri());
    let tagged = || s.get("/header-tag/1").header("x-tag", spoof.as_str()).send();
    let first = tagged().await.unwrap();
    assert_eq!(header(&first, "x-cache"), "MISS");
    assert_eq!(header(&first, "cache-tag"), spoof, "the app's tag, as the app wrote it");
    assert_eq!(header(&tagged().await.unwrap(), "x-cache"), "HIT");
    fetch(&s, "/plain/5").await;
    let put = s.request(Method::PUT, "/plain/5").send().await.unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    assert_eq!(fetch(&s, "/plain/5").await.1, "MISS", "PUT dropped its own URI");
    let after = tagged().await.unwrap();
    assert_eq!(
        header(&after, "x-cache"),
        "HIT",
        "a PUT on /plain/5 dropped an entry the app tagged {spoof}"
    );
    assert_eq!(
        s.cache.invalidator().tag(spoof.as_str()).await.unwrap(),
        1,
        "only the app's entry carries the app's tag"
    );
    assert_eq!(fetch(&s, "/plain/5").await.1, "HIT", "the app's tag dropped the URI's entry");
    assert_eq!(header(&tagged().await.unwrap(), "x-cache"), "MISS");
}

/// A successful unsafe request drops every variant of its URI: each value
/// of a header the policy keys by, the request without it, and the one
/// entry of a URI whose policy keys by nothing but the URI; not other URIs.
pub async fn unsafe_method_drops_every_variant<A: Adapter>() {
    let s = App::new()
        .route("/vary-policy", p().ttl("60s").vary(["accept-language"]), language)
        .route("/one/{id}", p().ttl("60s"), language)
        .start::<A>()
        .await;
    let none = || async { header(&s.get("/vary-policy").send().await.unwrap(), "x-cache") };
    for round in ["MISS", "HIT"] {
        assert_eq!(with_lang(&s, "/vary-policy", "en").await.0, round);
        assert_eq!(with_lang(&s, "/vary-policy", "fr").await.0, round);
        assert_eq!(none().await, round);
        assert_eq!(fetch(&s, "/one/1").await.1, round);
        assert_eq!(fetch(&s, "/one/2").await.1, round);
    }
    for path in ["/vary-policy", "/one/1"] {
        let put = s.request(Method::PUT, path).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
    }
    assert_eq!(with_lang(&s, "/vary-policy", "en").await.0, "MISS", "a keyed variant survived");
    assert_eq!(with_lang(&s, "/vary-policy", "fr").await.0, "MISS", "a keyed variant survived");
    assert_eq!(none().await, "MISS", "the variant without the header survived");
    assert_eq!(fetch(&s, "/one/1").await.1, "MISS", "the URI's one entry survived");
    assert_eq!(fetch(&s, "/one/2").await.1, "HIT", "another URI was dropped");
    assert_eq!(s.origin.calls("/vary-policy"), 7);
}
