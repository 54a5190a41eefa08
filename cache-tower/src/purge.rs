//! The purge API on a tower stack: a layer answering `PURGE <url>`, and
//! optionally `POST` to a purge endpoint, in front of any service.
//!
//! What the requests and answers are is the business of
//! [`cache_core::purge`]: a bearer token checked in constant time, a JSON
//! body within limits, `{"dropped": n}`. [`PurgeLayer`] puts it in front of a
//! service — an app, or a proxy such as the `caching-proxy` example — and
//! lets every other request through untouched.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use cache_core::{Cache, CachePolicy, MokaStore, purge::{PurgeAuth, Purger}};
//! use cache_tower::{CacheLayer, purge::PurgeLayer};
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let cache = Cache::new(MokaStore::new());
//! let policy = CachePolicy::with_ttl(std::time::Duration::from_secs(60));
//! let purger = Purger::new(&cache, PurgeAuth::bearer("s3cret").unwrap());
//! let service = ServiceBuilder::new()
//!     .layer(PurgeLayer::new(purger, policy.clone()).endpoint("/purge"))
//!     .layer(CacheLayer::new(&cache, policy))
//!     .service_fn(|_req: Request<Full<Bytes>>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//!     });
//! let get = || Request::get("/page").body(Full::default()).unwrap();
//!
//! service.clone().oneshot(get()).await.unwrap();
//! let purge = Request::builder().method("PURGE").uri("/page").header("authorization", "Bearer s3cret");
//! let purged = service.clone().oneshot(purge.body(Full::default()).unwrap()).await.unwrap();
//! assert_eq!(purged.status(), 200); // {"dropped":1}
//! assert_eq!(service.oneshot(get()).await.unwrap().headers()["x-cache"], "MISS");
//! # }
//! ```

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use cache_core::{
    BoxError, CachePolicy, Policies,
    purge::{Purger, is_purge},
};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::RouteInfo;

/// The response body of a [`PurgeService`]: the inner service's, or the
/// purge API's JSON answer.
pub type PurgeBody<B> = Either<B, Full<Bytes>>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Answers `PURGE` requests on every path, and `POST` on the purge endpoint
/// when one is set ([`PurgeLayer::endpoint`]); other requests pass through.
/// Cheap to clone.
///
/// A `PURGE` drops the stored variants of its URL under the policy its
/// route resolves to among [`Policies`] (give the same policies as the
/// cache layers, so that keys match); a URL without a policy gets `404`.
///
/// A layer built without a [`Purger`] (`PurgeLayer::new(None, ..)`) is
/// inert: it answers nothing and every request passes through, so an app
/// whose purging is configured off keeps the same service type. Purging is
/// never open without a token.
#[derive(Clone)]
pub struct PurgeLayer {
    purger: Option<Purger>,
    policies: Policies,
    route_info: RouteInfo,
    endpoint: Option<Arc<str>>,
}

impl fmt::Debug for PurgeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PurgeLayer")
            .field("purger", &self.purger)
            .field("policies", &self.policies)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl PurgeLayer {
    /// A layer purging with `purger` (or inert, with `None`), building the
    /// keys of `PURGE`d URLs with `policies`.
    pub fn new(purger: impl Into<Option<Purger>>, policies: impl Into<Policies>) -> Self {
        PurgeLayer {
            purger: purger.into(),
            policies: policies.into(),
            route_info: RouteInfo::NONE,
            endpoint: None,
        }
    }

    /// Sets the policy of one route pattern (`None`: nothing cached, `404`).
    #[must_use]
    pub fn route(mut self, pattern: impl Into<String>, policy: impl Into<Option<CachePolicy>>) -> Self {
        self.policies = self.policies.route(pattern, policy);
        self
    }

    /// Sets how the matched route is read from a request, to pick its
    /// policy.
    #[must_use]
    pub fn route_info(mut self, route_info: RouteInfo) -> Self {
        self.route_info = route_info;
        self
    }

    /// Also serves the JSON purge endpoint at `path` (such as `/purge`):
    /// `POST` purges, other methods get `405`.
    #[must_use]
    pub fn endpoint(mut self, path: impl Into<String>) -> Self {
        self.endpoint = Some(path.into().into());
        self
    }

    /// Whether the layer purges (it was given a [`Purger`]).
    pub fn is_enabled(&self) -> bool {
        self.purger.is_some()
    }
}

impl<S> Layer<S> for PurgeLayer {
    type Service = PurgeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PurgeService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`PurgeLayer`]. The inner service's errors pass
/// through unchanged; the purge API's answers are never errors.
#[derive(Clone, Debug)]
pub struct PurgeService<S> {
    inner: S,
    layer: PurgeLayer,
}

