//! The test app on axum, behind `cache-axum` layers.

use std::time::Duration;

use axum::{
    Extension, Router,
    body::Body,
    extract::{MatchedPath, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::any,
};
use cache_axum::{Cache, CacheLayer, Invalidator, Policies};

use crate::{
    Adapter, Server,
    origin::{DEADLINE_HEADER, Origin, OriginBody, OriginRequest},
};

/// Mounts every test route with `get(..).layer(CacheLayer::new(..))`.
#[derive(Debug)]
pub struct Axum;

impl Adapter for Axum {
    const BACKGROUND_REFRESH: bool = true;

    async fn start(cache: Cache, origin: Origin) -> Server {
        let mut router = Router::new();
        for (pattern, policy) in origin.routes() {
            let route = match policy {
                Some(policy) => any(handle).layer(CacheLayer::new(&cache, policy)),
                None => any(handle),
            };
            router = router.route(pattern, route.layer(middleware::from_fn(deadline)));
        }
        serve(router.with_state(origin.clone()), origin, cache).await
    }

    async fn start_with_table(cache: Cache, origin: Origin, policies: Policies) -> Server {
        let router = Router::new()
            .fallback(handle)
            .layer(CacheLayer::new(&cache, policies))
            .layer(middleware::from_fn(deadline));
        serve(router.with_state(origin.clone()), origin, cache).await
    }
}

/// Serves `router` on a free loopback port.
pub async fn serve(router: Router, origin: Origin, cache: Cache) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
    let addr = listener.local_addr().expect("a bound listener has an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server::new(format!("http://{addr}"), origin, cache)
}

/// Drops the request's future after [`DEADLINE_HEADER`] milliseconds.
async fn deadline(req: Request, next: Next) -> Response {
    let Some(ms) = req.headers().get(DEADLINE_HEADER).and_then(|v| v.to_str().ok()?.parse().ok()) else {
        return next.run(req).await;
    };
    match tokio::time::timeout(Duration::from_millis(ms), next.run(req)).await {
        Ok(response) => response,
        Err(_) => StatusCode::GATEWAY_TIMEOUT.into_response(),
    }
}

/// The handler of every test route.
pub async fn handle(
    State(origin): State<Origin>,
    pattern: Option<MatchedPath>,
    invalidator: Option<Extension<Invalidator>>,
    req: Request,
) -> Response {
    let (parts, _body) = req.into_parts();
    let request = OriginRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        invalidator: invalidator.map(|Extension(i)| i),
    };
    let answer = origin.respond(pattern.as_ref().map(MatchedPath::as_str), request).await;
    let body = match answer.body {
        OriginBody::Full(bytes) => Body::from(bytes),
        OriginBody::Stream(stream) => Body::from_stream(stream),
    };
    let mut response = Response::new(body);
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    if let Some(hints) = answer.hints {
        response.extensions_mut().insert(hints);
    }
    response
}
