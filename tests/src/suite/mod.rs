//! The behaviour tests, written once for every adapter.
//!
//! Each test starts its own app with a manual clock, so TTLs and ages are
//! exact and expiry is tested by moving the clock, never by sleeping.

mod coalescing;
mod conditional;
mod failures;
mod freshness;
mod headers;
mod invalidation;
mod storage;

pub use coalescing::*;
pub use conditional::*;
pub use failures::*;
pub use freshness::*;
pub use headers::*;
pub use invalidation::*;
pub use storage::*;

use std::time::Duration;

use cache_core::{Cache, CachePolicy, CachePolicyBuilder, Clock, Policies};
use futures_util::future::join_all;
use reqwest::{Method, Response, StatusCode};

use crate::{
    Adapter, App, Server,
    handlers::{BIG_FIRST_CHUNK, LAST_MODIFIED},
    origin::{DEADLINE_HEADER, Origin},
    stores::{CorruptStore, FailingStore},
};

/// Every wait on a condition in these tests is bounded by this.
const PATIENCE: Duration = Duration::from_secs(5);

/// A policy builder, as routes declare them.
fn p() -> CachePolicyBuilder {
    CachePolicy::builder()
}

/// `/plain/{id}`: [`plain`](crate::handlers::plain) behind a one-minute
/// policy tagged `plain:{id}`; the route [`new_origin_version`] changes the
/// data through.
fn with_plain(app: App) -> App {
    app.route("/plain/{id}", p().ttl("60s").tag("plain:{id}"), crate::handlers::plain)
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
/// invalidates only `/plain/1`): the app needs [`with_plain`]'s route.
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

async fn conditional(s: &Server, path: &str, name: &str, value: &str) -> Response {
    s.get(path).header(name, value).send().await.unwrap()
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

async fn with_lang(s: &Server, path: &str, lang: &str) -> (String, String, String) {
    let r = s.get(path).header("accept-language", lang).send().await.unwrap();
    let (x, cs) = (header(&r, "x-cache"), header(&r, "cache-status"));
    (x, cs, r.text().await.unwrap())
}
