//! The purge API through real HTTP, written once for both adapters.
//!
//! Each adapter serves the test [`routes`] behind their cache layers, the
//! purge endpoint at `/purge`, and the `PURGE` layer or middleware around
//! the whole app with the routes' policies by pattern ([`PurgeApp`]).
//! `tests/purge.rs` instantiates [`purge_suite!`](crate::purge_suite) per
//! adapter.

use std::future::Future;

use actix_web::{App, web};
use axum::{Router, routing::any};
use cache_actix::CacheMiddleware;
use cache_axum::CacheLayer;
use cache_core::{
    Cache, CachePolicy, Clock, MokaStore, Policies, Store,
    purge::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ITEMS, PurgeAuth, Purger},
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    Server, actix_adapter, axum_adapter,
    origin::{Origin, routes},
    stores::FailingStore,
};

/// The token the test apps accept.
pub const TOKEN: &str = "test-purge-token-0123456789";

/// Starts the test app with the purge API on one web framework.
pub trait PurgeApp {
    /// Serves the test routes, `POST /purge` and `PURGE` on every route,
    /// purging `cache` with `purger`.
    fn start(cache: Cache, origin: Origin, purger: Purger) -> impl Future<Output = Server> + Send;
}

/// Every test route's policy by pattern: what the `PURGE` layer builds keys
/// with, as the cache layers do.
pub fn policies() -> Policies {
    routes()
        .into_iter()
        .fold(Policies::new(None), |table, (pattern, policy)| table.route(pattern, policy))
}

/// The axum app: `any(handle).layer(CacheLayer)` per route, the purge router
/// merged in, the `PurgeLayer` on the router.
#[derive(Debug)]
pub struct AxumPurge;

impl PurgeApp for AxumPurge {
    async fn start(cache: Cache, origin: Origin, purger: Purger) -> Server {
        let mut router = Router::new();
        for (pattern, policy) in routes() {
            let route = match policy {
                Some(policy) => any(axum_adapter::handle).layer(CacheLayer::new(&cache, policy)),
                None => any(axum_adapter::handle),
            };
            router = router.route(pattern, route);
        }
        let router = router
            .merge(cache_axum::purge::purge_router(
                &cache,
                PurgeAuth::bearer(TOKEN).expect("a valid token"),
            ))
            .layer(cache_axum::purge::PurgeLayer::new(purger, policies()));
        axum_adapter::serve(router.with_state(origin.clone()), origin, cache).await
    }
}

/// The actix app: a resource wrapped in a `CacheMiddleware` per route, the
/// purge resource, the `PurgeMiddleware` around the app.
#[derive(Debug)]
pub struct ActixPurge;

impl PurgeApp for ActixPurge {
    async fn start(cache: Cache, origin: Origin, purger: Purger) -> Server {
        let (app_cache, app_origin) = (cache.clone(), origin.clone());
        actix_adapter::serve(
            move || {
                let mut app = App::new()
                    .wrap(cache_actix::purge::PurgeMiddleware::new(purger.clone(), policies()))
                    .app_data(web::Data::new(app_origin.clone()))
                    .service(cache_actix::purge::purge_resource("/purge", purger.clone()));
                for (pattern, policy) in routes() {
                    let resource = web::resource(pattern).route(web::route().to(actix_adapter::handle));
                    app = match policy {
                        Some(policy) => app.service(resource.wrap(CacheMiddleware::new(&app_cache, policy))),
                        None => app.service(resource),
                    };
                }
                app
            },
            origin,
            cache,
        )
    }
}

/// Declares one `#[tokio::test]` per purge test, for a [`PurgeApp`].
#[macro_export]
macro_rules! purge_suite {
    ($app:ty) => {
        $crate::purge_suite!($app;
            purge_by_tag,
            purge_by_key,
            purge_by_prefix,
            purge_method_drops_every_variant_of_the_url,
            purge_method_keeps_tenants_apart,
            purge_method_drops_every_principal_variant,
            purge_method_on_an_uncached_path_is_404,
            missing_or_wrong_token_is_401_and_drops_nothing,
            too_large_body_is_413,
            too_large_chunked_body_is_413,
            too_many_items_bad_json_and_empty_requests_are_400,
            other_methods_on_the_endpoint_are_405,
            store_failure_is_503,
        );
    };
    ($app:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::purge::$name::<$app>().await;
            }
        )*
    };
}

