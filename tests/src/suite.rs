//! The behaviour tests, written once for every adapter.
//!
//! Each test starts its own app with a manual clock, so TTLs and ages are
//! exact and expiry is tested by moving the clock, never by sleeping.

use std::time::Duration;

use cache_core::{Cache, Clock, MokaStore, Policies, Store};
use futures_util::future::join_all;
use reqwest::{Method, Response, StatusCode};

use crate::{
    Adapter, Server,
    origin::{BIG_FIRST_CHUNK, DEADLINE_HEADER, LAST_MODIFIED, Origin},
    stores::{CorruptStore, FailingStore},
};

/// Every wait on a condition in these tests is bounded by this.
const PATIENCE: Duration = Duration::from_secs(5);

async fn start<A: Adapter>() -> Server {
    start_on::<A>(MokaStore::new()).await
}

async fn start_on<A: Adapter>(store: impl Store) -> Server {
    let cache = Cache::builder().store(store).clock(Clock::manual()).build().expect("a valid cache");
    A::start(cache, Origin::default()).await
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header").to_owned())
        .unwrap_or_default()
}

async fn get(s: &Server, path: &str) -> Response {
    s.get(path).send().await.expect("the app answers")
}

/// Status, `X-Cache`, `Cache-Status` and body of one GET.
async fn fetch(s: &Server, path: &str) -> (StatusCode, String, String, String) {
    let r = get(s, path).await;
    let parts = (r.status(), header(&r, "x-cache"), header(&r, "cache-status"));
    (parts.0, parts.1, parts.2, r.text().await.expect("a body"))
}

/// A new version of every scripted response (`PUT /plain/1`, which
/// invalidates only `/plain/1`).
async fn new_origin_version(s: &Server) {
    let put = s.client.put(format!("{}/plain/1", s.base)).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
}

/// Asks for `path` until it is answered with `x_cache` and `body`, as after
/// a background refresh stored it (bounded).
async fn eventually_serves(s: &Server, path: &str, x_cache: &str, body: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, got_x_cache, _, got_body) = fetch(s, path).await;
        if (got_x_cache.as_str(), got_body.as_str()) == (x_cache, body) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} never served {x_cache} {body:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (bounded) until `f` holds, checking every few milliseconds.
async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A miss goes to the origin and is stored; the next request is a hit with
/// the same bytes and the RFC 9211 status.
pub async fn miss_then_hit<A: Adapter>() {
    let s = start::<A>().await;
    let first = get(&s, "/plain/1").await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "x-cache"), "MISS");
    assert_eq!(header(&first, "cache-status"), "cache; fwd=uri-miss; fwd-status=200; stored");
    assert_eq!(header(&first, "age"), "0");
    let etag = header(&first, "etag");
    assert_eq!(etag.len(), 34, "a generated strong ETag: {etag}");
    assert_eq!(first.text().await.unwrap(), "/plain/1 v0");

    s.cache.clock().advance(Duration::from_secs(7));
    let second = get(&s, "/plain/1").await;
    assert_eq!(header(&second, "x-cache"), "HIT");
    assert_eq!(header(&second, "cache-status"), "cache; hit; ttl=53");
    assert_eq!(header(&second, "age"), "7");
    assert_eq!(header(&second, "etag"), etag);
    assert_eq!(header(&second, "content-type"), "text/plain");
    assert_eq!(second.text().await.unwrap(), "/plain/1 v0");

    // Hits in the same second answer with the same headers; a later one
    // with its own age.
    let third = get(&s, "/plain/1").await;
    assert_eq!(header(&third, "cache-status"), "cache; hit; ttl=53");
    assert_eq!(header(&third, "age"), "7");
    s.cache.clock().advance(Duration::from_millis(2500));
    let fourth = get(&s, "/plain/1").await;
    assert_eq!(header(&fourth, "x-cache"), "HIT");
    assert_eq!(header(&fourth, "cache-status"), "cache; hit; ttl=50");
    assert_eq!(header(&fourth, "age"), "9");
    assert_eq!(header(&fourth, "etag"), etag);
    assert_eq!(fourth.text().await.unwrap(), "/plain/1 v0");
    assert_eq!(s.origin.calls("/plain/1"), 1);
}

