//! The storefront server: `cargo run --release -p storefront -- --listen 127.0.0.1:3000 --db-latency 35ms`.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use storefront::cli::{Options, init_tracing};
use storefront::{Config, serve_with_shutdown};

/// A multi-tenant catalog API behind an HTTP response cache.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    #[command(flatten)]
    options: Options,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    match run(&args.options.config(args.listen)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = &*error, "storefront failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: &Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let app = storefront::app(config)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    print_welcome(addr);
    tracing::info!(%addr, db_latency = ?config.db_latency, products_per_tenant = config.products_per_tenant, "storefront listening");
    serve_with_shutdown(listener, app.router, shutdown_signal()).await?;
    tracing::info!(queries = app.catalog.queries(), "storefront stopped");
    Ok(())
}

/// Completes on Ctrl-C. If the handler cannot be installed, never completes.
async fn shutdown_signal() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::warn!(%error, "cannot listen for Ctrl-C; stop the process another way");
        std::future::pending::<()>().await;
    }
    tracing::info!("Ctrl-C received, finishing the requests in flight");
}

fn print_welcome(addr: SocketAddr) {
    println!("storefront listening on http://{addr}  (Ctrl-C to stop)\n");
    println!("Try these, twice each, and look at the x-cache and cache-status headers:\n");
    println!("  curl -i -H 'X-Tenant-ID: acme' http://{addr}/api/v1/products/42");
    println!("  curl -i -H 'X-Tenant-ID: globex' 'http://{addr}/api/v1/products?category=books&sort=-price&limit=5'");
    println!("  curl -i -H 'X-Tenant-ID: acme' http://{addr}/api/v1/categories");
    println!(
        "  curl -i -X PUT -H 'X-Tenant-ID: acme' -H 'content-type: application/json' -d '{{\"price_cents\": 1999}}' http://{addr}/api/v1/products/42"
    );
    println!("\nMore at http://{addr}/ ; RUST_LOG=cache_core=debug logs why responses are not stored.");
}