async fn start<A: PurgeApp>() -> Server {
    start_on::<A>(MokaStore::new()).await
}

async fn start_on<A: PurgeApp>(store: impl Store) -> Server {
    let cache = Cache::builder().store(store).clock(Clock::manual()).build().expect("a valid cache");
    let purger = Purger::new(&cache, PurgeAuth::bearer(TOKEN).expect("a valid token"));
    A::start(cache, Origin::default(), purger).await
}

/// The `X-Cache` of a GET of `path`.
async fn x_cache(s: &Server, path: &str) -> String {
    x_cache_of(s.get(path)).await
}

async fn x_cache_of(request: RequestBuilder) -> String {
    let response = request.send().await.expect("the app answers");
    assert_eq!(response.status(), StatusCode::OK);
    let value = response
        .headers()
        .get("x-cache")
        .expect("an x-cache header")
        .to_str()
        .expect("ASCII");
    value.to_owned()
}

/// Stores `path` and checks that the next GET is a hit.
async fn cached(s: &Server, path: &str) {
    assert_eq!(x_cache(s, path).await, "MISS", "{path} starts uncached");
    assert_eq!(x_cache(s, path).await, "HIT", "{path} is stored");
}

/// `POST /purge` with `body` and the token.
async fn post(s: &Server, body: impl Into<reqwest::Body>) -> Response {
    s.request(Method::POST, "/purge")
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .expect("the app answers")
}

fn purge(s: &Server, path: &str) -> RequestBuilder {
    s.request(Method::from_bytes(b"PURGE").expect("a valid method"), path)
}

/// Status and body of an answer.
async fn answer(response: Response) -> (StatusCode, String) {
    let status = response.status();
    if status != StatusCode::METHOD_NOT_ALLOWED {
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.text().await.expect("a body"))
}

/// The policy of `/plain/{id}`, to build keys and prefixes with.
fn plain_policy() -> CachePolicy {
    routes()
        .into_iter()
        .find_map(|(pattern, policy)| (pattern == "/plain/{id}").then_some(policy).flatten())
        .expect("the test routes have /plain/{id}")
}

fn key_of(path: &str) -> String {
    let (parts, ()) = http::Request::get(path).body(()).expect("a valid request").into_parts();
    plain_policy().key().build(&parts).as_str().to_owned()
}

