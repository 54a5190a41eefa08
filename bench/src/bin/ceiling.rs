//! The ceiling of a cached GET: a handler returning fixed bytes from
//! memory, with no cache and no database. With `--cache`, the same handler
//! sits behind a `cache-axum` layer, to measure the layer alone.
//!
//! `cargo run --release -p bench --bin ceiling -- --listen 127.0.0.1:3100 --body-file product.json [--cache]`

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
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let body = Bytes::from(tokio::fs::read(&args.body_file).await?);
    let content_type = HeaderValue::from_str(&args.content_type)?;
    let handler = get(move || {
        let (body, content_type) = (body.clone(), content_type.clone());
        async move { respond(body, content_type) }
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

fn respond(body: Bytes, content_type: HeaderValue) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
