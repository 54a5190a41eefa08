//! `GET /metrics`: the cache's metrics in the Prometheus text format.
//!
//! The storefront records through the `metrics` facade (see
//! [`cache_core::metrics`] for every metric and label) into one Prometheus
//! recorder per process ([`prometheus`]), installed by the first app built.
//! `GET /metrics` samples the store's gauges
//! ([`Cache::record_metrics`](cache_axum::Cache::record_metrics)) and
//! renders the recorder. It is mounted outside the cache layers: a scrape is
//! never cached, nor counted as a request.
//!
//! ```sh
//! curl -s http://127.0.0.1:3000/metrics | grep http_cache_requests_total
//! ```

use std::{sync::OnceLock, thread, time::Duration};

use axum::{
    Router,
    http::{HeaderValue, header},
    response::IntoResponse,
    routing::get,
};
use cache_axum::Cache;
use cache_core::metrics::{STORE_OPERATION_SECONDS, STORE_SECONDS_BUCKETS};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Where the metrics are served.
pub const METRICS_PATH: &str = "/metrics";

/// The `Content-Type` of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often the recorder's histograms are folded in when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed as the global `metrics`
/// recorder (with [`cache_core::metrics::describe`]) on the first call.
///
/// If another recorder was installed first, the storefront's metrics go to
/// that one and this handle renders nothing; a warning says so.
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

/// The metrics of `cache` as a scrape answers them: its gauges sampled,
/// then every metric of the process rendered.
pub fn render(cache: &Cache, handle: &PrometheusHandle) -> String {
    cache.record_metrics();
    handle.render()
}

/// `router` with `GET /metrics`, outside its layers.
pub fn mount(router: Router, cache: &Cache) -> Router {
    let (cache, handle) = (cache.clone(), prometheus());
    router.route(
        METRICS_PATH,
        get(move || async move {
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
                render(&cache, &handle),
            )
                .into_response()
        }),
    )
}
