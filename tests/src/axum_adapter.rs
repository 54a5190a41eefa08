//! The test app on axum, behind `cache-axum` layers.

use axum::{
    Extension, Router,
    body::Body,
    extract::{Request, State},
    response::Response,
    routing::any,
};
use cache_axum::{Cache, CacheLayer, Invalidator};

use crate::{
    Adapter, Server,
    origin::{Origin, OriginBody, OriginRequest, routes},
};

/// Mounts every test route with `get(..).layer(CacheLayer::new(..))`.
#[derive(Debug)]
pub struct Axum;

impl Adapter for Axum {
    async fn start(cache: Cache, origin: Origin) -> Server {
        let mut router = Router::new();
        for (pattern, policy) in routes() {
            let route = any(handle);
            router = match policy {
                Some(policy) => router.route(pattern, route.layer(CacheLayer::new(&cache, policy))),
                None => router.route(pattern, route),
            };
        }
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

/// The handler of every test route.
pub async fn handle(State(origin): State<Origin>, invalidator: Option<Extension<Invalidator>>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let request = OriginRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        invalidator: invalidator.map(|Extension(i)| i),
    };
    let answer = origin.respond(request).await;
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
