//! The contenders that run as Rust servers: the ceiling, the bare origin,
//! this project's layer (axum and actix, on moka, Redis or tiered) and the
//! Rust peers ([`crate::peers`]). `src/bin/contender.rs` starts one.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::Path,
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use cache_core::{Cache, CachePolicy, MokaStore, RedisStore, TieredStore};

use crate::origin::{CALLS, Ceiling, Origin, ROUTE, TTL_SECS};

/// A Rust contender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Kind {
    /// A handler returning the same bytes from memory, no cache.
    Ceiling,
    /// The origin handler with no cache: builds the body per request.
    Origin,
    /// Our layer on axum, moka store.
    Moka,
    /// Our layer on axum, Redis store alone (every hit is a Redis GET).
    Redis,
    /// Our layer on axum, tiered store (moka L1 in front of Redis).
    Tiered,
    /// An actix-web handler returning the same bytes from memory, no cache.
    ActixCeiling,
    /// Our middleware on actix-web, moka store.
    ActixMoka,
    /// Our middleware on actix-web, tiered store.
    ActixTiered,
    /// The `tower-http-cache` crate's layer, in-memory backend.
    TowerHttpCache,
    /// The `hitbox-tower` crate's layer, moka backend, dogpile protection on.
    HitboxTower,
    /// The `axum-response-cache` crate's layer.
    AxumResponseCache,
    /// The `http-cache-tower-server` crate's layer, moka manager.
    HttpCacheTowerServer,
}

impl Kind {
    /// Whether the contender is an actix-web server.
    pub fn is_actix(self) -> bool {
        matches!(self, Kind::ActixCeiling | Kind::ActixMoka | Kind::ActixTiered)
    }

    /// Whether the contender needs a Redis server.
    pub fn needs_redis(self) -> bool {
        matches!(self, Kind::Redis | Kind::Tiered | Kind::ActixTiered)
    }
}

/// How to run a contender.
#[derive(Debug, Clone)]
pub struct Options {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// How long each origin call waits.
    pub delay: Duration,
    /// The Redis URL, for the contenders that need one.
    pub redis: Option<String>,
    /// The key prefix in Redis.
    pub redis_prefix: String,
    /// Worker threads.
    pub workers: usize,
    /// Bytes of the in-memory stores.
    pub capacity: u64,
}

/// Runs an axum contender until the process ends.
///
/// # Errors
///
/// When the address cannot be bound, Redis cannot be reached or a
/// contender cannot be set up.
pub async fn serve_axum(kind: Kind, options: &Options) -> anyhow::Result<()> {
    let origin = Origin::new(options.delay);
    let route = match kind {
        Kind::Ceiling => ceiling_route(),
        Kind::Origin => origin_route(Arc::clone(&origin)),
        Kind::Moka | Kind::Redis | Kind::Tiered => {
            let cache = our_cache(kind, options).await?;
            origin_route(Arc::clone(&origin)).layer(cache_axum::CacheLayer::new(&cache, policy()?))
        }
        _ => crate::peers::route(kind, &origin, options)?,
    };
    let calls = Arc::clone(&origin);
    let app = Router::new()
        .route(ROUTE, route)
        .route(CALLS, get(move || std::future::ready(calls.calls().to_string())));
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The policy of every cached contender of ours: the TTL, nothing else.
///
/// # Errors
///
/// Never in practice: the TTL is valid.
pub fn policy() -> anyhow::Result<CachePolicy> {
    Ok(CachePolicy::builder().ttl(Duration::from_secs(TTL_SECS)).build()?)
}

/// Our cache on the store `kind` names.
///
/// # Errors
///
/// When Redis cannot be reached.
pub async fn our_cache(kind: Kind, options: &Options) -> anyhow::Result<Cache> {
    let moka = || MokaStore::builder().max_capacity(options.capacity).build();
    let redis = || async {
        let url = options.redis.clone().ok_or_else(|| anyhow::anyhow!("{kind:?} needs --redis URL"))?;
        anyhow::Ok(RedisStore::builder(url).prefix(options.redis_prefix.clone()).connect().await?)
    };
    Ok(match kind {
        Kind::Redis => Cache::new(redis().await?),
        Kind::Tiered | Kind::ActixTiered => Cache::new(TieredStore::builder(redis().await?).l1(moka()).build()?),
        _ => Cache::new(moka()),
    })
}

/// The origin handler on the benchmarked route.
pub fn origin_route(origin: Arc<Origin>) -> MethodRouter {
    get(move |Path((size, key)): Path<(usize, String)>| {
        let origin = Arc::clone(&origin);
        async move {
            let (body, headers) = origin.call(size, &key).await;
            (headers, body).into_response()
        }
    })
}

fn ceiling_route() -> MethodRouter {
    let ceiling = Ceiling::default();
    get(move |Path((size, key)): Path<(usize, String)>| {
        let body = ceiling.body(size, &key);
        async move { (crate::origin::headers(), body).into_response() }
    })
}

/// Runs an actix-web contender until the process ends.
///
/// # Errors
///
/// When the address cannot be bound or Redis cannot be reached.
pub fn serve_actix(kind: Kind, options: &Options) -> anyhow::Result<()> {
    use actix_web::{App, HttpServer, web};
    use cache_actix::CacheMiddleware;

    let options = options.clone();
    actix_web::rt::System::new().block_on(async move {
        let origin = Origin::new(options.delay);
        let cache = match kind {
            Kind::ActixMoka | Kind::ActixTiered => Some((our_cache(kind, &options).await?, policy()?)),
            _ => None,
        };
        let ceiling = Ceiling::default();
        let server = HttpServer::new(move || {
            let calls = Arc::clone(&origin);
            let app = App::new().route(CALLS, web::get().to(move || std::future::ready(calls.calls().to_string())));
            let resource = web::resource(ROUTE);
            let resource = if kind == Kind::ActixCeiling {
                let ceiling = ceiling.clone();
                resource.route(web::get().to(move |path: web::Path<(usize, String)>| {
                    let (size, key) = path.into_inner();
                    let body = ceiling.body(size, &key);
                    async move { actix_response(body) }
                }))
            } else {
                let origin = Arc::clone(&origin);
                resource.route(web::get().to(move |path: web::Path<(usize, String)>| {
                    let origin = Arc::clone(&origin);
                    async move {
                        let (size, key) = path.into_inner();
                        let (body, _) = origin.call(size, &key).await;
                        actix_response(body)
                    }
                }))
            };
            match &cache {
                Some((cache, policy)) => app.service(resource.wrap(CacheMiddleware::new(cache, policy.clone()))),
                None => app.service(resource),
            }
        })
        .workers(options.workers)
        .bind(options.listen)?
        .run();
        server.await?;
        anyhow::Ok(())
    })?;
    Ok(())
}

fn actix_response(body: bytes::Bytes) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type(crate::origin::CONTENT_TYPE)
        .insert_header(("cache-control", crate::origin::CACHE_CONTROL))
        .body(body)
}

/// An axum response for a peer's error: 500 and the message.
pub fn error_response(error: impl std::fmt::Display) -> Response {
    (http::StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
}
