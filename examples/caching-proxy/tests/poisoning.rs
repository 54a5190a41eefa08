//! Nothing a client sends outside the cache key shapes what others are
//! served: forwarding headers, `Host`, a body on a `GET`, and the headers
//! of a `304` that revalidates a stored response for one client.

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::Request,
    http::{StatusCode, header},
    response::Response,
    routing::any,
};
use cache_core::{Cache, Clock, MokaStore};
use caching_proxy::{Config, Proxy};

/// An upstream that writes into the body what it was told of the request:
/// the forwarding headers and the length of the body it received.
async fn upstream(req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let h = &parts.headers;
    let get = |name: &str| h.get(name).map_or("-", |v| v.to_str().unwrap_or("?")).to_owned();
    if parts.uri.path() == "/p" {
        // A stored page, revalidated; the 304 to a client with a cookie
        // sets it again (a rolling session).
        if h.get(header::IF_NONE_MATCH).is_some_and(|v| v == "\"v1\"") {
            let mut r = Response::builder().status(StatusCode::NOT_MODIFIED).header(header::ETAG, "\"v1\"");
            if let Some(cookie) = h.get(header::COOKIE) {
                r = r.header(header::SET_COOKIE, cookie);
            }
            return r.body(Body::empty()).unwrap();
        }
        return Response::builder()
            .header(header::ETAG, "\"v1\"")
            .header(header::CACHE_CONTROL, "max-age=60")
            .body(Body::from("page"))
            .unwrap();
    }
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let seen = format!(
        "xfh={} xfp={} fwd={} xff={} body={}",
        get("x-forwarded-host"),
        get("x-forwarded-proto"),
        get("forwarded"),
        get("x-forwarded-for"),
        body.len()
    );
    Response::builder()
        .header(header::CACHE_CONTROL, "max-age=60")
        .body(Body::from(seen))
        .unwrap()
}

struct Harness {
    proxy: String,
    client: reqwest::Client,
}

async fn harness(trusted: &[&str]) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, Router::new().fallback(any(upstream))).await });
    let mut config = Config::new(upstream_url.parse().unwrap());
    config.trusted_proxies = trusted.iter().map(|a| a.parse().unwrap()).collect();
    let cache = Cache::builder().store(MokaStore::new()).clock(Clock::manual()).build().unwrap();
    let proxy = Proxy::with_cache(&config, cache).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(caching_proxy::serve(listener, proxy));
    Harness {
        proxy: proxy_url,
        client: reqwest::Client::new(),
    }
}

impl Harness {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (String, String) {
        let mut req = self.client.get(format!("{}{path}", self.proxy));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let r = req.send().await.unwrap();
        let x_cache = r.headers()["x-cache"].to_str().unwrap().to_owned();
        (x_cache, r.text().await.unwrap())
    }

    fn host(&self) -> &str {
        self.proxy.trim_start_matches("http://")
    }
}

/// `X-Forwarded-Host`, `X-Forwarded-Proto` and `Forwarded` from a client
/// never reach the upstream: the stored page is the one built for the
/// proxy's own values, for the attacker and everyone after.
#[tokio::test]
async fn forwarding_headers_from_a_client_are_replaced() {
    let h = harness(&[]).await;
    let honest = format!(
        "xfh={host} xfp=http fwd=for=127.0.0.1;host=\"{host}\";proto=http xff=127.0.0.1 body=0",
        host = h.host()
    );
    let attack = [
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=10.0.0.1;host=evil.example;proto=https"),
        ("x-forwarded-for", "10.0.0.1"),
    ];
    assert_eq!(h.get("/x", &attack).await, ("MISS".to_owned(), honest.clone()));
    assert_eq!(h.get("/x", &[]).await, ("HIT".to_owned(), honest.clone()));

    // Naming them in `Connection` (hop-by-hop) does not remove them either.
    let hop = [("connection", "x-forwarded-host, x-forwarded-for, forwarded, x-forwarded-proto")];
    assert_eq!(h.get("/y", &hop).await, ("MISS".to_owned(), honest.clone()));
    assert_eq!(h.get("/y", &[]).await, ("HIT".to_owned(), honest));
}

/// The client's `Host` reaches the upstream (as `X-Forwarded-Host`) and is
/// part of the key: a request with another `Host` gets its own entry.
#[tokio::test]
async fn host_is_keyed() {
    let h = harness(&[]).await;
    let (x_cache, body) = h.get("/x", &[("host", "evil.example")]).await;
    assert_eq!(x_cache, "MISS");
    assert!(body.starts_with("xfh=evil.example "), "{body}");
    let (x_cache, body) = h.get("/x", &[]).await;
    assert_eq!(x_cache, "MISS", "another host, another entry");
    assert!(body.starts_with(&format!("xfh={} ", h.host())), "{body}");
}

/// A body on a `GET` never reaches the upstream.
#[tokio::test]
async fn a_get_body_is_not_forwarded() {
    let h = harness(&[]).await;
    let r = h.client.get(format!("{}/b", h.proxy)).body("poison").send().await.unwrap();
    assert!(r.text().await.unwrap().ends_with(" body=0"));
    let (x_cache, body) = h.get("/b", &[]).await;
    assert_eq!(x_cache, "HIT");
    assert!(body.ends_with(" body=0"), "{body}");
}

/// A load balancer the proxy trusts keeps its forwarding headers, and the
/// key includes the host and scheme it names.
#[tokio::test]
async fn a_trusted_proxy_in_front_keeps_its_headers() {
    let h = harness(&["127.0.0.1"]).await;
    let lb = [
        ("x-forwarded-host", "shop.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "203.0.113.9"),
    ];
    let (x_cache, body) = h.get("/x", &lb).await;
    assert_eq!(x_cache, "MISS");
    assert!(body.starts_with("xfh=shop.example xfp=https "), "{body}");
    assert!(body.ends_with(" xff=203.0.113.9, 127.0.0.1 body=0"), "{body}");
    assert_eq!(h.get("/x", &lb).await.0, "HIT");
    let other = [("x-forwarded-host", "other.example"), ("x-forwarded-proto", "https")];
    assert_eq!(h.get("/x", &other).await.0, "MISS", "another host named by the balancer");
}

/// A `304` that revalidates the stored page for a client with a cookie
/// sets that client's cookie: it reaches that client only, and what
/// everyone else is served never carries it (RFC 9111 §4.3.4 with the
/// storage rules of a `200`).
#[tokio::test]
async fn a_304_with_set_cookie_is_not_stored() {
    let h = harness(&[]).await;
    assert_eq!(h.get("/p", &[]).await.0, "MISS");
    let r = h
        .client
        .get(format!("{}/p", h.proxy))
        .header("cookie", "sid=VICTIM")
        .header("cache-control", "no-cache")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-status"], "cache; fwd=request; fwd-status=304");
    assert_eq!(r.headers()["set-cookie"], "sid=VICTIM");
    for _ in 0..2 {
        let r = h.client.get(format!("{}/p", h.proxy)).send().await.unwrap();
        assert_eq!(r.headers()["x-cache"], "HIT");
        assert!(r.headers().get("set-cookie").is_none(), "another client's cookie");
        assert_eq!(r.text().await.unwrap(), "page");
    }
}
