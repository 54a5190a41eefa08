//! Conditional requests, `HEAD`, and revalidation with the origin.

use http::{
    HeaderName, HeaderValue,
    header::{CACHE_CONTROL, COOKIE, ETAG, IF_NONE_MATCH, SET_COOKIE, VARY},
};

use super::*;
use crate::{
    handlers::{etag, status_only},
    origin::{OriginRequest, OriginResponse, text},
};

/// `/etag`: [`etag`] behind a one-minute policy.
fn with_etag(app: App) -> App {
    app.route("/etag", p().ttl("60s"), etag)
}

/// `If-None-Match` gets a 304 for strong and weak matches, lists and `*`,
/// on hits and on the miss that stores the response.
pub async fn etag_and_304<A: Adapter>() {
    let s = with_plain(with_etag(App::new()))
        .route("/weak-etag", p().ttl("60s"), |_, _| async {
            text("weak body").header(ETAG, "W/\"w1\"")
        })
        .start::<A>()
        .await;
    // On a miss: the origin gets an unconditional request, the client a 304.
    let r = conditional(&s, "/etag", "if-none-match", "\"v1\"").await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&r, "x-cache"), "MISS");
    assert_eq!(header(&r, "etag"), "\"v1\"");
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    let (status, x_cache, _, body) = fetch(&s, "/etag").await;
    assert_eq!((status, x_cache.as_str(), body.as_str()), (StatusCode::OK, "HIT", "etag body"));

    for (inm, expected) in [
        ("\"v1\"", StatusCode::NOT_MODIFIED),
        ("W/\"v1\"", StatusCode::NOT_MODIFIED),
        ("\"x\", \"v1\"", StatusCode::NOT_MODIFIED),
        ("*", StatusCode::NOT_MODIFIED),
        ("\"v2\"", StatusCode::OK),
        ("\"v1", StatusCode::OK),
    ] {
        let r = conditional(&s, "/etag", "if-none-match", inm).await;
        assert_eq!(r.status(), expected, "If-None-Match: {inm}");
        assert_eq!(header(&r, "x-cache"), "HIT");
        if expected == StatusCode::NOT_MODIFIED {
            assert_eq!(header(&r, "etag"), "\"v1\"");
            assert_eq!(header(&r, "last-modified"), LAST_MODIFIED);
            assert_eq!(header(&r, "content-type"), "", "a 304 carries no representation headers");
            assert!(r.bytes().await.unwrap().is_empty());
        } else {
            assert_eq!(r.text().await.unwrap(), "etag body");
        }
    }
    assert_eq!(s.origin.calls("/etag"), 1);

    fetch(&s, "/weak-etag").await;
    let r = conditional(&s, "/weak-etag", "if-none-match", "\"w1\"").await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "weak comparison ignores W/");

    let etag = header(&get(&s, "/plain/2").await, "etag");
    let r = conditional(&s, "/plain/2", "if-none-match", &etag).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "the generated ETag validates");
}

/// `If-Modified-Since` against the stored `Last-Modified`; `If-None-Match`
/// takes precedence.
pub async fn if_modified_since_304<A: Adapter>() {
    let s = with_etag(App::new()).start::<A>().await;
    fetch(&s, "/etag").await;
    for (since, expected) in [
        (LAST_MODIFIED, StatusCode::NOT_MODIFIED),
        ("Wed, 02 Jan 2030 00:00:00 GMT", StatusCode::NOT_MODIFIED),
        ("Mon, 31 Dec 2029 00:00:00 GMT", StatusCode::OK),
        ("not a date", StatusCode::OK),
    ] {
        let r = conditional(&s, "/etag", "if-modified-since", since).await;
        assert_eq!(r.status(), expected, "If-Modified-Since: {since}");
    }
    let r = s
        .get("/etag")
        .header("if-modified-since", LAST_MODIFIED)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.origin.calls("/etag"), 1);
}

