//! A [tower] layer that caches HTTP responses with the `cache-core` engine.
//!
//! [`CacheLayer`] wraps any `Service<http::Request<B>>` whose responses have
//! an [`http_body::Body`] of [`Bytes`](bytes::Bytes). Build one [`Cache`]
//! per application and make every layer from it: they share one store, one
//! set of in-flight fetches and one invalidation state.
//!
//! For axum, `cache-axum` builds this layer with axum's route patterns and
//! path parameters filled in; use this crate directly for other tower
//! stacks (a hyper server, a reverse proxy).
//!
//! [`warm::warm`] sends a list of requests through a cached service ahead of
//! traffic and reports what it stored.
//!
//! [`purge::PurgeLayer`] answers `PURGE <url>` and a `POST` purge endpoint
//! in front of a service, behind a bearer token (see [`cache_core::purge`]).
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use cache_core::{Cache, CachePolicy, MokaStore};
//! use cache_tower::CacheLayer;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let cache = Cache::new(MokaStore::new());
//! let service = ServiceBuilder::new()
//!     .layer(CacheLayer::new(&cache, CachePolicy::with_ttl(std::time::Duration::from_secs(60))))
//!     .service_fn(|_req: Request<()>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//!     });
//!
//! let miss = service.clone().oneshot(Request::get("/").body(()).unwrap()).await.unwrap();
//! assert_eq!(miss.headers()["x-cache"], "MISS");
//! let hit = service.oneshot(Request::get("/").body(()).unwrap()).await.unwrap();
//! assert_eq!(hit.headers()["x-cache"], "HIT");
//! # }
//! ```
//!
//! [tower]: https://docs.rs/tower

mod future;
mod layer;
pub mod purge;
mod service;
pub mod warm;

pub use cache_core::{Cache, CacheBody, CacheHints, CachePolicy, Invalidator, Policies, RouteMatch};
pub use future::ResponseFuture;
pub use layer::{CacheLayer, RouteInfo};
pub use service::CacheService;
