//! `GET /metrics` on actix-web: the cache's metrics in the Prometheus text
//! format, from the same per-process recorder as the axum storefront
//! ([`storefront::metrics`]). Registered on the app outside the cache
//! middleware: a scrape is never cached, nor counted as a request.

use actix_web::{HttpResponse, Resource, http::header, web};
use cache_actix::Cache;
use storefront::metrics::{CONTENT_TYPE, METRICS_PATH, prometheus, render};

/// The `GET /metrics` resource for `cache`: its gauges sampled
/// ([`Cache::record_metrics`]), then the process's recorder rendered.
/// Installs the recorder on first use ([`prometheus`]).
pub fn resource(cache: &Cache) -> Resource {
    let (cache, handle) = (cache.clone(), prometheus());
    web::resource(METRICS_PATH).route(web::get().to(move || {
        let body = render(&cache, &handle);
        async move { HttpResponse::Ok().insert_header((header::CONTENT_TYPE, CONTENT_TYPE)).body(body) }
    }))
}