/// Tenant ids that contain key separators, escapes, non-UTF-8 bytes or are
/// very long never share an entry with another tenant.
pub async fn tenants_are_isolated<A: Adapter>() {
    let s = start::<A>().await;
    let long = "t".repeat(400);
    let tenants: Vec<Option<Vec<u8>>> = [
        "acme",
        "ACME",
        "acme:",
        ":acme",
        "a:cme",
        "acme%3A",
        "acme%",
        "acme=",
        "acme&x",
        "acme#1",
        "acme/tenant",
        "",
        long.as_str(),
    ]
    .iter()
    .map(|t| Some(t.as_bytes().to_vec()))
    .chain([
        Some(vec![0xff, 0xfe]),
        Some(vec![0xfe, 0xff]),
        Some(format!("{long}x").into_bytes()),
        None,
    ])
    .collect();
    let request = |tenant: &Option<Vec<u8>>| {
        let r = s.get("/tenant/1");
        match tenant {
            Some(t) => r.header(
                "x-tenant-id",
                reqwest::header::HeaderValue::from_bytes(t).expect("a valid header value"),
            ),
            None => r,
        }
    };
    let mut first_bodies = Vec::new();
    for t in &tenants {
        let r = request(t).send().await.unwrap();
        assert_eq!(header(&r, "x-cache"), "MISS", "tenant {t:?} was served another tenant's entry");
        first_bodies.push(r.text().await.unwrap());
    }
    for (t, body) in tenants.iter().zip(&first_bodies) {
        let r = request(t).send().await.unwrap();
        assert_eq!(header(&r, "x-cache"), "HIT");
        assert_eq!(
            header(&r, "vary"),
            "x-tenant-id",
            "caches further down must not share it across tenants"
        );
        assert_eq!(&r.text().await.unwrap(), body, "tenant {t:?}");
    }
    assert_eq!(s.origin.calls("/tenant/1"), tenants.len());

    // A repeated tenant header: the application could read either value,
    // so the request is neither served from nor stored in the cache.
    for _ in 0..2 {
        let r = s
            .get("/tenant/1")
            .header("x-tenant-id", "acme")
            .header("x-tenant-id", "globex")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "x-cache"), "BYPASS");
    }
    assert_eq!(s.origin.calls("/tenant/1"), tenants.len() + 2);
    // Requests the cache passes by still tell caches further down that
    // the response depends on the tenant.
    let range = s
        .get("/tenant/1")
        .header("x-tenant-id", "acme")
        .header("range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&range, "x-cache"), "BYPASS");
    assert_eq!(header(&range, "vary"), "x-tenant-id");
}

async fn conditional(s: &Server, path: &str, name: &str, value: &str) -> Response {
    s.get(path).header(name, value).send().await.unwrap()
}

