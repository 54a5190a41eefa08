//! The ceiling of a cached GET on actix-web: a handler returning fixed
//! bytes from memory, with no cache. With `--cache`, the same handler sits
//! behind `cache-actix` middleware, to measure the middleware alone.
//!
//! `cargo run --release --manifest-path bench/Cargo.toml --bin ceiling-actix -- --listen 127.0.0.1:3200 --body-file product.json [--cache]`

use std::{net::SocketAddr, path::PathBuf};

use actix_web::{App, HttpResponse, HttpServer, web};
use cache_actix::{Cache, CacheMiddleware, CachePolicy, MokaStore};
use clap::Parser;

/// Serves the same bytes for every GET.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3200")]
    listen: SocketAddr,
    /// The body to serve.
    #[arg(long)]
    body_file: PathBuf,
    /// Put the handler behind cache middleware (TTL 1h, keyed by X-Tenant-ID).
    #[arg(long)]
    cache: bool,
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let body = web::Bytes::from(std::fs::read(&args.body_file)?);
    let workers = std::env::var("TOKIO_WORKER_THREADS").ok().and_then(|n| n.parse().ok()).unwrap_or(2);
    let handler = move || {
        let body = body.clone();
        async move { HttpResponse::Ok().content_type("application/json").body(body) }
    };
    let server = if args.cache {
        let cache = Cache::new(MokaStore::new());
        let policy = CachePolicy::builder().ttl("1h").tenant_header("x-tenant-id").build()?;
        HttpServer::new(move || {
            let resource = web::resource(PATH).route(web::get().to(handler.clone()));
            App::new().service(resource.wrap(CacheMiddleware::new(&cache, policy.clone())))
        })
        .workers(workers)
        .bind(args.listen)?
        .run()
    } else {
        HttpServer::new(move || App::new().service(web::resource(PATH).route(web::get().to(handler.clone()))))
            .workers(workers)
            .bind(args.listen)?
            .run()
    };
    server.await?;
    Ok(())
}

const PATH: &str = "/api/v1/products/{id}";