/// `HEAD` is answered from a stored `GET`, and a `HEAD` miss stores the
/// `GET` response.
pub async fn head_is_served_from_get<A: Adapter>() {
    let s = with_plain(App::new()).start::<A>().await;
    let head = s.request(Method::HEAD, "/plain/5").send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "x-cache"), "MISS");
    assert_eq!(header(&head, "content-length"), "11");
    assert!(head.bytes().await.unwrap().is_empty());
    let (_, x_cache, _, body) = fetch(&s, "/plain/5").await;
    assert_eq!((x_cache.as_str(), body.as_str()), ("HIT", "/plain/5 v0"));
    let head = s.request(Method::HEAD, "/plain/5").send().await.unwrap();
    assert_eq!(header(&head, "x-cache"), "HIT");
    assert_eq!(header(&head, "content-length"), "11");
    assert!(head.bytes().await.unwrap().is_empty());
    assert_eq!(s.origin.calls("/plain/5"), 1);
    // On the wire: one Content-Length, whichever of the engine and the
    // framework gives it.
    for method in ["GET", "HEAD"] {
        let head = raw_head(&s, method, "/plain/5").await;
        assert!(head.contains("\r\nx-cache: hit\r\n"), "{head}");
        let lengths: Vec<&str> = head.lines().filter(|l| l.starts_with("content-length:")).collect();
        assert_eq!(lengths.len(), 1, "{method}: {head}");
        assert!(lengths[0].ends_with(" 11"), "{method}: {head}");
    }
}

/// `/validated`: `validated v{version}` with `ETag: "v{version}"`; to a
/// matching `If-None-Match`, a `304` that adds `x-revalidated: yes`.
async fn validated(req: OriginRequest, origin: Origin) -> OriginResponse {
    let version = origin.version();
    let etag = HeaderValue::try_from(format!("\"v{version}\"")).expect("a quoted version");
    let mut r = if req.headers.get(IF_NONE_MATCH) == Some(&etag) {
        status_only(StatusCode::NOT_MODIFIED).header(HeaderName::from_static("x-revalidated"), "yes")
    } else {
        text(format!("validated v{version}"))
    };
    r.headers.insert(ETAG, etag);
    r
}

/// A stale entry with the origin's validator is revalidated with
/// `If-None-Match`: a `304` freshens it (and updates its headers) without a
/// body; a changed resource replaces it.
pub async fn stale_entries_are_revalidated<A: Adapter>() {
    let s = with_plain(App::new())
        .route("/validated", p().ttl("60s"), validated)
        .start::<A>()
        .await;
    assert_eq!(fetch(&s, "/validated").await.1, "MISS");
    s.cache.clock().advance(Duration::from_secs(61));
    let r = get(&s, "/validated").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-status"), "cache; fwd=stale; fwd-status=304; stored");
    assert_eq!(header(&r, "x-revalidated"), "yes", "the 304's headers update the entry");
    assert_eq!(header(&r, "etag"), "\"v0\"");
    assert_eq!(r.text().await.unwrap(), "validated v0", "the stored body, not the 304's");
    assert_eq!(fetch(&s, "/validated").await.2, "cache; hit; ttl=60", "fresh again");

    // A client's own conditional gets a 304 from the revalidated entry.
    s.cache.clock().advance(Duration::from_secs(61));
    let r = s.get("/validated").header("if-none-match", "\"v0\"").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&r, "cache-status"), "cache; fwd=stale; fwd-status=304; stored");

    // Changed at the origin: the full response replaces the entry.
    new_origin_version(&s).await;
    s.cache.clock().advance(Duration::from_secs(61));
    let (_, x_cache, cache_status, body) = fetch(&s, "/validated").await;
    assert_eq!((x_cache.as_str(), body.as_str()), ("MISS", "validated v1"));
    assert_eq!(cache_status, "cache; fwd=stale; fwd-status=200; stored");
    assert_eq!(s.origin.calls("/validated"), 4);
}

/// `/revalidated/{mode}`: `ETag: "r1"` always; a `304` to a matching
/// `If-None-Match`. To a client that sends a cookie, the 304 is personal:
/// it names the client in `x-for` and, by mode, sets the cookie again
/// (`cookie`), says `private` (`private`), `no-store` (`no-store`) or
/// `Vary: Cookie` (`vary`).
async fn revalidated(req: OriginRequest, _origin: Origin) -> OriginResponse {
    let mode = req.path.trim_start_matches("/revalidated/");
    if req.headers.get(IF_NONE_MATCH).is_none_or(|v| v != "\"r1\"") {
        return text(format!("revalidated {mode}")).header(ETAG, "\"r1\"");
    }
    let mut r = status_only(StatusCode::NOT_MODIFIED)
        .header(ETAG, "\"r1\"")
        .header(HeaderName::from_static("x-revalidated"), "yes");
    let Some(cookie) = req.headers.get(COOKIE).cloned() else {
        return r;
    };
    r.headers.insert(HeaderName::from_static("x-for"), cookie.clone());
    match mode {
        "cookie" => {
            r.headers.insert(SET_COOKIE, cookie);
        }
        "private" => r = r.header(CACHE_CONTROL, "private"),
        "vary" => r = r.header(VARY, "Cookie"),
        _ => r = r.header(CACHE_CONTROL, "no-store"),
    }
    r
}