/// `If-None-Match` gets a 304 for strong and weak matches, lists and `*`,
/// on hits and on the miss that stores the response.
pub async fn etag_and_304<A: Adapter>() {
    let s = start::<A>().await;
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
    let s = start::<A>().await;
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
    let s = start::<A>().await;
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

/// The response head of one request sent over a fresh connection.
async fn raw_head(s: &Server, method: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = s.base.strip_prefix("http://").expect("an http base URL");
    let mut stream = tokio::net::TcpStream::connect(authority).await.expect("the app listens");
    let request = format!("{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("the request is sent");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("a response");
    let response = String::from_utf8_lossy(&response).into_owned();
    response.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase()
}

/// `Set-Cookie`, `private` and `no-store` responses are never stored.
pub async fn uncacheable_responses_are_not_stored<A: Adapter>() {
    let s = start::<A>().await;
    for path in ["/cookie", "/private", "/no-store"] {
        for _ in 0..2 {
            let (status, x_cache, cache_status, _) = fetch(&s, path).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(x_cache, "MISS", "{path}");
            assert_eq!(cache_status, "cache; fwd=uri-miss; fwd-status=200", "{path}");
        }
        assert_eq!(s.origin.calls(path), 2, "{path} was served from the cache");
    }
    let r = get(&s, "/cookie").await;
    assert_eq!(header(&r, "set-cookie"), "session=abc", "the client still gets its cookie");
}

/// A response to an authenticated request is neither served from nor
/// stored in the shared cache, unless the origin marks it public.
pub async fn authorization_is_not_shared<A: Adapter>() {
    let s = start::<A>().await;
    let alice = s.get("/auth").header("authorization", "Bearer alice").send().await.unwrap();
    assert_eq!(header(&alice, "x-cache"), "BYPASS");
    assert_eq!(alice.text().await.unwrap(), "for Some(\"Bearer alice\")");
    let (_, x_cache, _, body) = fetch(&s, "/auth").await;
    assert_eq!(
        (x_cache.as_str(), body.as_str()),
        ("MISS", "for None"),
        "anonymous got alice's response"
    );
    let (_, x_cache, _, _) = fetch(&s, "/auth").await;
    assert_eq!(x_cache, "HIT");
    let bob = s.get("/auth").header("authorization", "Bearer bob").send().await.unwrap();
    assert_eq!(
        bob.text().await.unwrap(),
        "for Some(\"Bearer bob\")",
        "bob got the anonymous response"
    );
    assert_eq!(s.origin.calls("/auth"), 3);

    // `must-revalidate` with no lifetime does not make it shareable.
    let alice = s
        .get("/auth-revalidate")
        .header("authorization", "Bearer alice")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&alice, "cache-status"), "cache; fwd=bypass; fwd-status=200");
    let (_, _, _, body) = fetch(&s, "/auth-revalidate").await;
    assert_eq!(body, "for None", "an anonymous client got alice's response");

    let public = s.get("/auth-public").header("authorization", "Bearer alice").send().await.unwrap();
    assert_eq!(header(&public, "cache-status"), "cache; fwd=bypass; fwd-status=200; stored");
    let (_, x_cache, _, body) = fetch(&s, "/auth-public").await;
    assert_eq!((x_cache.as_str(), body.as_str()), ("HIT", "public body"));
    assert_eq!(s.origin.calls("/auth-public"), 1);
}

/// A policy keyed by principal stores one response per credential.
pub async fn principal_keyed_responses<A: Adapter>() {
    let s = start::<A>().await;
    let as_user = |who: Option<&'static str>| {
        let r = s.get("/principal");
        match who {
            Some(w) => r.header("authorization", w),
            None => r,
        }
    };
    for who in [Some("Bearer alice"), Some("Bearer bob"), None] {
        let first = as_user(who).send().await.unwrap();
        assert_eq!(header(&first, "x-cache"), "MISS");
        let first = first.text().await.unwrap();
        let again = as_user(who).send().await.unwrap();
        assert_eq!(header(&again, "x-cache"), "HIT");
        assert_eq!(again.text().await.unwrap(), first);
        assert_eq!(first, format!("for {:?}", who.map(http::HeaderValue::from_static)));
    }
    assert_eq!(s.origin.calls("/principal"), 3);

    // Repeated credentials: the application might read either, so the
    // request is neither answered from nor stored under alice's key.
    let twice = || {
        s.get("/principal")
            .header("authorization", "Bearer alice")
            .header("authorization", "Bearer bob")
            .send()
    };
    assert_eq!(header(&twice().await.unwrap(), "cache-status"), "cache; fwd=bypass");
    assert_eq!(header(&twice().await.unwrap(), "cache-status"), "cache; fwd=bypass");
    assert_eq!(s.origin.calls("/principal"), 5);
    assert_eq!(header(&as_user(Some("Bearer alice")).send().await.unwrap(), "x-cache"), "HIT");
}

async fn with_lang(s: &Server, path: &str, lang: &str) -> (String, String, String) {
    let r = s.get(path).header("accept-language", lang).send().await.unwrap();
    let (x, cs) = (header(&r, "x-cache"), header(&r, "cache-status"));
    (x, cs, r.text().await.unwrap())
}

/// Headers named by the policy's `vary` keep one entry per value.
pub async fn policy_vary_keeps_variants<A: Adapter>() {
    let s = start::<A>().await;
    assert_eq!(with_lang(&s, "/vary-policy", "en").await.0, "MISS");
    assert_eq!(with_lang(&s, "/vary-policy", "fr").await.0, "MISS");
    let (x, _, body) = with_lang(&s, "/vary-policy", "en").await;
    assert_eq!((x.as_str(), body.as_str()), ("HIT", "lang Some(\"en\")"));
    let (x, _, body) = with_lang(&s, "/vary-policy", "fr").await;
    assert_eq!((x.as_str(), body.as_str()), ("HIT", "lang Some(\"fr\")"));
    let r = s.get("/vary-policy").send().await.unwrap();
    assert_eq!(header(&r, "vary"), "accept-language");
    assert_eq!(s.origin.calls("/vary-policy"), 3);
}