impl<S> PurgeService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for PurgeService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ReqB: Body + Send + 'static,
    ReqB::Data: Send,
    ReqB::Error: Into<BoxError>,
{
    type Response = Response<PurgeBody<ResB>>;
    type Error = S::Error;
    type Future = PurgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let Some(purger) = &self.layer.purger else {
            return PurgeFuture::inner(self.inner.call(req));
        };
        if is_purge(req.method()) {
            let pattern = (self.layer.route_info.pattern)(req.extensions());
            // The policy a `GET` of the URL is cached under.
            let policy = self
                .layer
                .policies
                .select(pattern, &Method::GET, req.uri().path())
                .map(|s| s.policy().clone());
            return PurgeFuture::answer(Box::pin(purger.serve_purge(policy, req)));
        }
        if self.layer.endpoint.as_deref() == Some(req.uri().path()) {
            if req.method() == Method::POST {
                return PurgeFuture::answer(Box::pin(purger.serve_json(req)));
            }
            return PurgeFuture::answer(Box::pin(std::future::ready(method_not_allowed())));
        }
        PurgeFuture::inner(self.inner.call(req))
    }
}

/// `405` for a method other than `POST` on the endpoint.
fn method_not_allowed() -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(br#"{"error":"the purge endpoint takes POST"}"#));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pin_project! {
    /// The response future of [`PurgeService`].
    pub struct PurgeFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Answer { future: BoxFuture<Response<Bytes>> },
    }
}

impl<F> PurgeFuture<F> {
    fn inner(future: F) -> Self {
        PurgeFuture {
            kind: Kind::Inner { future },
        }
    }

    fn answer(future: BoxFuture<Response<Bytes>>) -> Self {
        PurgeFuture {
            kind: Kind::Answer { future },
        }
    }
}

impl<F, B, E> Future for PurgeFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<PurgeBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx).map_ok(|response| response.map(Either::Left)),
            KindProj::Answer { future } => future
                .as_mut()
                .poll(cx)
                .map(|response| Ok(response.map(|body| Either::Right(Full::new(body))))),
        }
    }
}

impl<F> fmt::Debug for PurgeFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PurgeFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use cache_core::{Cache, MokaStore, purge::PurgeAuth};
    use http_body_util::BodyExt;
    use tower::{ServiceBuilder, ServiceExt};

    use super::*;
    use crate::CacheLayer;

    type Svc = tower::util::BoxCloneService<Request<Full<Bytes>>, Response<PurgeBody<cache_core::CacheBody<Full<Bytes>>>>, Infallible>;

    fn service(purger: Option<Purger>, cache: &Cache) -> Svc {
        let policy = CachePolicy::with_ttl(std::time::Duration::from_secs(60));
        let service = ServiceBuilder::new()
            .layer(PurgeLayer::new(purger, policy.clone()).endpoint("/purge"))
            .layer(CacheLayer::new(cache, policy))
            .service_fn(|req: Request<Full<Bytes>>| async move {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(req.method().to_string()))))
            });
        tower::util::BoxCloneService::new(service)
    }

    async fn send(service: &Svc, method: &str, path: &str, body: &str) -> (StatusCode, Option<String>, Bytes) {
        let mut request = Request::builder().method(method).uri(path);
        if method != "GET" {
            request = request.header(header::AUTHORIZATION, "Bearer t");
        }
        let request = request.body(Full::new(Bytes::copy_from_slice(body.as_bytes()))).unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        let x_cache = response.headers().get("x-cache").map(|v| v.to_str().unwrap().to_owned());
        (response.status(), x_cache, response.into_body().collect().await.unwrap().to_bytes())
    }

    #[tokio::test]
    async fn purges_by_method_and_endpoint() {
        let cache = Cache::new(MokaStore::new());
        let service = service(Some(Purger::new(&cache, PurgeAuth::bearer("t").unwrap())), &cache);
        send(&service, "GET", "/a", "").await;
        assert_eq!(send(&service, "GET", "/a", "").await.1.as_deref(), Some("HIT"));
        let (status, _, body) = send(&service, "PURGE", "/a", "").await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &br#"{"dropped":1}"#[..]));
        assert_eq!(send(&service, "GET", "/a", "").await.1.as_deref(), Some("MISS"));
        let prefix = CachePolicy::with_ttl(std::time::Duration::from_secs(60)).key().prefix(None, "/");
        let body = format!(r#"{{"prefixes": ["{prefix}"]}}"#);
        assert_eq!(send(&service, "POST", "/purge", &body).await.2, &br#"{"dropped":1}"#[..]);
        assert_eq!(send(&service, "GET", "/purge", "").await.0, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn an_inert_layer_passes_everything_through() {
        let cache = Cache::new(MokaStore::new());
        let service = service(None, &cache);
        assert_eq!(send(&service, "PURGE", "/a", "").await.2, "PURGE");
        assert_eq!(send(&service, "POST", "/purge", "{}").await.2, "POST");
    }
}
