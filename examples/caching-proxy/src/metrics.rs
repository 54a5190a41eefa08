//! `GET /metrics`: the cache's metrics in the Prometheus text format.
//!
//! The proxy records through the `metrics` facade (see
//! [`cache_core::metrics`] for every metric and label) into one Prometheus
//! recorder per process ([`prometheus`]). The binary turns the endpoint on
//! with [`Proxy::with_metrics`](crate::Proxy::with_metrics): the proxy then
//! answers `GET /metrics` (and `HEAD`) itself, in front of the purge API and
//! the cache, instead of forwarding it upstream; a scrape is never cached,
//! nor counted as a request. Without it, `/metrics` is forwarded like any
//! other path.
//!
//! ```sh
//! curl -s http://127.0.0.1:8081/metrics | grep http_cache_requests_total
//! ```

use std::task::{Context, Poll};

use bytes::Bytes;
use cache_core::Cache;
pub use cache_core::metrics::prometheus::{CONTENT_TYPE, PrometheusHandle, recorder as prometheus};
use cache_tower::purge::PurgeBody;
use futures_util::future::{Either, Ready, ready};
use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::Full;
use tower::Service;

/// Where the metrics are served.
pub const METRICS_PATH: &str = "/metrics";

/// What a [`MetricsService`] renders: the recorder and the cache whose
/// gauges it samples first.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) handle: PrometheusHandle,
    pub(crate) cache: Cache,
}

impl Endpoint {
    fn answer<B>(&self, method: &Method) -> Response<PurgeBody<B>> {
        self.cache.record_metrics();
        let text = Bytes::from(self.handle.render());
        let len = text.len();
        let body = if method == Method::HEAD { Bytes::new() } else { text };
        let mut response = Response::new(http_body_util::Either::Right(Full::new(body)));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Answers `GET /metrics` and `HEAD /metrics` when it has an endpoint, and
/// passes every other request (and every request, without one) to the
/// service it wraps.
#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
    endpoint: Option<Endpoint>,
}

impl<S> MetricsService<S> {
    pub(crate) fn new(inner: S) -> Self {
        MetricsService { inner, endpoint: None }
    }

    pub(crate) fn enable(&mut self, endpoint: Endpoint) {
        self.endpoint = Some(endpoint);
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn scrape<ReqB>(&self, req: &Request<ReqB>) -> Option<&Endpoint> {
        let endpoint = self.endpoint.as_ref()?;
        let method = req.method();
        (req.uri().path() == METRICS_PATH && (method == Method::GET || method == Method::HEAD)).then_some(endpoint)
    }
}

impl<S, ReqB, B> Service<Request<ReqB>> for MetricsService<S>
where
    S: Service<Request<ReqB>, Response = Response<PurgeBody<B>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        match self.scrape(&req) {
            Some(endpoint) => Either::Right(ready(Ok(endpoint.answer(req.method())))),
            None => Either::Left(self.inner.call(req)),
        }
    }
}
