//! The purge API on actix-web: a resource serving `POST /purge`, and a
//! middleware answering `PURGE <url>` on every route of an app.
//!
//! Requests, answers and limits are those of [`cache_core::purge`]: a
//! bearer token compared in constant time, a JSON body
//! `{"tags": [...], "keys": [...], "prefixes": [...]}` of at most 64 KiB and
//! 1000 items by default, `200 {"dropped": n}`, `401` with
//! `WWW-Authenticate: Bearer`, `413`, `400`, and `503` when the store
//! fails.
//!
//! - [`purge_resource`] is a `Resource` to register with `.service(...)`
//!   on an `App` or a scope (`POST` only; other methods get `405`).
//! - [`PurgeMiddleware`] wraps the `App` (`.wrap(...)`): a `PURGE` on any
//!   route drops every stored variant of its URL, with the key its route's
//!   policy builds (give it the same policies as the cache middleware, by
//!   full route pattern). Send the headers the key is made of, such as the
//!   tenant header.
//!
//! # Example
//!
//! ```
//! use actix_web::{App, web};
//! use cache_actix::purge::{PurgeAuth, PurgeMiddleware, Purger, purge_resource};
//! use cache_actix::{Cache, CacheMiddleware, CachePolicy, MokaStore, Policies};
//!
//! let cache = Cache::new(MokaStore::new());
//! let policy = CachePolicy::builder().ttl("1h").tag("product:{id}").build().unwrap();
//! let purger = Purger::new(&cache, PurgeAuth::bearer("s3cret").unwrap()); // token from the environment, in a real app
//! let app = App::new()
//!     .wrap(PurgeMiddleware::new(purger.clone(), Policies::new(None)).route("/products/{id}", policy.clone()))
//!     .service(purge_resource("/purge", purger))
//!     .service(
//!         web::resource("/products/{id}")
//!             .wrap(CacheMiddleware::new(&cache, policy))
//!             .route(web::get().to(|| async { "a product" })),
//!     );
//! # let _ = app;
//! ```

use std::{future::ready, rc::Rc};

use actix_web::{
    HttpRequest, HttpResponse, Resource,
    body::{BoxBody, EitherBody, MessageBody},
    dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready},
    http::StatusCode as ActixStatus,
    web,
};
use bytes::Bytes;
use cache_core::purge::purge_response;
pub use cache_core::purge::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ITEMS, PURGE_PATH, PurgeAuth, PurgeError, PurgeLimits, PurgeOutcome, PurgeRequest, Purger,
};
use cache_core::{CachePolicy, Policies};
use futures_util::{StreamExt, future::LocalBoxFuture};
use http_body::Frame;
use http_body_util::StreamBody;

use crate::convert::{headers_to_actix, headers_to_http, request_parts};

/// A resource at `path` serving the purge endpoint with `purger` (its
/// limits apply): `POST` purges, other methods get `405`.
pub fn purge_resource(path: &str, purger: Purger) -> Resource {
    web::resource(path).route(web::post().to(move |req: HttpRequest, payload: web::Payload| {
        let purger = purger.clone();
        async move { actix_response(&purge_response(&read_and_purge(&purger, &req, payload).await)) }
    }))
}

async fn read_and_purge(purger: &Purger, req: &HttpRequest, payload: web::Payload) -> Result<PurgeOutcome, PurgeError> {
    let body = StreamBody::new(payload.map(|chunk| chunk.map(Frame::data)));
    purger.purge_body(&headers_to_http(req.headers()), body).await
}

/// A purge answer as actix sends it.
fn actix_response(response: &http::Response<Bytes>) -> HttpResponse {
    let status = ActixStatus::from_u16(response.status().as_u16()).unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR);
    let mut answer = HttpResponse::with_body(status, response.body().clone());
    headers_to_actix(response.headers(), answer.headers_mut());
    answer.map_into_boxed_body()
}

/// Answers `PURGE` requests on the app, scope or resource it wraps; other
/// requests pass through. See the [module docs](self).
///
/// Wrap the `App` with it, so that it sees every path; it picks the policy
/// of the matched route by full pattern, as
/// [`CacheMiddleware`](crate::CacheMiddleware) does. A URL whose route has
/// no policy gets `404`. Built without a [`Purger`]
/// (`PurgeMiddleware::new(None, ..)`) it is inert, so that an app with
/// purging turned off has the same type. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PurgeMiddleware {
    purger: Option<Purger>,
    policies: Policies,
}

impl PurgeMiddleware {
    /// A middleware purging with `purger` (inert with `None`), with
    /// `policies` (one [`CachePolicy`] for every route, or a [`Policies`]
    /// table by full route pattern).
    pub fn new(purger: impl Into<Option<Purger>>, policies: impl Into<Policies>) -> Self {
        PurgeMiddleware {
            purger: purger.into(),
            policies: policies.into(),
        }
    }

    /// Gives the resource whose full pattern is `pattern`
    /// (`/api/v1/products/{id}`) its policy, or none (`404`).
    #[must_use]
    pub fn route(mut self, pattern: impl Into<String>, policy: impl Into<Option<CachePolicy>>) -> Self {
        self.policies = self.policies.route(pattern, policy);
        self
    }

    /// Whether the middleware purges (it was given a [`Purger`]).
    pub fn is_enabled(&self) -> bool {
        self.purger.is_some()
    }
}

impl<S, B> Transform<S, ServiceRequest> for PurgeMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = PurgeService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(PurgeService {
            inner: Rc::new(service),
            middleware: self.clone(),
        }))
    }
}

/// The service made by [`PurgeMiddleware`]. Errors of the wrapped service
/// pass through unchanged; the purge API's answers are never errors.
#[derive(Debug)]
pub struct PurgeService<S> {
    inner: Rc<S>,
    middleware: PurgeMiddleware,
}

impl<S, B> Service<ServiceRequest> for PurgeService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let purging = self.middleware.purger.as_ref().filter(|_| is_purge_method(&req));
        let (Some(purger), Some(parts)) = (purging, request_parts(&req)) else {
            let future = self.inner.call(req);
            return Box::pin(async move { future.await.map(ServiceResponse::map_into_left_body) });
        };
        let policies = &self.middleware.policies;
        let pattern = policies.by_route().then(|| req.match_pattern()).flatten();
        // The policy a `GET` of the URL is cached under.
        let policy = policies
            .select(pattern.as_deref(), &http::Method::GET, parts.uri.path())
            .map(|s| s.policy().clone());
        let answer = purger.serve_purge(policy, http::Request::from_parts(parts, ()));
        Box::pin(async move {
            let response = actix_response(&answer.await);
            Ok(req.into_response(response).map_into_right_body())
        })
    }
}

/// Whether the request's method is `PURGE` (actix has its own `Method` type).
fn is_purge_method(req: &ServiceRequest) -> bool {
    req.method().as_str() == "PURGE"
}