/// A response's own `Vary` is honoured: a request with other values of the
/// varied headers is not served the stored response.
pub async fn response_vary_is_honoured<A: Adapter>() {
    let s = start::<A>().await;
    assert_eq!(with_lang(&s, "/vary-response", "en").await.0, "MISS");
    assert_eq!(with_lang(&s, "/vary-response", "en").await.0, "HIT");
    let (x, cs, body) = with_lang(&s, "/vary-response", "fr").await;
    assert_eq!(x, "MISS");
    assert_eq!(cs, "cache; fwd=vary-miss; fwd-status=200; stored");
    assert_eq!(body, "lang Some(\"fr\")");
    assert_eq!(s.origin.calls("/vary-response"), 2);
}

/// Query parameters are keyed in sorted order; denied ones are ignored.
pub async fn query_order_is_normalised<A: Adapter>() {
    let s = start::<A>().await;
    let (_, x, _, body) = fetch(&s, "/query?a=1&b=2").await;
    assert_eq!((x.as_str(), body.as_str()), ("MISS", "query Some(\"a=1&b=2\")"));
    for path in ["/query?b=2&a=1", "/query?a=1&utm_source=mail&b=2", "/query?b=2&a=%31"] {
        let (_, x, _, body) = fetch(&s, path).await;
        assert_eq!((x.as_str(), body.as_str()), ("HIT", "query Some(\"a=1&b=2\")"), "{path}");
    }
    assert_eq!(fetch(&s, "/query?a=1&b=3").await.1, "MISS");
    assert_eq!(s.origin.calls("/query"), 2);
}

/// A body over the policy's limit streams through: the client reads the
/// first bytes while the origin is still holding back the rest, and
/// nothing is stored.
pub async fn large_streaming_body_passes_through<A: Adapter>() {
    let s = start::<A>().await;
    for round in 1..=2 {
        let mut r = tokio::time::timeout(PATIENCE, get(&s, "/big"))
            .await
            .expect("headers arrive before the body ends");
        assert_eq!(header(&r, "x-cache"), "MISS");
        assert_eq!(header(&r, "cache-status"), "cache; fwd=uri-miss; fwd-status=200");
        let mut received = Vec::new();
        while received.len() < BIG_FIRST_CHUNK {
            let chunk = tokio::time::timeout(PATIENCE, r.chunk())
                .await
                .expect("the first bytes arrive while the origin holds the rest: the body is not buffered")
                .unwrap()
                .expect("more body");
            received.extend_from_slice(&chunk);
        }
        s.origin.release_stream();
        while let Some(chunk) = tokio::time::timeout(PATIENCE, r.chunk()).await.unwrap().unwrap() {
            received.extend_from_slice(&chunk);
        }
        assert_eq!(received.len(), BIG_FIRST_CHUNK + 3);
        assert!(received.ends_with(b"END"));
        assert_eq!(s.origin.calls("/big"), round);
    }
}

/// 1,000 concurrent requests on a cold key make exactly one origin call
/// and all get the same bytes.
pub async fn stampede_makes_one_origin_call<A: Adapter>() {
    let s = start::<A>().await;
    s.origin.close();
    let requests = (0..1000).map(|_| {
        let r = s.get("/slow");
        async move {
            let r = r.send().await.expect("every request is answered");
            let (status, x, cs) = (r.status(), header(&r, "x-cache"), header(&r, "cache-status"));
            (status, x, cs, r.bytes().await.expect("a body"))
        }
    });
    let all = tokio::spawn(join_all(requests));
    until("the first request reaches the origin", || s.origin.calls("/slow") >= 1).await;
    // Let the others arrive and queue behind the first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.origin.open();
    let responses = tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("the stampede completes")
        .unwrap();
    assert_eq!(s.origin.calls("/slow"), 1);
    let collapsed = responses.iter().filter(|r| r.2.ends_with("; collapsed")).count();
    assert!(collapsed > 0, "no request waited on the leader");
    for (status, x, _, body) in &responses {
        assert_eq!(*status, StatusCode::OK);
        assert!(x == "MISS" || x == "HIT", "{x}");
        assert_eq!(body.as_ref(), b"slow v0");
    }
}

