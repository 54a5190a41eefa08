//! RFC 9111 (and RFC 5861) behaviour of the caching proxy, table-driven.
//!
//! A scripted upstream answers each case's path with the headers the case
//! sets and counts the requests it receives; each case lists its requests
//! through the proxy, with the clock moves between them, and what each must
//! get: status, `X-Cache`, `Cache-Status`, a header, and how many requests
//! the upstream has seen by then. The proxy's cache runs on a manual clock:
//! expiry is a clock move, never a sleep.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::Response,
    routing::any,
};
use cache_core::{Cache, Clock, MokaStore};
use caching_proxy::{Config, Proxy};

/// What the upstream saw: requests per path, and the last request's headers
/// per path.
#[derive(Clone)]
struct Seen {
    calls: Arc<Mutex<HashMap<String, usize>>>,
    headers: Arc<Mutex<HashMap<String, HeaderMap>>>,
    /// The proxy's clock, for the upstream's `Date`, `Expires` and
    /// `Last-Modified`: the two agree to the millisecond.
    clock: Clock,
}

impl Seen {
    fn calls(&self, path: &str) -> usize {
        self.calls.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn http_date(clock: &Clock, offset_secs: i64) -> String {
    let now = UNIX_EPOCH + Duration::from_millis(clock.now_ms());
    let at = if offset_secs >= 0 {
        now + Duration::from_secs(offset_secs.unsigned_abs())
    } else {
        now - Duration::from_secs(offset_secs.unsigned_abs())
    };
    httpdate::fmt_http_date(at)
}

/// The scripted upstream: `/c/{case}` answers as the case needs, given the
/// request and how many requests for the path came before it (`n`, from 1).
async fn upstream(State(seen): State<Seen>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let n = {
        let mut calls = seen.calls.lock().unwrap();
        let n = calls.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    seen.headers.lock().unwrap().insert(path.clone(), req.headers().clone());
    let case = path.trim_start_matches("/c/");
    let h = req.headers();
    let inm = |etag: &str| h.get(header::IF_NONE_MATCH).is_some_and(|v| v == etag);
    let date = http_date(&seen.clock, 0);
    let not_modified = || Response::builder().status(StatusCode::NOT_MODIFIED).header(header::DATE, &date);
    let mut r = Response::builder().status(StatusCode::OK).header(header::DATE, &date);
    let body = format!("{case} #{n}");
    match case {
        "max-age" | "request-no-cache-plain" | "request-max-age" | "request-min-fresh" | "max-stale" | "only-if-cached" | "head" => {
            r = r.header(header::CACHE_CONTROL, "max-age=60")
        }
        "s-maxage" => r = r.header(header::CACHE_CONTROL, "max-age=600, s-maxage=30"),
        "expires" => r = r.header(header::EXPIRES, http_date(&seen.clock, 60)),
        "expires-invalid" => r = r.header(header::EXPIRES, "0"),
        "no-freshness" => {}
        "heuristic" => {
            let modified = http_date(&seen.clock, -10 * 3600);
            if n > 1 && h.contains_key(header::IF_MODIFIED_SINCE) {
                return not_modified().body(Body::empty()).unwrap();
            }
            r = r.header(header::LAST_MODIFIED, modified);
        }
        "no-cache" => {
            if inm("\"nc\"") {
                return not_modified().header(header::ETAG, "\"nc\"").body(Body::empty()).unwrap();
            }
            r = r.header(header::CACHE_CONTROL, "no-cache").header(header::ETAG, "\"nc\"");
        }
        "no-store" => r = r.header(header::CACHE_CONTROL, "no-store, max-age=60"),
        "private" => r = r.header(header::CACHE_CONTROL, "private, max-age=60"),
        "request-no-cache" => {
            if inm("\"rq\"") {
                return not_modified().header(header::ETAG, "\"rq\"").body(Body::empty()).unwrap();
            }
            r = r.header(header::CACHE_CONTROL, "max-age=60").header(header::ETAG, "\"rq\"");
        }
        "must-revalidate" => r = r.header(header::CACHE_CONTROL, "max-age=60, must-revalidate"),
        "vary-star" => r = r.header(header::CACHE_CONTROL, "max-age=60").header(header::VARY, "*"),
        "vary" => {
            let lang = h
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            r = r
                .header(header::CACHE_CONTROL, "max-age=60")
                .header(header::VARY, "Accept-Language");
            return r.body(Body::from(format!("vary {lang} #{n}"))).unwrap();
        }
        "authorization" => r = r.header(header::CACHE_CONTROL, "max-age=60"),
        "authorization-public" => r = r.header(header::CACHE_CONTROL, "public, max-age=60"),
        "unsafe" => r = r.header(header::CACHE_CONTROL, "max-age=60"),
        "location-post" => {
            return Response::builder()
                .status(StatusCode::CREATED)
                .header(header::LOCATION, "/c/location-target")
                .header(header::CONTENT_LOCATION, "http://elsewhere.example/c/content-location-target")
                .body(Body::empty())
                .unwrap();
        }
        "location-target" | "content-location-target" => r = r.header(header::CACHE_CONTROL, "max-age=60"),
        "swr" => r = r.header(header::CACHE_CONTROL, "max-age=1, stale-while-revalidate=60"),
        "sie" if n > 1 => {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Body::from("down"))
                .unwrap();
        }
        "sie" => r = r.header(header::CACHE_CONTROL, "max-age=1, stale-if-error=60"),
        "sie-must-revalidate" if n > 1 => {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Body::from("down"))
                .unwrap();
        }
        "sie-must-revalidate" => r = r.header(header::CACHE_CONTROL, "max-age=1, stale-if-error=60, must-revalidate"),
        "age" => r = r.header(header::CACHE_CONTROL, "max-age=60").header(header::AGE, "30"),
        "update-headers" => {
            if inm("\"u\"") {
                return not_modified()
                    .header(header::ETAG, "\"u\"")
                    .header(header::CACHE_CONTROL, "max-age=10")
                    .header("x-version", n.to_string())
                    .body(Body::empty())
                    .unwrap();
            }
            r = r
                .header(header::CACHE_CONTROL, "max-age=10")
                .header(header::ETAG, "\"u\"")
                .header("x-version", n.to_string());
        }
        "range" => r = r.header(header::CACHE_CONTROL, "max-age=60"),
        other => panic!("no upstream script for case {other}"),
    }
    r.body(Body::from(body)).unwrap()
}

/// One request of a case, and what it must get.
#[derive(Clone, Copy)]
struct Step {
    /// Seconds the clock moves before the request.
    advance: u64,
    method: &'static str,
    /// The case's own path when `None`.
    path: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
    x_cache: &'static str,
    /// Requests the upstream has seen for the case's path after this one.
    calls: usize,
    cache_status: Option<&'static str>,
    header: Option<(&'static str, &'static str)>,
    /// Whether `calls` is checked (not for a step racing a background
    /// refresh).
    check_calls: bool,
    /// Repeats the request (for up to five seconds) until it gets what the
    /// step expects: for what a background refresh stores.
    eventually: bool,
}

const fn get(x_cache: &'static str, calls: usize) -> Step {
    Step {
        advance: 0,
        method: "GET",
        path: None,
        headers: &[],
        status: 200,
        x_cache,
        calls,
        cache_status: None,
        header: None,
        check_calls: true,
        eventually: false,
    }
}

impl Step {
    const fn after(mut self, secs: u64) -> Self {
        self.advance = secs;
        self
    }
    const fn with(mut self, headers: &'static [(&'static str, &'static str)]) -> Self {
        self.headers = headers;
        self
    }
    const fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    const fn at(mut self, path: &'static str) -> Self {
        self.path = Some(path);
        self
    }
    const fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    const fn cache_status(mut self, value: &'static str) -> Self {
        self.cache_status = Some(value);
        self
    }
    const fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }
    const fn any_calls(mut self) -> Self {
        self.check_calls = false;
        self
    }
    const fn eventually(mut self) -> Self {
        self.eventually = true;
        self
    }
}