/// `{"tags": [...]}` drops the entries of the tag only.
pub async fn purge_by_tag<A: PurgeApp>() {
    let s = start::<A>().await;
    cached(&s, "/plain/1").await;
    cached(&s, "/plain/2").await;
    let response = post(&s, r#"{"tags": ["plain:1", "no-such-tag"]}"#).await;
    assert_eq!(answer(response).await, (StatusCode::OK, r#"{"dropped":1}"#.to_owned()));
    assert_eq!(x_cache(&s, "/plain/1").await, "MISS");
    assert_eq!(x_cache(&s, "/plain/2").await, "HIT");
    assert_eq!(s.origin.calls("/plain/1"), 2);
}

/// `{"keys": [...]}` drops the entries stored at those keys.
pub async fn purge_by_key<A: PurgeApp>() {
    let s = start::<A>().await;
    cached(&s, "/plain/3").await;
    cached(&s, "/plain/4").await;
    let body = format!(r#"{{"keys": ["{}", "{}"]}}"#, key_of("/plain/3"), key_of("/plain/5"));
    assert_eq!(answer(post(&s, body).await).await, (StatusCode::OK, r#"{"dropped":1}"#.to_owned()));
    assert_eq!(x_cache(&s, "/plain/3").await, "MISS");
    assert_eq!(x_cache(&s, "/plain/4").await, "HIT");
}

/// `{"prefixes": [...]}` drops every entry whose key starts with one.
pub async fn purge_by_prefix<A: PurgeApp>() {
    let s = start::<A>().await;
    cached(&s, "/plain/6").await;
    cached(&s, "/plain/7").await;
    cached(&s, "/etag").await;
    let body = format!(r#"{{"prefixes": ["{}"]}}"#, plain_policy().key().prefix(None, "/plain/"));
    assert_eq!(answer(post(&s, body).await).await, (StatusCode::OK, r#"{"dropped":2}"#.to_owned()));
    assert_eq!(x_cache(&s, "/plain/6").await, "MISS");
    assert_eq!(x_cache(&s, "/plain/7").await, "MISS");
    assert_eq!(x_cache(&s, "/etag").await, "HIT");
}

/// `PURGE <url>` drops every stored variant of the URL (here two `Vary`
/// variants), not other URLs, and never reaches the origin.
pub async fn purge_method_drops_every_variant_of_the_url<A: PurgeApp>() {
    let s = start::<A>().await;
    let lang = |lang: &str, path: &str| s.get(path).header("accept-language", lang);
    for path in ["/vary-policy?q=1", "/vary-policy?q=2"] {
        for language in ["en", "fr"] {
            assert_eq!(x_cache_of(lang(language, path)).await, "MISS");
            assert_eq!(x_cache_of(lang(language, path)).await, "HIT");
        }
    }
    let calls = s.origin.calls("/vary-policy");
    let response = purge(&s, "/vary-policy?q=1").bearer_auth(TOKEN).send().await.expect("an answer");
    assert_eq!(answer(response).await, (StatusCode::OK, r#"{"dropped":2}"#.to_owned()));
    assert_eq!(s.origin.calls("/vary-policy"), calls, "PURGE does not reach the origin");
    assert_eq!(x_cache_of(lang("en", "/vary-policy?q=1")).await, "MISS");
    assert_eq!(x_cache_of(lang("fr", "/vary-policy?q=1")).await, "MISS");
    assert_eq!(x_cache_of(lang("en", "/vary-policy?q=2")).await, "HIT");
}

/// A `PURGE` builds its key as the route's policy does: on a tenant-keyed
/// route, with the tenant header it carries, and only that tenant's entry
/// goes.
pub async fn purge_method_keeps_tenants_apart<A: PurgeApp>() {
    let s = start::<A>().await;
    let as_tenant = |tenant: &str| s.get("/tenant/1").header("x-tenant-id", tenant);
    for tenant in ["acme", "globex"] {
        assert_eq!(x_cache_of(as_tenant(tenant)).await, "MISS");
    }
    let response = purge(&s, "/tenant/1").header("x-tenant-id", "acme").bearer_auth(TOKEN).send().await;
    assert_eq!(
        answer(response.expect("an answer")).await,
        (StatusCode::OK, r#"{"dropped":1}"#.to_owned())
    );
    assert_eq!(x_cache_of(as_tenant("acme")).await, "MISS");
    assert_eq!(x_cache_of(as_tenant("globex")).await, "HIT");
}

/// On a route keyed by principal, a `PURGE` drops every principal's
/// variant; the purge token is not taken for a principal.
pub async fn purge_method_drops_every_principal_variant<A: PurgeApp>() {
    let s = start::<A>().await;
    let as_user = |who: &str| s.get("/principal").header("authorization", format!("Bearer {who}"));
    for who in ["alice", "bob"] {
        assert_eq!(x_cache_of(as_user(who)).await, "MISS");
        assert_eq!(x_cache_of(as_user(who)).await, "HIT");
    }
    let response = purge(&s, "/principal").bearer_auth(TOKEN).send().await.expect("an answer");
    assert_eq!(answer(response).await, (StatusCode::OK, r#"{"dropped":2}"#.to_owned()));
    assert_eq!(x_cache_of(as_user("alice")).await, "MISS");
    assert_eq!(x_cache_of(as_user("bob")).await, "MISS");
}

/// A `PURGE` of a URL that no policy covers is `404`; with a wrong token,
/// `401` first.
pub async fn purge_method_on_an_uncached_path_is_404<A: PurgeApp>() {
    let s = start::<A>().await;
    let response = purge(&s, "/uncached").bearer_auth(TOKEN).send().await.expect("an answer");
    assert_eq!(answer(response).await.0, StatusCode::NOT_FOUND);
    let response = purge(&s, "/uncached").bearer_auth("wrong").send().await.expect("an answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.origin.calls("/uncached"), 0);
}

/// Without the token, or with another one, every purge is `401` with a
/// `Bearer` challenge, and every entry stays.
pub async fn missing_or_wrong_token_is_401_and_drops_nothing<A: PurgeApp>() {
    let s = start::<A>().await;
    cached(&s, "/plain/8").await;
    let body = r#"{"tags": ["plain:8"]}"#;
    let attempts = [
        s.request(Method::POST, "/purge").body(body),
        s.request(Method::POST, "/purge").bearer_auth("wrong-token").body(body),
        s.request(Method::POST, "/purge").bearer_auth(&TOKEN[1..]).body(body),
        s.request(Method::POST, "/purge").basic_auth("admin", Some(TOKEN)).body(body),
        purge(&s, "/plain/8"),
        purge(&s, "/plain/8").bearer_auth("wrong-token"),
    ];
    for attempt in attempts {
        let response = attempt.send().await.expect("an answer");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("ASCII").to_owned());
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer")), "a Bearer challenge");
        let (status, body) = answer(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!body.contains(TOKEN) && body.contains("error"), "{body}");
    }
    assert_eq!(x_cache(&s, "/plain/8").await, "HIT", "nothing was dropped");
}

/// A body over the limit (64 KiB) is `413`, and nothing is dropped.
pub async fn too_large_body_is_413<A: PurgeApp>() {
    let s = start::<A>().await;
    cached(&s, "/plain/9").await;
    let padding = " ".repeat(DEFAULT_MAX_BODY_BYTES);
    let response = post(&s, format!(r#"{{"tags": ["plain:9"]}}{padding}"#)).await;
    // The rest of the body is not read: the connection is not reused.
    assert_eq!(response.headers().get("connection").map(|v| v.as_bytes()), Some(&b"close"[..]));
    assert_eq!(answer(response).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(x_cache(&s, "/plain/9").await, "HIT");
}

/// A body over the limit that declares no length (chunked) is `413` too,
/// once the limit is read.
pub async fn too_large_chunked_body_is_413<A: PurgeApp>() {
    let s = start::<A>().await;
    cached(&s, "/plain/11").await;
    let chunk = format!(r#"{{"tags": ["plain:11"]}}{}"#, " ".repeat(DEFAULT_MAX_BODY_BYTES));
    let authority = s.base.strip_prefix("http://").expect("an http base URL");
    let request = format!(
        "POST /purge HTTP/1.1\r\nhost: {authority}\r\nauthorization: Bearer {TOKEN}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let mut stream = tokio::net::TcpStream::connect(authority).await.expect("the app listens");
    stream.write_all(request.as_bytes()).await.expect("the request is sent");
    let mut head = [0; 12];
    stream.read_exact(&mut head).await.expect("a status line");
    assert_eq!(&head, b"HTTP/1.1 413");
    assert_eq!(x_cache(&s, "/plain/11").await, "HIT");
}

/// More items than the limit (1000), JSON that is not a purge request, and
/// a request naming nothing are `400`; nothing is dropped.
pub async fn too_many_items_bad_json_and_empty_requests_are_400<A: PurgeApp>() {
    let s = start::<A>().await;
    cached(&s, "/plain/10").await;
    let tags: Vec<String> = (0..=DEFAULT_MAX_ITEMS).map(|i| format!(r#""plain:{i}""#)).collect();
    let too_many = format!(r#"{{"tags": [{}]}}"#, tags.join(","));
    for body in [
        too_many.as_str(),
        r#"{"tags": ["plain:10""#,
        "plain:10",
        r#"{"tag": ["plain:10"]}"#,
        "{}",
        r#"{"prefixes": [""]}"#,
    ] {
        let (status, error) = answer(post(&s, body.to_owned()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:.40}");
        assert!(error.starts_with(r#"{"error":"#), "{error}");
    }
    assert_eq!(x_cache(&s, "/plain/10").await, "HIT");
}

/// The endpoint takes `POST` only.
pub async fn other_methods_on_the_endpoint_are_405<A: PurgeApp>() {
    let s = start::<A>().await;
    let response = s.get("/purge").bearer_auth(TOKEN).send().await.expect("an answer");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// A store that fails gives `503` and a JSON error, not a success.
pub async fn store_failure_is_503<A: PurgeApp>() {
    let s = start_on::<A>(FailingStore).await;
    let (status, body) = answer(post(&s, r#"{"tags": ["plain:1"]}"#).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.starts_with(r#"{"error":"#), "{body}");
    let response = purge(&s, "/plain/1").bearer_auth(TOKEN).send().await.expect("an answer");
    assert_eq!(answer(response).await.0, StatusCode::SERVICE_UNAVAILABLE);
}
