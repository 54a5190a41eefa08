//! The proxy through real sockets: a recording upstream on one free port,
//! the proxy on another, reqwest as the client.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    response::Response,
};
use bytes::Bytes;
use caching_proxy::{Config, Proxy, serve};
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use tokio::{
    net::TcpListener,
    sync::{Notify, mpsc},
};

/// Longest wait for anything that should happen at once.
const PROMPTLY: Duration = Duration::from_secs(10);
/// Size of the large bodies.
const LARGE: usize = 8 * 1024 * 1024;

/// What the upstream received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

/// The upstream: records every request and answers per path.
#[derive(Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Lets `/stream-down` send its last chunk.
    release: Arc<Notify>,
    /// Told by `/stream-up` when the first chunk of the request body arrived.
    first_chunk: Arc<Notify>,
}

impl Upstream {
    fn record(&self, parts: &http::request::Parts, body: Bytes) -> usize {
        let mut seen = self.seen.lock().unwrap();
        seen.push(Seen {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
            body,
        });
        seen.iter().filter(|s| s.path == parts.uri.path()).count()
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.path == path).cloned().collect()
    }

    fn only(&self, path: &str) -> Seen {
        let mut seen = self.seen(path);
        assert_eq!(seen.len(), 1, "the upstream got {} requests for {path}", seen.len());
        seen.remove(0)
    }
}

async fn origin(State(upstream): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    match parts.uri.path() {
        "/slow" => {
            upstream.record(&parts, Bytes::new());
            std::future::pending().await
        }
        "/echo" => {
            upstream.record(&parts, Bytes::new());
            Response::new(body)
        }
        "/large" => {
            upstream.record(&parts, Bytes::new());
            let chunks = large_body().chunks(64 * 1024).map(Bytes::copy_from_slice).collect::<Vec<_>>();
            Response::new(Body::from_stream(stream::iter(chunks.into_iter().map(Ok::<_, Infallible>))))
        }
        "/stream-down" => {
            upstream.record(&parts, Bytes::new());
            stream_down(upstream.release.clone())
        }
        "/stream-up" => stream_up(&upstream, &parts, body).await,
        _ => {
            let body = body.collect().await.expect("the request body arrives whole").to_bytes();
            let count = upstream.record(&parts, body);
            answer(parts.uri.path(), count)
        }
    }
}

/// The answers of the paths that need no streaming.
fn answer(path: &str, count: usize) -> Response {
    let mut response = Response::new(Body::from(format!("{path} #{count}")));
    let headers = response.headers_mut();
    match path {
        "/fresh" => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
        }
        "/hop" => {
            for (name, value) in [
                ("connection", "x-upstream-hop"),
                ("x-upstream-hop", "1"),
                ("keep-alive", "timeout=5"),
                ("proxy-connection", "keep-alive"),
                ("proxy-authenticate", "Basic realm=\"upstream\""),
                ("trailer", "x-checksum"),
                ("upgrade", "h2c"),
                ("x-end-to-end", "kept"),
            ] {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
        "/via" => {
            headers.insert(header::VIA, HeaderValue::from_static("1.1 origin-side"));
        }
        _ => {}
    }
    response
}

/// `first`, then, once released, `last`; never stored.
fn stream_down(release: Arc<Notify>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        tx.send(Bytes::from_static(b"first")).await.ok();
        release.notified().await;
        tx.send(Bytes::from_static(b"last")).await.ok();
    });
    let chunks = stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|chunk| (Ok::<_, Infallible>(chunk), rx)) },
    );
    let mut response = Response::new(Body::from_stream(chunks));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Reads the first chunk of the request body, says so, then the rest; answers
/// with everything it read.
async fn stream_up(upstream: &Upstream, parts: &http::request::Parts, mut body: Body) -> Response {
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.expect("the request body streams").into_data() else {
            continue;
        };
        if read.is_empty() {
            upstream.first_chunk.notify_one();
        }
        read.extend_from_slice(&data);
    }
    upstream.record(parts, Bytes::from(read.clone()));
    Response::new(Body::from(read))
}

fn large_body() -> Vec<u8> {
    (0..LARGE).map(|i| u8::try_from(i % 251).unwrap()).collect()
}

async fn start_upstream() -> (Upstream, SocketAddr) {
    let upstream = Upstream::default();
    let app = Router::new().fallback(origin).with_state(upstream.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (upstream, addr)
}

async fn start_proxy(config: Config) -> SocketAddr {
    let proxy = Proxy::new(&config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, proxy));
    addr
}

fn config_for(upstream: SocketAddr) -> Config {
    Config::new(format!("http://{upstream}").parse().unwrap())
}

/// An upstream and a proxy in front of it, with a client and the proxy's URL.
struct Setup {
    upstream: Upstream,
    upstream_addr: SocketAddr,
    proxy: String,
    client: reqwest::Client,
}

impl Setup {
    async fn new() -> Self {
        Self::with(|config| config).await
    }