/// When the request fetching a key is cancelled, a waiting request takes
/// over at once instead of waiting out the coalescing timeout.
pub async fn cancelled_leader_hands_over<A: Adapter>() {
    let s = start::<A>().await;
    s.origin.close();
    // The leader's future is dropped 400 ms after it arrives.
    let leader = tokio::spawn(s.get("/slow").header(DEADLINE_HEADER, "400").send());
    until("the leader reaches the origin", || s.origin.calls("/slow") == 1).await;
    let waiter = tokio::spawn(s.get("/slow").send());
    let leader = tokio::time::timeout(PATIENCE, leader).await.unwrap().unwrap().unwrap();
    assert_eq!(leader.status(), StatusCode::GATEWAY_TIMEOUT);
    until("the waiter takes over and reaches the origin", || s.origin.calls("/slow") == 2).await;
    s.origin.open();
    let r = tokio::time::timeout(PATIENCE, waiter).await.unwrap().unwrap().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-status"), "cache; fwd=uri-miss; fwd-status=200; stored");
    assert_eq!(r.text().await.unwrap(), "slow v0");
    assert_eq!(fetch(&s, "/slow").await.1, "HIT");
}

/// After a response that cannot be stored, concurrent requests for the key
/// go to the origin together instead of queueing behind one another.
pub async fn uncacheable_response_does_not_queue_waiters<A: Adapter>() {
    let s = start::<A>().await;
    assert_eq!(fetch(&s, "/slow-uncacheable").await.1, "MISS");
    // Each of the next five calls is held until all five are inside the origin.
    s.origin.require_crowd(6);
    let requests = (0..5).map(|_| s.get("/slow-uncacheable").send());
    let responses = tokio::time::timeout(PATIENCE, join_all(requests))
        .await
        .expect("requests for an uncacheable key did not queue");
    for r in responses {
        assert_eq!(r.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(s.origin.calls("/slow-uncacheable"), 6);
}

/// A handler invalidates a tag through the adapter's invalidation handle.
pub async fn handler_invalidates_tags<A: Adapter>() {
    let s = start::<A>().await;
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

/// An alias of a URL (unreserved characters percent-escaped) shares its
/// key, and tag templates are filled from the decoded path parameter, as
/// the framework's `Path` extractor decodes it: an update reaches every
/// spelling.
pub async fn aliases_share_keys_and_tags<A: Adapter>() {
    let s = start::<A>().await;
    assert_eq!(fetch(&s, "/items/%34%32").await.1, "MISS");
    assert_eq!(fetch(&s, "/items/42").await.1, "HIT", "the same resource, the same key");
    let put = s.request(Method::PUT, "/items/42").send().await.unwrap();
    assert_eq!(put.text().await.unwrap(), "dropped 1");
    let (_, x, _, body) = fetch(&s, "/items/%34%32").await;
    assert_eq!((x.as_str(), body.as_str()), ("MISS", "/items/%34%32 v1"));

    // A reserved character escaped is another path, with a decoded tag.
    assert_eq!(fetch(&s, "/items/a%2Fb").await.1, "MISS");
    assert_eq!(fetch(&s, "/items/a%2Fb").await.1, "HIT");
    assert_eq!(fetch(&s, "/items/a/b").await.0, StatusCode::NOT_FOUND, "not the same route");
    assert_eq!(s.cache.invalidator().tag("item:a/b").await.unwrap(), 1);
    assert_eq!(fetch(&s, "/items/a%2Fb").await.1, "MISS");
    // Decoded once, as `Path` decodes it: `%2541` is `%41`, not `A`.
    assert_eq!(fetch(&s, "/items/%2541").await.1, "MISS");
    assert_eq!(s.cache.invalidator().tag("item:A").await.unwrap(), 0);
    assert_eq!(s.cache.invalidator().tag("item:%41").await.unwrap(), 1);
    assert_eq!(s.origin.calls("/items/"), 6);
}

/// Query parameters are keyed by their bytes: values that a lossy decoder
/// would merge (`%FF` and `%FE` both read as U+FFFD), or that a form
/// decoder would (`+` and `%20`), are different requests.
pub async fn query_bytes_are_keyed<A: Adapter>() {
    let s = start::<A>().await;
    for (i, query) in ["search=%FF", "search=%FE", "search=a+b", "search=a%20b", "search", "search="]
        .iter()
        .enumerate()
    {
        let (_, x, _, body) = fetch(&s, &format!("/query?{query}")).await;
        assert_eq!((x.as_str(), body), ("MISS", format!("query Some({query:?})")), "{query}");
        assert_eq!(s.origin.calls("/query"), i + 1);
    }
    let (_, x, _, body) = fetch(&s, "/query?search=%46%46").await;
    assert_eq!((x.as_str(), body.as_str()), ("MISS", "query Some(\"search=%46%46\")"));
    assert_eq!(fetch(&s, "/query?search=FF").await.1, "HIT", "unreserved escapes are decoded");
}

/// A successful unsafe request drops its URI's entries and its route's
/// tags; a failed one drops nothing.
pub async fn unsafe_method_invalidates_uri_and_route_tags<A: Adapter>() {
    let s = start::<A>().await;
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

/// TTL and tags set by a handler through `CacheHints`.
pub async fn handler_hints_set_ttl_and_tags<A: Adapter>() {
    let s = start::<A>().await;
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
    let s = start::<A>().await;
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
    let s = start::<A>().await;
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
    let s = start::<A>().await;
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

/// A stale entry with the origin's validator is revalidated with
/// `If-None-Match`: a `304` freshens it (and updates its headers) without a
/// body; a changed resource replaces it.
pub async fn stale_entries_are_revalidated<A: Adapter>() {
    let s = start::<A>().await;
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

/// A `304` that freshens an entry goes through the storage rules of a
/// `200`: a personal 304 (one that sets a cookie, or says `private` or
/// `no-store`) reaches the client that triggered it and changes nothing
/// that others are served (RFC 9111 §4.3.4).
pub async fn personal_304s_are_not_stored<A: Adapter>() {
    let s = start::<A>().await;
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

/// What reaches the handler unkeyed cannot shape a stored response: a
/// policy strips the headers it names from requests whose responses may be
/// stored, and a `GET` with a body is passed through, neither served from
/// nor stored in the cache.
pub async fn unkeyed_request_parts_do_not_shape_stored_responses<A: Adapter>() {
    let s = start::<A>().await;
    let r = s.get("/stripped").header("x-forwarded-host", "evil.example").send().await.unwrap();
    assert_eq!(header(&r, "x-cache"), "MISS");
    assert_eq!(r.text().await.unwrap(), "xfh None", "stripped before the origin");
    let (_, x_cache, _, body) = fetch(&s, "/stripped").await;
    assert_eq!((x_cache.as_str(), body.as_str()), ("HIT", "xfh None"));
    // A revalidation is forwarded as the engine built it too: stripped,
    // with the cache's validator (as many headers as the client sent).
    s.cache.clock().advance(Duration::from_secs(61));
    let r = s.get("/stripped").header("x-forwarded-host", "evil.example").send().await.unwrap();
    assert_eq!(header(&r, "cache-status"), "cache; fwd=stale; fwd-status=304; stored");
    assert_eq!(r.text().await.unwrap(), "xfh None", "the revalidation reached the origin as sent");
    let (_, x_cache, _, body) = fetch(&s, "/stripped").await;
    assert_eq!((x_cache.as_str(), body.as_str()), ("HIT", "xfh None"));

    fetch(&s, "/plain/9").await;
    let r = s.get("/plain/9").body("a body").send().await.unwrap();
    assert_eq!(header(&r, "cache-status"), "cache; fwd=bypass");
    assert_eq!(s.origin.calls("/plain/9"), 2);
    assert_eq!(fetch(&s, "/plain/9").await.1, "HIT", "the bypass stored nothing");
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

/// Whether a stale entry may be served is read from the directives that
/// targeted the cache: `must-revalidate` in `CDN-Cache-Control` beats a
/// request's `max-stale` even when `Cache-Control` would allow it.
pub async fn cdn_cache_control_forbids_stale<A: Adapter>() {
    let s = start::<A>().await;
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
    let s = start::<A>().await;
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

/// Per-status TTLs, and statuses outside the cacheable set.
pub async fn per_status_ttl<A: Adapter>() {
    let s = start::<A>().await;
    let (status, x, _, _) = fetch(&s, "/status/404").await;
    assert_eq!((status, x.as_str()), (StatusCode::NOT_FOUND, "MISS"));
    assert_eq!(fetch(&s, "/status/404").await.2, "cache; hit; ttl=5");
    s.cache.clock().advance(Duration::from_secs(5));
    assert_eq!(fetch(&s, "/status/404").await.1, "MISS");
    for _ in 0..2 {
        let (status, x, _, _) = fetch(&s, "/status/500").await;
        assert_eq!((status, x.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "MISS"));
    }
    assert_eq!(s.origin.calls("/status/500"), 2);
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

/// A store that fails on every call turns the cache into a pass-through.
pub async fn failing_store_passes_through<A: Adapter>() {
    let s = start_on::<A>(FailingStore).await;
    for _ in 0..2 {
        let (status, x, _, body) = fetch(&s, "/plain/1").await;
        assert_eq!((status, x.as_str(), body.as_str()), (StatusCode::OK, "MISS", "/plain/1 v0"));
    }
    let put = s.request(Method::PUT, "/plain/1").send().await.unwrap();
    assert_eq!(
        put.status(),
        StatusCode::NO_CONTENT,
        "a failed invalidation does not fail the request"
    );
    assert_eq!(s.origin.calls("/plain/1"), 3);
}

/// Foreign bytes in the store are a miss, never an error or a panic.
pub async fn corrupt_store_is_a_miss<A: Adapter>() {
    let s = start_on::<A>(CorruptStore).await;
    for _ in 0..2 {
        let (status, x, _, body) = fetch(&s, "/plain/3").await;
        assert_eq!((status, x.as_str(), body.as_str()), (StatusCode::OK, "MISS", "/plain/3 v0"));
    }
    assert_eq!(s.origin.calls("/plain/3"), 2);
}

/// A route without a policy is not touched.
pub async fn uncached_route_is_untouched<A: Adapter>() {
    let s = start::<A>().await;
    for _ in 0..2 {
        let r = get(&s, "/uncached").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("x-cache").is_none());
        assert!(r.headers().get("cache-status").is_none());
    }
    assert_eq!(s.origin.calls("/uncached"), 2);
}

/// A request that forbids storing (`Cache-Control: no-store`) gets a fresh
/// response that is not stored, and does not stop later requests for the
/// key from being coalesced and stored.
pub async fn request_no_store_is_not_stored_and_keeps_coalescing<A: Adapter>() {
    let s = start::<A>().await;
    let r = s.get("/slow").header("cache-control", "no-store").send().await.unwrap();
    assert_eq!(header(&r, "cache-status"), "cache; fwd=uri-miss; fwd-status=200");
    s.origin.close();
    let requests = (0..20).map(|_| s.get("/slow").send());
    let all = tokio::spawn(join_all(requests));
    until("a request reaches the origin", || s.origin.calls("/slow") >= 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.origin.open();
    let responses = tokio::time::timeout(PATIENCE, all).await.unwrap().unwrap();
    assert_eq!(s.origin.calls("/slow"), 2, "the no-store request made the key skip coalescing");
    let collapsed = responses
        .into_iter()
        .filter(|r| header(r.as_ref().unwrap(), "cache-status").ends_with("collapsed"))
        .count();
    assert!(collapsed > 0);
    assert_eq!(fetch(&s, "/slow").await.1, "HIT");
}

/// A request that waited on another's fetch is not served that response if
/// it varies on a header whose value differs.
pub async fn collapsed_requests_respect_vary<A: Adapter>() {
    let s = start::<A>().await;
    s.origin.close();
    let en = tokio::spawn(s.get("/slow-vary").header("accept-language", "en").send());
    until("the first request reaches the origin", || s.origin.calls("/slow-vary") == 1).await;
    let fr = tokio::spawn(s.get("/slow-vary").header("accept-language", "fr").send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.origin.open();
    let en = tokio::time::timeout(PATIENCE, en).await.unwrap().unwrap().unwrap();
    let fr = tokio::time::timeout(PATIENCE, fr).await.unwrap().unwrap().unwrap();
    assert_eq!(en.text().await.unwrap(), "lang Some(\"en\")");
    assert_eq!(header(&fr, "cache-status"), "cache; fwd=vary-miss; fwd-status=200; stored");
    assert_eq!(fr.text().await.unwrap(), "lang Some(\"fr\")", "got the other language's response");
    assert_eq!(s.origin.calls("/slow-vary"), 2);
}

/// A fetch that started before an invalidation is not stored, and a
/// request that arrives after the invalidation does not get its response.
pub async fn invalidation_during_a_fetch_wins<A: Adapter>() {
    let s = start::<A>().await;
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
    let s = start::<A>().await;
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

/// A TOML TTL table behind one layer over every path: path patterns choose
/// the policies (first match wins, wildcards, `cache = false`), defaults
/// fill the routes, and `invalidated_by` rules drop the tags of the tenant
/// on unsafe requests to paths no route caches.
pub async fn toml_table<A: Adapter>() {
    const TABLE: &str = r#"
        [defaults]
        ttl = "60s"
        tenant_header = "x-tenant-id"

        [[route]]
        path = "/plain/{id}"
        tags = ["plain:{tenant}:{id}"]
        invalidated_by = [{ method = "POST", path = "/orders/{id}" }]

        [[route]]
        path = "/assets/private/*"
        cache = false

        [[route]]
        path = "/assets/*"
        ttl = "1h"
    "#;
    let policies = Policies::from_toml_str(TABLE, "cache.toml").expect("a valid table");
    let cache = Cache::builder()
        .store(MokaStore::new())
        .clock(Clock::manual())
        .build()
        .expect("a valid cache");
    let s = A::start_with_table(cache, Origin::default(), policies).await;
    let fetch = |method: Method, path: &'static str, tenant: &'static str| {
        let request = s.request(method, path).header("x-tenant-id", tenant);
        async move {
            let r = request.send().await.expect("the app answers");
            (header(&r, "x-cache"), header(&r, "cache-status"), r.text().await.expect("a body"))
        }
    };
    let (x, cs, body) = fetch(Method::GET, "/plain/1", "acme").await;
    assert_eq!(
        (x.as_str(), cs.as_str(), body.as_str()),
        ("MISS", "cache; fwd=uri-miss; fwd-status=200; stored", "/plain/1 v0")
    );
    for (path, tenant) in [("/plain/1", "globex"), ("/plain/2", "acme")] {
        assert_eq!(fetch(Method::GET, path, tenant).await.0, "MISS");
    }
    let (x, cs, _) = fetch(Method::GET, "/plain/1", "acme").await;
    assert_eq!((x.as_str(), cs.as_str()), ("HIT", "cache; hit; ttl=60"), "the defaults' TTL");
    assert_eq!(s.origin.calls("/plain/"), 3);

    let (x, cs, _) = fetch(Method::GET, "/assets/site/app.js", "acme").await;
    assert_eq!((x.as_str(), cs.as_str()), ("MISS", "cache; fwd=uri-miss; fwd-status=200; stored"));
    let (x, cs, _) = fetch(Method::GET, "/assets/site/app.js", "acme").await;
    assert_eq!((x.as_str(), cs.as_str()), ("HIT", "cache; hit; ttl=3600"), "the route's own TTL");

    for path in ["/assets/private/key", "/elsewhere"] {
        for _ in 0..2 {
            let (x, cs, body) = fetch(Method::GET, path, "acme").await;
            assert_eq!((x.as_str(), cs.as_str(), body), ("", "", format!("GET {path}")), "untouched");
        }
        assert_eq!(s.origin.calls(path), 2);
    }

    // No route caches /orders/{id}; the rule drops acme's plain:acme:1 only.
    let (x, _, body) = fetch(Method::POST, "/orders/1", "acme").await;
    assert_eq!((x.as_str(), body.as_str()), ("BYPASS", "POST /orders/1"));
    assert_eq!(fetch(Method::GET, "/plain/1", "acme").await.0, "MISS");
    assert_eq!(fetch(Method::GET, "/plain/1", "globex").await.0, "HIT");
    assert_eq!(fetch(Method::GET, "/plain/2", "acme").await.0, "HIT");
    assert_eq!(s.origin.calls("/plain/"), 4);
}
