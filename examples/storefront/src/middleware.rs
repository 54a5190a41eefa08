//! Router-wide middleware: panics become `500`s, requests are logged.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use crate::error::ApiError;

/// Answers a panic anywhere inside with a generic `500`, so that the client
/// gets a response that says nothing about the panic.
pub(crate) async fn catch_panic(request: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("a request handler panicked");
            ApiError::internal().into_response()
        }
    }
}

/// Logs each request at debug level with its status, `x-cache` and timing
/// (`RUST_LOG=storefront=debug`).
pub(crate) async fn log_request(request: Request, next: Next) -> Response {
    let (method, uri, started) = (request.method().clone(), request.uri().clone(), Instant::now());
    let response = next.run(request).await;
    let x_cache = response.headers().get("x-cache").and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::debug!(%method, %uri, status = response.status().as_u16(), x_cache, elapsed = ?started.elapsed(), "request");
    response
}
