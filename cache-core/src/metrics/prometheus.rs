//! A Prometheus recorder for the cache's metrics (feature `prometheus`):
//! what an application's `GET /metrics` renders.
//!
//! ```
//! use cache_core::{Cache, MokaStore, metrics::prometheus};
//!
//! let cache = Cache::new(MokaStore::new());
//! let handle = prometheus::recorder();
//! // In the handler of `GET /metrics`, served outside the cache:
//! let body = prometheus::render(&cache, &handle);
//! assert!(body.is_empty() || body.contains("# TYPE"));
//! // ... answered with `Content-Type: prometheus::CONTENT_TYPE`.
//! ```

use std::{sync::OnceLock, thread, time::Duration};

pub use metrics_exporter_prometheus::PrometheusHandle;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use super::{STORE_OPERATION_SECONDS, STORE_SECONDS_BUCKETS, describe};
use crate::Cache;

/// The `Content-Type` of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often the recorder's histograms are folded in when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed as the global `metrics`
/// recorder on the first call (with [`describe`], the store latency
/// buckets [`STORE_SECONDS_BUCKETS`], and a thread folding histograms in
/// every few seconds so that they do not grow between scrapes); later calls
/// return the same handle.
///
/// If the application installed another recorder first, the cache's
/// metrics go to that one and this handle renders nothing; a warning says
/// so.
pub fn recorder() -> PrometheusHandle {
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
            tracing::warn!(%error, "a metrics recorder is already installed: the Prometheus handle renders nothing");
            return PrometheusBuilder::new().build_recorder().handle();
        }
    };
    describe();
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

/// What a scrape answers: `cache`'s store gauges sampled
/// ([`Cache::record_metrics`]), then every metric of the process rendered.
pub fn render(cache: &Cache, handle: &PrometheusHandle) -> String {
    cache.record_metrics();
    handle.render()
}