/// `(case, what it shows, steps)`.
type Case = (&'static str, &'static str, Vec<Step>);

fn cases() -> Vec<Case> {
    vec![
        (
            "max-age",
            "max-age gives freshness; after it the response is fetched again",
            vec![
                get("MISS", 1).cache_status("caching-proxy; fwd=uri-miss; fwd-status=200; stored"),
                get("HIT", 1).cache_status("caching-proxy; hit; ttl=60"),
                get("MISS", 2)
                    .after(61)
                    .cache_status("caching-proxy; fwd=stale; fwd-status=200; stored"),
            ],
        ),
        (
            "s-maxage",
            "s-maxage wins over max-age in a shared cache",
            vec![get("MISS", 1), get("HIT", 1).after(29), get("MISS", 2).after(2)],
        ),
        (
            "expires",
            "Expires − Date gives freshness",
            vec![get("MISS", 1), get("HIT", 1).after(50), get("MISS", 2).after(11)],
        ),
        (
            "expires-invalid",
            "an invalid Expires is already expired",
            vec![get("MISS", 1), get("MISS", 2)],
        ),
        (
            "no-freshness",
            "no freshness and no validator: never reused",
            vec![get("MISS", 1), get("MISS", 2)],
        ),
        (
            "heuristic",
            "Last-Modified 10 h ago: heuristic freshness of a tenth (1 h), then revalidation with If-Modified-Since",
            vec![
                get("MISS", 1),
                get("HIT", 1).after(3000),
                get("MISS", 2)
                    .after(700)
                    .cache_status("caching-proxy; fwd=stale; fwd-status=304; stored"),
                get("HIT", 2),
            ],
        ),
        (
            "no-cache",
            "a no-cache response is stored and revalidated before every reuse",
            vec![
                get("MISS", 1),
                get("MISS", 2).cache_status("caching-proxy; fwd=stale; fwd-status=304; stored"),
                get("MISS", 3),
            ],
        ),
        ("no-store", "no-store is never stored", vec![get("MISS", 1), get("MISS", 2)]),
        (
            "private",
            "private is never stored by a shared cache",
            vec![get("MISS", 1), get("MISS", 2)],
        ),
        (
            "request-no-cache",
            "request no-cache revalidates a fresh entry",
            vec![
                get("MISS", 1),
                get("MISS", 2)
                    .with(&[("cache-control", "no-cache")])
                    .cache_status("caching-proxy; fwd=request; fwd-status=304; stored"),
                get("HIT", 2),
                get("MISS", 3).with(&[("pragma", "no-cache")]),
            ],
        ),
        (
            "request-max-age",
            "request max-age refuses an older entry",
            vec![
                get("MISS", 1),
                get("HIT", 1).after(10).with(&[("cache-control", "max-age=20")]),
                get("MISS", 2)
                    .with(&[("cache-control", "max-age=5")])
                    .cache_status("caching-proxy; fwd=request; fwd-status=200; stored"),
            ],
        ),
        (
            "request-min-fresh",
            "request min-fresh refuses an entry about to expire",
            vec![
                get("MISS", 1),
                get("HIT", 1).with(&[("cache-control", "min-fresh=30")]),
                get("MISS", 2).after(40).with(&[("cache-control", "min-fresh=30")]),
            ],
        ),
        (
            "max-stale",
            "request max-stale accepts a stale entry within its bound",
            vec![
                get("MISS", 1),
                get("STALE", 1)
                    .after(90)
                    .with(&[("cache-control", "max-stale=60")])
                    .cache_status("caching-proxy; hit; ttl=-30"),
                get("STALE", 1).with(&[("cache-control", "max-stale")]),
                get("MISS", 2).with(&[("cache-control", "max-stale=10")]),
            ],
        ),
        (
            "must-revalidate",
            "must-revalidate forbids stale answers, even when the request allows them",
            vec![get("MISS", 1), get("MISS", 2).after(90).with(&[("cache-control", "max-stale")])],
        ),
        (
            "only-if-cached",
            "only-if-cached answers 504 rather than ask the origin",
            vec![
                get("MISS", 0)
                    .with(&[("cache-control", "only-if-cached")])
                    .status(504)
                    .cache_status("caching-proxy; fwd=request"),
                get("MISS", 1),
                get("HIT", 1).with(&[("cache-control", "only-if-cached")]),
            ],
        ),
        ("vary-star", "Vary: * is never stored", vec![get("MISS", 1), get("MISS", 2)]),
        (
            "vary",
            "Vary keeps one variant per Accept-Language",
            vec![
                get("MISS", 1).with(&[("accept-language", "en")]),
                get("HIT", 1).with(&[("accept-language", "en")]),
                get("MISS", 2).with(&[("accept-language", "de")]),
                get("HIT", 2).with(&[("accept-language", "de")]),
                // One variant per URI: the last one stored.
                get("MISS", 3).with(&[("accept-language", "en")]),
            ],
        ),
        (
            "authorization",
            "a response to a request with Authorization is not shared unless marked public",
            vec![get("BYPASS", 1).with(&[("authorization", "Bearer a")]), get("MISS", 2)],
        ),
        (
            "authorization-public",
            "public makes it shareable (RFC 9111 §3.5)",
            vec![get("BYPASS", 1).with(&[("authorization", "Bearer a")]), get("HIT", 1)],
        ),
        (
            "unsafe",
            "a successful POST invalidates its target URI (§4.4)",
            vec![get("MISS", 1), get("HIT", 1), get("BYPASS", 2).method("POST"), get("MISS", 3)],
        ),
        (
            "location-target",
            "a POST invalidates the URI its Location names on the same origin; not another origin's",
            vec![
                get("MISS", 1),
                get("MISS", 1).at("/c/content-location-target"),
                get("BYPASS", 1).method("POST").at("/c/location-post").status(201),
                get("MISS", 2),
                get("HIT", 1).at("/c/content-location-target"),
            ],
        ),
        (
            "swr",
            "stale-while-revalidate from the response: stale at once, refreshed in the background",
            vec![
                get("MISS", 1),
                get("STALE", 1).after(2).cache_status("caching-proxy; hit; ttl=-1").any_calls(),
                get("HIT", 2).eventually(),
            ],
        ),
        (
            "sie",
            "stale-if-error from the response: the stale entry answers a 500, within the window only",
            vec![
                get("MISS", 1),
                get("STALE", 2)
                    .after(2)
                    .cache_status("caching-proxy; fwd=stale; fwd-status=500; ttl=-1"),
                get("MISS", 3).after(120).status(500),
            ],
        ),
        (
            "sie-must-revalidate",
            "must-revalidate turns stale-if-error off",
            vec![get("MISS", 1), get("MISS", 2).after(2).status(500)],
        ),
        (
            "age",
            "an upstream Age counts against freshness",
            vec![get("MISS", 1), get("HIT", 1).after(29), get("MISS", 2).after(2)],
        ),
        (
            "update-headers",
            "a 304 updates the stored headers (§4.3.4) and keeps the body",
            vec![
                get("MISS", 1).header("x-version", "1"),
                get("MISS", 2).after(11).header("x-version", "2"),
                get("HIT", 2).header("x-version", "2"),
            ],
        ),
        (
            "range",
            "Range requests pass through untouched",
            vec![get("MISS", 1), get("BYPASS", 2).with(&[("range", "bytes=0-1")]).status(200)],
        ),
        (
            "head",
            "HEAD is answered from a stored GET",
            vec![get("MISS", 1), get("HIT", 1).method("HEAD")],
        ),
    ]
}

