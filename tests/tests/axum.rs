//! The behaviour suite through the axum adapter, and what only axum has:
//! a router-wide layer with per-route policies.

use axum::{Router, routing::any};
use cache_axum::{Cache, CacheLayer};
use cache_tests::{
    Server,
    axum_adapter::{Axum, handle, serve},
    origin::Origin,
    support::{assert_route_overrides, cache_status, manual_cache, policy},
};

cache_tests::behaviour_suite!(Axum);

async fn start(layer: impl FnOnce(&Cache) -> Router<Origin>) -> Server {
    let cache = manual_cache();
    let origin = Origin::default();
    let router = layer(&cache).with_state(origin.clone());
    serve(router, origin, cache).await
}

/// One layer on the router: a default policy, per-route overrides by
/// pattern, and a route left uncached.
#[tokio::test]
async fn router_wide_layer_with_route_overrides() {
    let s = start(|cache| {
        let layer = CacheLayer::new(cache, policy("60s"))
            .route("/plain/{id}", policy("1h"))
            .route("/uncached", None);
        Router::new()
            .route("/plain/{id}", any(handle))
            .route("/etag", any(handle))
            .route("/uncached", any(handle))
            .layer(layer)
    })
    .await;
    assert_route_overrides(&s).await;
}

/// A request that passes two cache layers is served by the outer one only:
/// one origin call, one `Cache-Status`.
#[tokio::test]
async fn nested_layers_serve_once() {
    let s = start(|cache| {
        let inner = any(handle).layer(CacheLayer::new(cache, policy("1h")));
        Router::new()
            .route("/plain/{id}", inner)
            .layer(CacheLayer::new(cache, policy("60s")))
    })
    .await;
    assert_eq!(cache_status(&s, "/plain/2").await, "cache; fwd=uri-miss; fwd-status=200; stored");
    assert_eq!(cache_status(&s, "/plain/2").await, "cache; hit; ttl=60");
    assert_eq!(s.origin.calls("/plain/2"), 1);
}
