//! `GET /metrics`: the cache's metrics in the Prometheus text format.
//!
//! The storefront records through the `metrics` facade (see
//! [`cache_core::metrics`] for every metric and label) into one Prometheus
//! recorder per process ([`prometheus`], from
//! [`cache_core::metrics::prometheus`]), installed by the first app built.
//! `GET /metrics` samples the store's gauges
//! ([`Cache::record_metrics`](cache_axum::Cache::record_metrics)) and
//! renders the recorder. It is mounted outside the cache layers: a scrape is
//! never cached, nor counted as a request.
//!
//! ```sh
//! curl -s http://127.0.0.1:3000/metrics | grep http_cache_requests_total
//! ```

use axum::{
    Router,
    http::{HeaderValue, header},
    response::IntoResponse,
    routing::get,
};
use cache_axum::Cache;
pub use cache_core::metrics::prometheus::{CONTENT_TYPE, recorder as prometheus, render};

/// Where the metrics are served.
pub const METRICS_PATH: &str = "/metrics";

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
