//! The proxy's `GET /metrics` through real sockets: an upstream, the proxy
//! with its metrics endpoint on (as the binary runs it), reqwest as the
//! client. The only test of this binary, which holds the process's
//! Prometheus recorder: the values are exact.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, extract::State, http::HeaderValue, response::IntoResponse};
use caching_proxy::{Config, Proxy, metrics, serve};
use http::{StatusCode, header};
use reqwest::Client;
use tokio::net::TcpListener;

/// Every path is fresh for a minute; `/private` is never stored. Counts
/// the requests that reach it.
async fn origin(State(calls): State<Arc<AtomicUsize>>, uri: http::Uri) -> impl IntoResponse {
    calls.fetch_add(1, Ordering::SeqCst);
    let cache_control = if uri.path() == "/private" { "private" } else { "max-age=60" };
    ([(header::CACHE_CONTROL, HeaderValue::from_static(cache_control))], "page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_outcome_and_are_not_forwarded() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new().fallback(origin).with_state(Arc::clone(&calls));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let upstream = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = Config::new(format!("http://{upstream}").parse().expect("a valid upstream"));
    let proxy = Proxy::new(&config).expect("the proxy builds").with_metrics(metrics::prometheus());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(serve(listener, proxy));
    let client = Client::new();
    let x_cache = |path: &'static str| {
        let request = client.get(format!("{base}{path}"));
        async move {
            let response = request.send().await.expect("the proxy answers");
            response.headers()["x-cache"].to_str().expect("ASCII").to_owned()
        }
    };

    assert_eq!(x_cache("/a").await, "MISS");
    assert_eq!(x_cache("/a").await, "HIT");
    assert_eq!(x_cache("/a?b=1").await, "MISS");
    assert_eq!(x_cache("/private").await, "MISS");
    let post = client.post(format!("{base}/a")).send().await.expect("the proxy answers");
    assert_eq!(post.headers()["x-cache"], "BYPASS");
    assert_eq!(x_cache("/a").await, "MISS", "the POST dropped it");
    assert_eq!(calls.load(Ordering::SeqCst), 5);

    let response = client.get(format!("{base}/metrics")).send().await.expect("the proxy answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], metrics::CONTENT_TYPE);
    assert!(response.headers().get("x-cache").is_none(), "not through the cache");
    let text = response.text().await.expect("a text body");
    assert_eq!(calls.load(Ordering::SeqCst), 5, "not forwarded upstream");
    for line in [
        "# TYPE http_cache_requests_total counter",
        r#"http_cache_requests_total{route="default",outcome="miss"} 4"#,
        r#"http_cache_requests_total{route="default",outcome="hit"} 1"#,
        r#"http_cache_requests_total{route="default",outcome="bypass"} 1"#,
        // The POST dropped the URI's variants: `/a` (the `?b=1` one has a
        // key of its own URI).
        r#"http_cache_invalidations_total{kind="tag"} 1"#,
        r#"http_cache_invalidated_entries_total{kind="tag"} 1"#,
        // `/a?b=1` and `/a` again.
        r#"http_cache_store_entries{store="moka"} 2"#,
        r#"http_cache_store_operation_seconds_count{store="moka",operation="put"} 3"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with(r#"http_cache_store_operation_seconds_bucket{store="moka",operation="get",le="0.00001"}"#)),
        "store latency is a histogram with the library's buckets:\n{text}"
    );
    assert!(!text.contains("/a?b=1") && !text.contains("/private"), "no URL is a label:\n{text}");

    let head = client.head(format!("{base}/metrics")).send().await.expect("the proxy answers");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}
