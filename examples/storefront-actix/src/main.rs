//! The storefront on actix-web: `cargo run --release -p storefront-actix -- --listen 127.0.0.1:3001 --db-latency 35ms`.

use std::net::SocketAddr;
use std::process::ExitCode;

use actix_web::HttpServer;
use clap::Parser;
use storefront::cli::{Options, init_tracing};
use storefront_actix::{Config, DEFAULT_LISTEN, app_with_purge, build};

/// A multi-tenant catalog API on actix-web behind an HTTP response cache.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value_t = DEFAULT_LISTEN)]
    listen: SocketAddr,
    #[command(flatten)]
    options: Options,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    match run(&args.options.config(args.listen)).await {
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
    let cache_table = storefront::cache_table(config)?;
    let (app_catalog, purge_token) = (catalog.clone(), config.purge_token.clone());
    let server = HttpServer::new(move || app_with_purge(app_catalog.clone(), &cache, purge_token.as_ref(), cache_table.as_ref()))
        .bind(config.listen)?;
    let addr = server.addrs().first().copied().unwrap_or(config.listen);
    print_welcome(addr);
    tracing::info!(%addr, db = ?config.db, db_latency = ?config.db_latency, products_per_tenant = config.products_per_tenant, "storefront-actix listening");
    server.run().await?;
    tracing::info!(queries = catalog.queries(), "storefront-actix stopped");
    Ok(())
}

/// The address, then the index page: the routes and commands to try.
/// Never fatal: a server whose stdout was closed keeps serving.
fn print_welcome(addr: SocketAddr) {
    use std::io::Write;
    let welcome = format!(
        "storefront-actix listening on http://{addr}  (Ctrl-C to stop)\n\n{}\nRUST_LOG=cache_core=debug logs why responses are not stored.\n",
        storefront::index_page(&addr.to_string())
    );
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(welcome.as_bytes()).and_then(|()| stdout.flush());
}
