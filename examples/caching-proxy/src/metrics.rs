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

use std::{
    sync::OnceLock,
    task::{Context, Poll},
    thread,
    time::Duration,
};

use bytes::Bytes;
use cache_core::{
    Cache,
    metrics::{STORE_OPERATION_SECONDS, STORE_SECONDS_BUCKETS},
};
use cache_tower::purge::PurgeBody;
use futures_util::future::{Either, Ready, ready};
use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::Full;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower::Service;

/// Where the metrics are served.
pub const METRICS_PATH: &str = "/metrics";

/// The `Content-Type` of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often the recorder's histograms are folded in when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed as the global `metrics`
/// recorder (with [`cache_core::metrics::describe`]) on the first call.
///
/// If another recorder was installed first, the proxy's metrics go to that
/// one and this handle renders nothing; a warning says so.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(install).clone()
}

fn install() -> PrometheusHandle {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(STORE_OPERATION_SECONDS.to_owned()), &STORE_SECONDS_BUCKETS)
        .expect("the store latency buckets are not empty");
    let handle = match builder.install_recorder() {
        Ok(handle) => handle,
        Err(error) => {
            tracing::warn!(%error, "a metrics recorder is already installed: /metrics will be empty");
            return PrometheusBuilder::new().build_recorder().handle();
        }
    };
    cache_core::metrics::describe();
    // Histograms grow until rendered: fold them in now and then, scraped
    // or not.
    let upkeep = handle.clone();
    let spawned = thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            thread::sleep(UPKEEP_EVERY);
            upkeep.run_upkeep();
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no metrics upkeep thread: histograms are folded in at each scrape only");
    }
    handle
}

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