struct Harness {
    proxy: String,
    cache: Cache,
    seen: Seen,
    client: reqwest::Client,
}

impl Harness {
    /// Sends the step's request; what differs from what it expects.
    async fn check(&self, step: &Step, path: &str) -> Vec<String> {
        let mut req = self
            .client
            .request(Method::from_bytes(step.method.as_bytes()).unwrap(), format!("{}{path}", self.proxy));
        for (name, value) in step.headers {
            req = req.header(*name, *value);
        }
        let r = req.send().await.expect("the proxy answers");
        let header = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let mut problems = Vec::new();
        if r.status().as_u16() != step.status {
            problems.push(format!("status {} (want {})", r.status(), step.status));
        }
        if header("x-cache") != step.x_cache {
            problems.push(format!("x-cache {:?} (want {:?})", header("x-cache"), step.x_cache));
        }
        if let Some(want) = step.cache_status
            && header("cache-status") != want
        {
            problems.push(format!("cache-status {:?} (want {want:?})", header("cache-status")));
        }
        if let Some((name, want)) = step.header
            && header(name) != want
        {
            problems.push(format!("{name} {:?} (want {want:?})", header(name)));
        }
        drop(r.bytes().await);
        if step.check_calls && self.seen.calls(path) != step.calls {
            problems.push(format!("upstream saw {} requests (want {})", self.seen.calls(path), step.calls));
        }
        problems
    }
}

