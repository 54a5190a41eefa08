//! [`Config`]: what the app is built from.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Settings of one storefront instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address the server listens on. Default: `127.0.0.1:3000`.
    pub listen: SocketAddr,
    /// Delay added to every database query, standing for a networked
    /// database. Default: none.
    pub db_latency: Duration,
    /// Products seeded per tenant. Default:
    /// [`catalog::DEFAULT_PRODUCTS_PER_TENANT`].
    pub products_per_tenant: u64,
    /// Capacity of the in-memory response cache, in bytes. Default: 256 MiB.
    pub cache_capacity_bytes: u64,
}

/// The default cache capacity: 256 MiB.
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 256 * 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 3000)),
            db_latency: Duration::ZERO,
            products_per_tenant: catalog::DEFAULT_PRODUCTS_PER_TENANT,
            cache_capacity_bytes: DEFAULT_CACHE_CAPACITY_BYTES,
        }
    }
}
