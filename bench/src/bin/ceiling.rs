//! The ceiling of a cached GET: a handler returning fixed bytes from
//! memory, with no cache and no database. With `--cache`, the same handler
//! sits behind a `cache-axum` layer, to measure the layer alone.
//!
//! `cargo run --release --manifest-path bench/Cargo.toml --bin ceiling -- --listen 127.0.0.1:3100 --body-file product.json [--cache]`

use std::{net::SocketAddr, path::PathBuf};

use axum::{
    Router,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use cache_axum::{Cache, CacheLayer, CachePolicy, MokaStore};
use clap::Parser;

/// Serves the same bytes for every GET.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3100")]
    listen: SocketAddr,
    /// The body to serve.
    #[arg(long)]
    body_file: PathBuf,
    /// Content type of the body.
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// Put the handler behind a cache layer (TTL 1h, keyed by X-Tenant-ID).
    #[arg(long)]
    cache: bool,
    /// Add, as fixed values, the headers a cache hit carries (ETag, Age,
    /// Vary, Cache-Status, X-Cache): the ceiling for a response of that size.
    #[arg(long)]
    hit_headers: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let body = Bytes::from(tokio::fs::read(&args.body_file).await?);
    let content_type = HeaderValue::from_str(&args.content_type)?;
    let hit_headers = args.hit_headers;
    let handler = get(move || {
        let (body, content_type) = (body.clone(), content_type.clone());
        async move { respond(body, content_type, hit_headers) }
    });
    let route = if args.cache {
        let cache = Cache::new(MokaStore::new());
        let policy = CachePolicy::builder().ttl("1h").tenant_header("x-tenant-id").build()?;
        handler.layer(CacheLayer::new(&cache, policy))
    } else {
        handler
    };
    let app = Router::new().route("/api/v1/products/{id}", route);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn respond(body: Bytes, content_type: HeaderValue, hit_headers: bool) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if hit_headers {
        let headers = response.headers_mut();
        headers.insert(header::ETAG, HeaderValue::from_static("\"5c3e7d2b9a0f41e6b8d7c0a1f2e3d4c5\""));
        headers.insert(header::VARY, HeaderValue::from_static("x-tenant-id"));
        headers.insert(header::AGE, HeaderValue::from_static("12"));
        headers.insert("cache-status", HeaderValue::from_static("cache; hit; ttl=3587"));
        headers.insert("x-cache", HeaderValue::from_static("HIT"));
    }
    response
}
