//! The purge API of the proxy (`--purge-token`), through real sockets: a
//! counting upstream, the proxy, reqwest as the client.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{Router, extract::State, http::Method as AxumMethod, response::IntoResponse};
use caching_proxy::{Config, Proxy, policy, serve};
use http::{HeaderValue, StatusCode, header};
use reqwest::{Client, Method};
use tokio::net::TcpListener;

const TOKEN: &str = "proxy-purge-token";

/// Counts the requests that reach it, and the `PURGE`s; every `GET` is
/// fresh for a minute.
#[derive(Clone, Default)]
struct Upstream {
    calls: Arc<AtomicUsize>,
    purges: Arc<AtomicUsize>,
}

async fn origin(State(upstream): State<Upstream>, method: AxumMethod) -> impl IntoResponse {
    upstream.calls.fetch_add(1, Ordering::SeqCst);
    if method.as_str() == "PURGE" {
        upstream.purges.fetch_add(1, Ordering::SeqCst);
    }
    ([(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"))], "page")
}

struct Setup {
    upstream: Upstream,
    proxy: String,
    client: Client,
}

impl Setup {
    async fn start(purge_token: Option<&str>) -> Setup {
        let upstream = Upstream::default();
        let app = Router::new().fallback(origin).with_state(upstream.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let config = Config {
            purge_token: purge_token.map(|token| token.parse().unwrap()),
            ..Config::new(format!("http://{upstream_addr}").parse().unwrap())
        };
        let proxy = Proxy::new(&config).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, proxy));
        Setup {
            upstream,
            proxy: format!("http://{addr}"),
            client: Client::new(),
        }
    }

    async fn x_cache(&self, path: &str) -> String {
        let response = self.client.get(format!("{}{path}", self.proxy)).send().await.unwrap();
        response.headers()["x-cache"].to_str().unwrap().to_owned()
    }

    async fn send(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (StatusCode, String) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.proxy)).body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_method_and_endpoint_drop_entries() {
    let s = Setup::start(Some(TOKEN)).await;
    for path in ["/a?x=1", "/a?x=2", "/b"] {
        assert_eq!(s.x_cache(path).await, "MISS");
        assert_eq!(s.x_cache(path).await, "HIT");
    }
    assert_eq!(s.send("PURGE", "/a?x=1", None, "").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.send("PURGE", "/a?x=1", Some("wrong"), "").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.x_cache("/a?x=1").await, "HIT");

    let purged = s.send("PURGE", "/a?x=1", Some(TOKEN), "").await;
    assert_eq!(purged, (StatusCode::OK, r#"{"dropped":1}"#.to_owned()));
    assert_eq!(s.x_cache("/a?x=1").await, "MISS");
    assert_eq!(s.x_cache("/a?x=2").await, "HIT");

    let prefix = policy(&Config::new("http://127.0.0.1:1".parse().unwrap()))
        .unwrap()
        .key()
        .prefix(None, "/a");
    let body = format!(r#"{{"prefixes": ["{prefix}"]}}"#);
    assert_eq!(
        s.send("POST", "/purge", Some(TOKEN), &body).await,
        (StatusCode::OK, r#"{"dropped":2}"#.to_owned())
    );
    assert_eq!(s.x_cache("/a?x=2").await, "MISS");
    assert_eq!(s.x_cache("/b").await, "HIT");
    assert_eq!(s.send("POST", "/purge", None, &body).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.upstream.purges.load(Ordering::SeqCst), 0, "purges are not forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_purges_are_forwarded() {
    let s = Setup::start(None).await;
    assert_eq!(s.x_cache("/a").await, "MISS");
    assert_eq!(s.send("PURGE", "/a", Some(TOKEN), "").await.0, StatusCode::OK);
    assert_eq!(s.upstream.purges.load(Ordering::SeqCst), 1, "the PURGE reached the upstream");
    let calls = s.upstream.calls.load(Ordering::SeqCst);
    s.send("POST", "/purge", Some(TOKEN), r#"{"tags": ["x"]}"#).await;
    assert_eq!(
        s.upstream.calls.load(Ordering::SeqCst),
        calls + 1,
        "POST /purge reached the upstream"
    );
}
