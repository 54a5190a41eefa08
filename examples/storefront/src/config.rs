//! [`Config`]: what the app is built from.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use cache_axum::purge::PurgeAuth;

use crate::StoreConfig;

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
    /// The SQLite file holding the catalog, shared by every storefront
    /// opened on the same path ([`catalog::Catalog::open_file`]; seeded by
    /// the first, with `products_per_tenant` products). Default: `None`, a
    /// database in memory, of this process alone.
    pub db: Option<PathBuf>,
    /// Capacity of the in-memory response cache (moka alone, or the L1 in
    /// front of Redis), in bytes. Default: 256 MiB.
    pub cache_capacity_bytes: u64,
    /// Where the response cache keeps its entries. Default: moka, in process.
    pub store: StoreConfig,
    /// A TTL table in TOML (`examples/storefront/cache.toml`) whose policies
    /// replace the in-code ones of [`policies`](crate::policies), applied by
    /// one cache layer over every route. Default: `None`, the in-code
    /// policies.
    pub cache_table: Option<PathBuf>,
    /// The token of the purge API (`POST /purge`, `PURGE <url>`); without
    /// one there is no purge API. Default: `None`.
    pub purge_token: Option<PurgeAuth>,
}

/// The default cache capacity: 256 MiB.
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 256 * 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 3000)),
            db_latency: Duration::ZERO,
            products_per_tenant: catalog::DEFAULT_PRODUCTS_PER_TENANT,
            db: None,
            cache_capacity_bytes: DEFAULT_CACHE_CAPACITY_BYTES,
            store: StoreConfig::Moka,
            cache_table: None,
            purge_token: None,
        }
    }
}