async fn harness() -> Harness {
    let clock = Clock::manual();
    // On a whole second, so that `Date` (whole seconds) says the same time.
    clock.advance(Duration::from_millis(1000 - clock.now_ms() % 1000));
    let seen = Seen {
        calls: Arc::default(),
        headers: Arc::default(),
        clock: clock.clone(),
    };
    let app = Router::new().route("/{*path}", any(upstream)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = Config::new(upstream.parse().unwrap());
    let cache = Cache::builder()
        .name("caching-proxy")
        .store(MokaStore::new())
        .clock(clock)
        .build()
        .unwrap();
    let proxy = Proxy::with_cache(&config, cache.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(caching_proxy::serve(listener, proxy));
    Harness {
        proxy: base,
        cache,
        seen,
        client: reqwest::Client::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc_9111_cases() {
    let h = harness().await;
    let mut failures = Vec::new();
    for (case, what, steps) in cases() {
        let own_path = format!("/c/{case}");
        for (i, step) in steps.iter().enumerate() {
            h.cache.clock().advance(Duration::from_secs(step.advance));
            let path = step.path.map_or(own_path.clone(), str::to_owned);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let problems = loop {
                let problems = h.check(step, &path).await;
                if problems.is_empty() || !step.eventually || tokio::time::Instant::now() > deadline {
                    break problems;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            if !problems.is_empty() {
                failures.push(format!("{case} step {} ({what}): {}", i + 1, problems.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "{} failing steps:\n{}", failures.len(), failures.join("\n"));
}

/// Revalidation sends the stored validators; the client's own conditionals
/// never reach the upstream on a miss.
#[tokio::test]
async fn revalidation_sends_the_stored_validators() {
    let h = harness().await;
    let get = |headers: &[(&str, &str)]| {
        let mut req = h.client.get(format!("{}/c/no-cache", h.proxy));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send()
    };
    assert_eq!(get(&[("if-none-match", "\"client\"")]).await.unwrap().status(), 200);
    assert!(!h.seen.headers.lock().unwrap()["/c/no-cache"].contains_key("if-none-match"));
    let r = get(&[]).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        h.seen.headers.lock().unwrap()["/c/no-cache"]["if-none-match"],
        HeaderValue::from_static("\"nc\"")
    );
    let r = get(&[("if-none-match", "\"nc\"")]).await.unwrap();
    assert_eq!(r.status(), 304, "the client's conditional is answered from the revalidated entry");
}
