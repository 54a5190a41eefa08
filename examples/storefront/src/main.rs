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
    /// Before serving, warm the cache with every tenant's most requested
    /// products (see --warm-products), first list pages and category tree.
    #[arg(long)]
    warm: bool,
    /// How many products per tenant --warm fetches.
    #[arg(long, value_name = "N", default_value_t = 100, requires = "warm")]
    warm_products: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    match run(&args, &args.options.config(args.listen)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = &*error, "storefront failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args, config: &Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let app = storefront::app(config)?;
    if args.warm {
        warm(&app, args.warm_products).await;
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    print_welcome(addr);
    tracing::info!(%addr, db = ?config.db, db_latency = ?config.db_latency, products_per_tenant = config.products_per_tenant, "storefront listening");
    serve_with_shutdown(listener, app.router, shutdown_signal()).await?;
    tracing::info!(queries = app.catalog.queries(), "storefront stopped");
    Ok(())
}

/// Warms the cache with a progress bar on stderr and a one-line summary.
async fn warm(app: &storefront::App, products: usize) {
    let requests = storefront::warm::warm_requests(app, products).len();
    let bar = indicatif::ProgressBar::new(requests as u64).with_style(
        indicatif::ProgressStyle::with_template("warming {bar:40} {pos}/{len} ({per_sec}, {eta} left)").expect("a valid progress template"),
    );
    let started = std::time::Instant::now();
    let report = storefront::warm::warm_up(app, products, |_| bar.inc(1)).await;
    bar.finish_and_clear();
    {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{report} in {:.1?}", started.elapsed());
    }
    tracing::info!(
        stored = report.stored,
        cached = report.cached,
        not_stored = report.not_stored,
        failed = report.failed,
        "cache warmed"
    );
}

/// Completes on Ctrl-C. If the handler cannot be installed, never completes.
async fn shutdown_signal() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::warn!(%error, "cannot listen for Ctrl-C; stop the process another way");
        std::future::pending::<()>().await;
    }
    tracing::info!("Ctrl-C received, finishing the requests in flight");
}

/// Prints how to try the storefront. Written in one go and never fatal: a
/// server whose stdout was closed (a pipe whose reader left) keeps serving.
fn print_welcome(addr: SocketAddr) {
    use std::io::Write;
    let welcome = format!(
        "storefront listening on http://{addr}  (Ctrl-C to stop)\n\n\
         Try these, twice each, and look at the x-cache and cache-status headers:\n\n\
         \x20 curl -i -H 'X-Tenant-ID: acme' http://{addr}/api/v1/products/42\n\
         \x20 curl -i -H 'X-Tenant-ID: globex' 'http://{addr}/api/v1/products?category=books&sort=-price&limit=5'\n\
         \x20 curl -i -H 'X-Tenant-ID: acme' http://{addr}/api/v1/categories\n\
         \x20 curl -i -X PUT -H 'X-Tenant-ID: acme' -H 'content-type: application/json' -d '{{\"price_cents\": 1999}}' http://{addr}/api/v1/products/42\n\
         \nMore at http://{addr}/ ; RUST_LOG=cache_core=debug logs why responses are not stored.\n"
    );
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(welcome.as_bytes()).and_then(|()| stdout.flush());
}