/// A `304` that freshens an entry goes through the storage rules of a
/// `200`: a personal 304 (one that sets a cookie, or says `private` or
/// `no-store`) reaches the client that triggered it and changes nothing
/// that others are served (RFC 9111 §4.3.4).
pub async fn personal_304s_are_not_stored<A: Adapter>() {
    let s = App::new()
        .route(
            "/revalidated/{mode}",
            p().ttl("60s").downstream_cache_control("public, max-age=600"),
            revalidated,
        )
        .start::<A>()
        .await;
    for mode in ["cookie", "private", "no-store"] {
        let path = format!("/revalidated/{mode}");
        assert_eq!(fetch(&s, &path).await.1, "MISS");
        s.cache.clock().advance(Duration::from_secs(61));
        let r = s.get(&path).header("cookie", "sid=VICTIM").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{mode}");
        assert_eq!(header(&r, "cache-status"), "cache; fwd=stale; fwd-status=304", "{mode}: not stored");
        assert_eq!(
            header(&r, "x-for"),
            "sid=VICTIM",
            "{mode}: the client that asked gets the 304's headers"
        );
        if mode == "cookie" {
            assert_eq!(header(&r, "set-cookie"), "sid=VICTIM", "the cookie reaches the client it is for");
        }
        let origin_cc = match mode {
            "cookie" => "",
            other => other,
        };
        assert_eq!(
            header(&r, "cache-control"),
            origin_cc,
            "{mode}: never the policy's shared Cache-Control"
        );
        assert_eq!(r.text().await.unwrap(), format!("revalidated {mode}"));

        // Anyone else: the entry is still the stale one, revalidated again
        // (without the victim's headers) and then fresh.
        let r = get(&s, &path).await;
        assert_eq!(header(&r, "cache-status"), "cache; fwd=stale; fwd-status=304; stored", "{mode}");
        assert_eq!(
            (header(&r, "x-for"), header(&r, "set-cookie")),
            (String::new(), String::new()),
            "{mode}"
        );
        let r = get(&s, &path).await;
        assert_eq!(header(&r, "cache-status"), "cache; hit; ttl=60", "{mode}");
        assert_eq!(
            (header(&r, "x-for"), header(&r, "set-cookie")),
            (String::new(), String::new()),
            "{mode}"
        );
        assert_eq!(header(&r, "x-revalidated"), "yes", "{mode}");
        assert_eq!(s.origin.calls(&path), 3, "{mode}");
    }

    // The client's own conditional matches: it gets a 304, with its cookie.
    s.cache.clock().advance(Duration::from_secs(61));
    let r = s
        .get("/revalidated/cookie")
        .header("cookie", "sid=VICTIM")
        .header("if-none-match", "\"r1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&r, "set-cookie"), "sid=VICTIM");
    assert_eq!(header(&r, "cache-control"), "", "never the policy's shared Cache-Control");
    assert_eq!(
        header(&get(&s, "/revalidated/cookie").await, "cache-control"),
        "public, max-age=600"
    );

    // A 304 that adds `Vary: Cookie` stores the entry for that cookie only.
    assert_eq!(fetch(&s, "/revalidated/vary").await.1, "MISS");
    s.cache.clock().advance(Duration::from_secs(61));
    let r = s.get("/revalidated/vary").header("cookie", "sid=VICTIM").send().await.unwrap();
    assert_eq!(header(&r, "cache-status"), "cache; fwd=stale; fwd-status=304; stored");
    assert_eq!(header(&r, "x-for"), "sid=VICTIM");
    let r = get(&s, "/revalidated/vary").await;
    assert_eq!(header(&r, "x-for"), "", "another client's variant");
    assert_eq!(header(&r, "x-cache"), "MISS");
}
