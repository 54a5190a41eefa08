//! The storefront on actix-web: `cargo run --release -p storefront-actix -- --listen 127.0.0.1:3001 --db-latency 35ms`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;

use actix_web::HttpServer;
use cache_actix::Ttl;
use clap::Parser;
use storefront_actix::{Config, DEFAULT_LISTEN, app, build, default_config};
use tracing_subscriber::EnvFilter;

/// A multi-tenant catalog API on actix-web behind an HTTP response cache.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value_t = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Delay added to every database query, like `35ms` (a networked database).
    #[arg(long, default_value = "0ms")]
    db_latency: Ttl,
    /// Products seeded per tenant [default: 4000].
    #[arg(long)]
    products_per_tenant: Option<u64>,
    /// Capacity of the response cache in bytes [default: 256 MiB].
    #[arg(long)]
    cache_capacity: Option<u64>,
}

impl Args {
    fn config(&self) -> Config {
        let defaults = default_config();
        Config {
            listen: self.listen,
            db_latency: self.db_latency.as_duration(),
            products_per_tenant: self.products_per_tenant.unwrap_or(defaults.products_per_tenant),
            cache_capacity_bytes: self.cache_capacity.unwrap_or(defaults.cache_capacity_bytes),
        }
    }
}

#[actix_web::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    match run(&args.config()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = &*error, "storefront-actix failed");
            ExitCode::FAILURE
        }
    }
}

/// Serves until a signal, with actix's own handling: SIGTERM finishes the
/// requests in flight first (for up to 30 s), Ctrl-C (SIGINT) stops at once.
async fn run(config: &Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (catalog, cache) = build(config)?;
    let app_catalog = catalog.clone();
    let server = HttpServer::new(move || app(app_catalog.clone(), &cache)).bind(config.listen)?;
    let addr = server.addrs().first().copied().unwrap_or(config.listen);
    print_welcome(addr);
    tracing::info!(%addr, db_latency = ?config.db_latency, products_per_tenant = config.products_per_tenant, "storefront-actix listening");
    server.run().await?;
    tracing::info!(queries = catalog.queries(), "storefront-actix stopped");
    Ok(())
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// The address, then the index page: the routes and commands to try.
fn print_welcome(addr: SocketAddr) {
    println!("storefront-actix listening on http://{addr}  (Ctrl-C to stop)\n");
    println!("{}", storefront::index_page(&addr.to_string()));
    println!("RUST_LOG=cache_core=debug logs why responses are not stored.");
}
