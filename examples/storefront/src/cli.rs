//! What both storefront binaries share on the command line.

use std::io::IsTerminal;
use std::net::SocketAddr;

use cache_axum::Ttl;
use tracing_subscriber::EnvFilter;

use crate::Config;

/// The storefront's options besides `--listen` (whose default differs
/// between the binaries).
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Delay added to every database query, like `35ms` (a networked database).
    #[arg(long, default_value = "0ms")]
    pub db_latency: Ttl,
    /// Products seeded per tenant [default: 4000].
    #[arg(long)]
    pub products_per_tenant: Option<u64>,
    /// Capacity of the response cache in bytes [default: 256 MiB].
    #[arg(long)]
    pub cache_capacity: Option<u64>,
}

impl Options {
    /// The configuration these options describe, listening on `listen`.
    pub fn config(&self, listen: SocketAddr) -> Config {
        let defaults = Config::default();
        Config {
            listen,
            db_latency: self.db_latency.as_duration(),
            products_per_tenant: self.products_per_tenant.unwrap_or(defaults.products_per_tenant),
            cache_capacity_bytes: self.cache_capacity.unwrap_or(defaults.cache_capacity_bytes),
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}
