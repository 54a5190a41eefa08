//! The caching proxy: `cargo run --release -p caching-proxy -- --listen 127.0.0.1:8081 --upstream http://127.0.0.1:8000`.

use std::process::ExitCode;

use caching_proxy::cli::{Args, init_tracing};
use caching_proxy::{Config, Proxy, serve_with_shutdown};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = &*error, "caching-proxy failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let config: Config = args.config();
    let proxy = Proxy::new(&config)?;
    let proxy = match args.no_metrics {
        true => proxy,
        false => proxy.with_metrics(caching_proxy::metrics::prometheus()),
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    {
        // Never fatal: a proxy whose stdout was closed keeps serving.
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "caching-proxy on http://{addr} -> {}  (Ctrl-C to stop)",
            config.upstream
        );
    }
    tracing::info!(%addr, upstream = %config.upstream, timeout = ?config.upstream_timeout, capacity = config.cache_capacity_bytes, "caching-proxy listening");
    tokio::select! {
        () = serve_with_shutdown(listener, proxy, shutdown_signal()) => tracing::info!("caching-proxy stopped"),
        () = second_ctrl_c() => tracing::warn!("second Ctrl-C: exiting without waiting for the requests in flight"),
    }
    Ok(())
}

/// Completes on Ctrl-C. If the handler cannot be installed, never completes.
async fn shutdown_signal() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::warn!(%error, "cannot listen for Ctrl-C; stop the process another way");
        std::future::pending::<()>().await;
    }
    tracing::info!("Ctrl-C received, finishing the requests in flight (Ctrl-C again to exit now)");
}

/// Completes on the second Ctrl-C.
async fn second_ctrl_c() {
    for _ in 0..2 {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
