//! Micro-benchmarks of the hot path: key building, the entry codec, and a
//! hit through the engine next to the bare origin it stands in front of.
//!
//! `cargo bench -p cache-core --bench hit_path`
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::{convert::Infallible, hint::black_box};

use bytes::Bytes;
use cache_core::{Cache, CachePolicy, CachedEntry, MokaStore, RouteMatch, adapter::Begun, store::codec};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;

const BODY: &[u8] =
    br#"{"id":42,"tenant":"acme","name":"Rustic Kettle AC-42","category":"kitchen","price_cents":4599,"description":"A kettle."}"#;

fn request() -> Request<()> {
    Request::get("/api/v1/products/42?page=2&limit=20&utm_source=mail")
        .header("x-tenant-id", "acme")
        .header("accept", "application/json")
        .header("user-agent", "bench")
        .body(())
        .expect("a valid request")
}

fn policy() -> CachePolicy {
    CachePolicy::builder()
        .ttl("1h")
        .tenant_header("x-tenant-id")
        .query_deny(["utm_source"])
        .tag("product:{tenant}:{id}")
        .build()
        .expect("a valid policy")
}

fn origin_response() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn key_building(c: &mut Criterion) {
    let policy = policy();
    let (parts, ()) = request().into_parts();
    c.bench_function("key/build", |b| b.iter(|| black_box(policy.key().build(black_box(&parts)))));
}

fn codec(c: &mut Criterion) {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::ETAG, HeaderValue::from_static("\"0123456789abcdef0123456789abcdef\""));
    let mut entry = CachedEntry::new(StatusCode::OK, headers, Bytes::from_static(BODY), 1_700_000_000_000, 3_600_000);
    entry.tags = vec!["product:acme:42".into(), "@uri:http:1:=acme:/api/v1/products/42?".into()];
    let encoded = codec::encode(&entry).expect("an encodable entry");
    c.bench_function("codec/encode", |b| b.iter(|| black_box(codec::encode(black_box(&entry)))));
    c.bench_function("codec/decode", |b| b.iter(|| black_box(codec::decode(black_box(encoded.clone())))));
}

fn hit_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let cache = Cache::new(MokaStore::new());
    let policy = policy();
    let route = RouteMatch::new("/api/v1/products/{id}").param("id", "42");
    let origin = |_req: Request<()>| async { Ok::<_, Infallible>(origin_response()) };
    rt.block_on(async {
        let warm = cache.serve(&policy, &route, request(), origin).await;
        assert_eq!(warm.expect("infallible").headers()["x-cache"], "MISS");
    });
    let mut group = c.benchmark_group("hit_path");
    group.bench_function("origin_only", |b| {
        b.to_async(&rt).iter(|| async {
            let req = request();
            black_box(origin(req).await)
        })
    });
    group.bench_function("cache_hit_now", |b| {
        b.iter(|| {
            let (parts, ()) = request().into_parts();
            let Begun::Ready(hit) = cache.begin(&policy, &parts) else {
                panic!("a stored entry");
            };
            black_box(hit.response::<Full<Bytes>>())
        })
    });
    group.bench_function("cache_hit_async", |b| {
        b.to_async(&rt).iter(|| async {
            let response = cache.serve(&policy, &route, request(), origin).await.expect("infallible");
            debug_assert_eq!(response.headers()["x-cache"], "HIT");
            black_box(response)
        })
    });
    group.finish();
}

criterion_group!(benches, key_building, codec, hit_path);
criterion_main!(benches);