    async fn with(configure: impl FnOnce(Config) -> Config) -> Self {
        let (upstream, upstream_addr) = start_upstream().await;
        let proxy = start_proxy(configure(config_for(upstream_addr))).await;
        Setup {
            upstream,
            upstream_addr,
            proxy: format!("http://{proxy}"),
            client: client(),
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.proxy)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_is_forwarded_with_path_query_and_body() {
    let setup = Setup::new().await;
    let query = "a=1&b=two%20words&a=3";
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ] {
        let path = format!("/methods/{}", method.as_str().to_lowercase());
        let body = format!("the body of a {method}");
        let response = setup
            .client
            .request(method.clone(), setup.url(&format!("{path}?{query}")))
            .header("x-custom", "kept as sent")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(response.text().await.unwrap(), format!("{path} #1"), "{method}");
        let seen = setup.upstream.only(&path);
        assert_eq!(seen.method, method);
        assert_eq!(seen.query.as_deref(), Some(query), "{method}");
        assert_eq!(seen.headers["x-custom"], "kept as sent", "{method}");
        if method == Method::GET {
            // No key holds a GET's body: the upstream never sees one.
            assert!(seen.body.is_empty(), "{method}");
            assert!(!seen.headers.contains_key(header::CONTENT_LENGTH), "{method}");
            continue;
        }
        assert_eq!(seen.body, body.as_bytes(), "{method}");
        assert_eq!(seen.headers[header::CONTENT_LENGTH], body.len().to_string().as_str(), "{method}");
    }

    // HEAD: forwarded with its path and query; the cache fetches a HEAD
    // that misses as a GET (so that the response can be stored for both),
    // and the client gets the headers without a body.
    let response = setup
        .client
        .head(setup.url(&format!("/methods/head?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_LENGTH], "16");
    assert_eq!(response.bytes().await.unwrap(), "");
    let seen = setup.upstream.only("/methods/head");
    assert!(seen.method == Method::GET || seen.method == Method::HEAD, "{}", seen.method);
    assert_eq!(seen.query.as_deref(), Some(query));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_is_the_upstream_authority() {
    let setup = Setup::new().await;
    let response = setup
        .client
        .get(setup.url("/host"))
        .header(header::HOST, "www.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = setup.upstream.only("/host");
    assert_eq!(seen.headers[header::HOST], setup.upstream_addr.to_string().as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let setup = Setup::new().await;
    let hop_request = |url: String| {
        setup
            .client
            .post(url)
            .header(header::CONNECTION, "x-client-hop")
            .header("x-client-hop", "1")
            .header("keep-alive", "timeout=5")
            .header("proxy-connection", "keep-alive")
            .header(header::TE, "trailers")
            .header(header::TRAILER, "x-checksum")
            .header(header::PROXY_AUTHORIZATION, "Basic dXNlcjpwYXNz")
            .header("x-end-to-end", "kept")
            .body("hello")
    };
    let hop_request_fields = [
        "connection",
        "x-client-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "proxy-authorization",
    ];
    let hop_response_fields = [
        "connection",
        "x-upstream-hop",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "trailer",
        "upgrade",
    ];

    // The control: straight to the upstream, every field goes through.
    let direct = hop_request(format!("http://{}/hop", setup.upstream_addr)).send().await.unwrap();
    for name in hop_response_fields {
        assert!(direct.headers().contains_key(name), "the upstream does not send {name}");
    }
    let seen = setup.upstream.only("/hop");
    for name in hop_request_fields {
        assert!(seen.headers.contains_key(name), "the client does not send {name}");
    }
    setup.upstream.seen.lock().unwrap().clear();

    let response = hop_request(setup.url("/hop")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let seen = setup.upstream.only("/hop");
    for name in hop_request_fields {
        assert!(!seen.headers.contains_key(name), "the upstream got {name}: {:?}", seen.headers);
    }
    assert_eq!(seen.headers["x-end-to-end"], "kept");
    assert_eq!(seen.body, "hello");

    let headers = response.headers();
    for name in hop_response_fields {
        assert!(!headers.contains_key(name), "the client got {name}: {headers:?}");
    }
    assert_eq!(headers["x-end-to-end"], "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn via_is_added_both_ways() {
    let setup = Setup::new().await;
    setup.get("/plain").await;
    assert_eq!(setup.upstream.only("/plain").headers[header::VIA], "1.1 caching-proxy");

    let response = setup
        .client
        .get(setup.url("/via"))
        .header(header::VIA, "1.0 front")
        .send()
        .await
        .unwrap();
    assert_eq!(setup.upstream.only("/via").headers[header::VIA], "1.0 front, 1.1 caching-proxy");
    assert_eq!(response.headers()[header::VIA], "1.1 origin-side, 1.1 caching-proxy");

    let response = setup.get("/no-via-from-upstream").await;
    assert_eq!(response.headers()[header::VIA], "1.1 caching-proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_lists_the_client() {
    let setup = Setup::new().await;
    setup.get("/direct").await;
    assert_eq!(setup.upstream.only("/direct").headers["x-forwarded-for"], "127.0.0.1");

    setup
        .client
        .get(setup.url("/behind-another-proxy"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    // A client is not a trusted proxy: what it says it forwarded is
    // replaced (see tests/poisoning.rs for a trusted one).
    assert_eq!(setup.upstream.only("/behind-another-proxy").headers["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_through_both_ways() {
    let setup = Setup::new().await;
    let large = large_body();

    // Up and back down: the upstream echoes the 8 MiB body as it reads it.
    let echoed = setup.client.post(setup.url("/echo")).body(large.clone()).send().await.unwrap();
    assert_eq!(echoed.status(), StatusCode::OK);
    let echoed = echoed.bytes().await.unwrap();
    assert_eq!(echoed.len(), LARGE);
    assert!(echoed == large, "the echoed body differs");

    // Down, twice: over --max-body-size, so it streams through uncached.
    for _ in 0..2 {
        let response = setup.get("/large").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_ne!(response.headers()["x-cache"], "HIT");
        let body = response.bytes().await.unwrap();
        assert!(body == large, "the downloaded body differs ({} bytes)", body.len());
    }
    assert_eq!(setup.upstream.seen("/large").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_body_reaches_the_client_before_the_upstream_finishes_it() {
    let setup = Setup::new().await;
    let mut response = tokio::time::timeout(PROMPTLY, setup.get("/stream-down"))
        .await
        .expect("the head arrives");
    let first = tokio::time::timeout(PROMPTLY, response.chunk())
        .await
        .expect("the first chunk arrives alone");
    assert_eq!(first.unwrap().unwrap(), "first");
    setup.upstream.release.notify_one();
    let rest = tokio::time::timeout(PROMPTLY, response.bytes()).await.expect("the rest arrives");
    assert_eq!(rest.unwrap(), "last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_body_reaches_the_upstream_before_the_client_finishes_it() {
    let setup = Setup::new().await;
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let chunks = stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|chunk| (Ok::<_, Infallible>(chunk), rx)) },
    );
    let request = setup
        .client
        .post(setup.url("/stream-up"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send();
    let response = tokio::spawn(request);

    tx.send(Bytes::from_static(b"first ")).await.unwrap();
    tokio::time::timeout(PROMPTLY, setup.upstream.first_chunk.notified())
        .await
        .expect("the upstream reads the first chunk while the client still holds the rest");
    tx.send(Bytes::from_static(b"last")).await.unwrap();
    drop(tx);

    let response = tokio::time::timeout(PROMPTLY, response).await.unwrap().unwrap().unwrap();
    assert_eq!(response.text().await.unwrap(), "first last");
    assert_eq!(setup.upstream.only("/stream-up").body, "first last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_502() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let proxy = start_proxy(config_for(addr)).await;

    let response = client().get(format!("http://{proxy}/anything")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert!(response.text().await.unwrap().contains("Bad Gateway"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_slower_than_the_timeout_is_504() {
    let setup = Setup::with(|config| Config {
        upstream_timeout: Duration::from_millis(300),
        ..config
    })
    .await;
    let start = Instant::now();
    let response = setup.get("/slow").await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(start.elapsed() < PROMPTLY, "answered after {:?}", start.elapsed());
    assert!(response.text().await.unwrap().contains("Gateway Timeout"));
    assert_eq!(setup.upstream.seen("/slow").len(), 1, "the request reached the upstream");

    // The proxy still serves after a timeout.
    assert_eq!(setup.get("/after-timeout").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_response_is_served_from_the_cache() {
    let setup = Setup::new().await;
    let first = setup.get("/fresh").await;
    assert_eq!(first.headers()["x-cache"], "MISS");
    assert_eq!(first.text().await.unwrap(), "/fresh #1");

    let second = setup.get("/fresh").await;
    assert_eq!(second.headers()["x-cache"], "HIT");
    let cache_status = second.headers()["cache-status"].to_str().unwrap().to_owned();
    assert!(cache_status.starts_with("caching-proxy; hit"), "{cache_status}");
    assert_eq!(second.headers()[header::VIA], "1.1 caching-proxy");
    assert_eq!(second.text().await.unwrap(), "/fresh #1");
    assert_eq!(setup.upstream.seen("/fresh").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_without_freshness_is_not_reused() {
    let setup = Setup::new().await;
    let first = setup.get("/no-freshness").await;
    assert_eq!(first.text().await.unwrap(), "/no-freshness #1");

    let second = setup.get("/no-freshness").await;
    assert_ne!(second.headers()["x-cache"], "HIT");
    assert_eq!(second.text().await.unwrap(), "/no-freshness #2");
    assert_eq!(setup.upstream.seen("/no-freshness").len(), 2);
}
