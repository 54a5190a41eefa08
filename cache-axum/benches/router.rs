//! A hit through an axum router with a cache layer, next to the same router
//! answering from memory without one: the layer's whole cost in process,
//! without the network.
//!
//! `cargo bench -p cache-axum --bench router`
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use axum::{Router, body::Body, http::Request, routing::get};
use cache_axum::{Cache, CacheLayer, CachePolicy, MokaStore};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;

const BODY: &str =
    r#"{"id":42,"tenant":"acme","name":"Rustic Kettle AC-42","category":"kitchen","price_cents":4599,"description":"A kettle."}"#;

fn request() -> Request<Body> {
    Request::get("/api/v1/products/42")
        .header("x-tenant-id", "acme")
        .header("accept", "*/*")
        .header("user-agent", "bench")
        .body(Body::empty())
        .expect("a valid request")
}

fn routers() -> (Router, Router) {
    let handler = get(|| async { ([("content-type", "application/json")], BODY) });
    let ceiling = Router::new().route("/api/v1/products/{id}", handler.clone());
    let cache = Cache::new(MokaStore::new());
    let policy = CachePolicy::builder()
        .ttl("1h")
        .tenant_header("x-tenant-id")
        .tag("product:{tenant}:{id}")
        .build()
        .expect("a valid policy");
    let cached = Router::new().route("/api/v1/products/{id}", handler.layer(CacheLayer::new(&cache, policy)));
    (ceiling, cached)
}

async fn round_trip(router: &Router) -> usize {
    let response = router.clone().oneshot(request()).await.expect("infallible");
    response.into_body().collect().await.expect("a body").to_bytes().len()
}

fn router(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (ceiling, cached) = routers();
    rt.block_on(round_trip(&cached));
    let mut group = c.benchmark_group("router");
    group.bench_function("ceiling", |b| {
        b.to_async(&rt).iter(|| async { black_box(round_trip(&ceiling).await) })
    });
    group.bench_function("cache_hit", |b| {
        b.to_async(&rt).iter(|| async { black_box(round_trip(&cached).await) })
    });
    group.finish();
}

criterion_group!(benches, router);
criterion_main!(benches);
