//! The Rust peers from crates.io, each in front of the same origin route
//! and set up for the same TTL (1 hour) and a capacity that holds the whole
//! key space of the Zipf workload. Where a peer offers stampede protection,
//! it is on.

use std::{sync::Arc, time::Duration};

use axum::{BoxError, error_handling::HandleErrorLayer, routing::MethodRouter};
use tower::ServiceBuilder;

use crate::{
    contender::{Kind, Options, error_response, origin_route},
    origin::{Origin, TTL_SECS},
};

const TTL: Duration = Duration::from_secs(TTL_SECS);
/// Entries, for the peers whose capacity counts entries.
const ENTRIES: u64 = 1_000_000;

/// `origin` behind the peer `kind`.
///
/// # Errors
///
/// When `kind` is not a peer.
pub fn route(kind: Kind, origin: &Arc<Origin>, options: &Options) -> anyhow::Result<MethodRouter> {
    let origin_route = || origin_route(Arc::clone(origin));
    Ok(match kind {
        Kind::TowerHttpCache => tower_http_cache(origin),
        Kind::HitboxTower => hitbox_tower(origin_route(), options),
        Kind::AxumResponseCache => origin_route().layer(axum_response_cache::CacheLayer::with_lifespan(TTL)),
        Kind::HttpCacheTowerServer => http_cache_tower_server(origin_route()),
        _ => anyhow::bail!("{kind:?} is not a peer"),
    })
}

/// tower-http-cache asks for a `Sync` response body, which axum's `Body`
/// is not: its layer wraps a plain tower service with the origin handler
/// (the path parsed by hand), answering `Full<Bytes>`.
fn tower_http_cache(origin: &Arc<Origin>) -> MethodRouter {
    use tower_http_cache::prelude::*;
    let layer = CacheLayer::builder(InMemoryBackend::new(ENTRIES)).ttl(TTL).build();
    let origin = Arc::clone(origin);
    let service = tower::service_fn(move |request: http::Request<axum::body::Body>| {
        let origin = Arc::clone(&origin);
        async move {
            let mut parts = request.uri().path().trim_start_matches("/b/").splitn(2, '/');
            let size = parts.next().and_then(|size| size.parse().ok()).unwrap_or(0);
            let key = parts.next().unwrap_or_default().to_owned();
            let (body, headers) = origin.call(size, &key).await;
            let mut response = http::Response::new(http_body_util::Full::new(body));
            response.headers_mut().extend(headers);
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    axum::routing::get_service(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(handle_error))
            .layer(layer)
            .service(service),
    )
}

fn http_cache_tower_server(origin: MethodRouter) -> MethodRouter {
    use http_cache_tower_server::{ServerCacheLayer, ServerCacheOptions};
    let manager = http_cache::MokaManager::new(moka::future::Cache::new(ENTRIES));
    let options = ServerCacheOptions {
        default_ttl: Some(TTL),
        max_ttl: Some(TTL),
        ..ServerCacheOptions::default()
    };
    let layer = ServerCacheLayer::new(manager).with_options(options);
    origin.layer(ServiceBuilder::new().layer(HandleErrorLayer::new(handle_error)).layer(layer))
}

fn hitbox_tower(origin: MethodRouter, options: &Options) -> MethodRouter {
    use hitbox::{
        Config,
        concurrency::BroadcastConcurrencyManager,
        policy::{ConcurrencyLimit, PolicyConfig},
    };
    use hitbox_http::{
        BufferedBody,
        extractors::{Method, path::PathExtractor},
        predicates::{NeutralRequestPredicate, NeutralResponsePredicate},
    };
    let backend = hitbox_moka::MokaBackend::builder().max_bytes(options.capacity).build();
    let config = Config::builder()
        .request_predicate(NeutralRequestPredicate::new())
        .response_predicate(NeutralResponsePredicate::new())
        .extractor(Method::new().path(crate::origin::ROUTE))
        .policy(
            PolicyConfig::builder()
                .ttl(TTL)
                .concurrency(ConcurrencyLimit::new(1).expect("1 is within 1..=255"))
                .build(),
        )
        .build();
    let layer = hitbox_tower::Cache::builder()
        .backend(backend)
        .config(config)
        .concurrency_manager(BroadcastConcurrencyManager::new())
        .build();
    origin.layer(
        ServiceBuilder::new()
            .layer(layer)
            .map_request(|request: http::Request<BufferedBody<axum::body::Body>>| request.map(axum::body::Body::new)),
    )
}

async fn handle_error(error: BoxError) -> axum::response::Response {
    error_response(error)
}
