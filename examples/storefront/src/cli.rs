//! What both storefront binaries share on the command line.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use cache_axum::Ttl;
use cache_axum::purge::PurgeAuth;
use tracing_subscriber::EnvFilter;

use crate::{Config, DEFAULT_REDIS_PREFIX, RedisTarget, StoreConfig};

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
    /// Keep the catalog in the SQLite file at PATH, shared by every
    /// storefront started with the same path (the first one seeds it; an
    /// existing catalog keeps its data and updates). Default: a database in
    /// memory, of this process alone.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// A TTL table in TOML (see examples/storefront/cache.toml) replacing
    /// the in-code cache policies. A mistake in it stops the start.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Capacity of the in-process response cache (alone, or the L1 in front
    /// of Redis) in bytes [default: 256 MiB].
    #[arg(long)]
    pub cache_capacity: Option<u64>,
    /// Share the cache with other storefronts through the Redis server at URL,
    /// behind an in-process L1 kept coherent over Redis pub/sub:
    /// `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. The
    /// storefront starts even when Redis is down, and serves from its
    /// database until Redis answers.
    #[arg(long, value_name = "URL", group = "redis_target")]
    pub redis: Option<String>,
    /// As --redis, over the Redis Cluster reachable at any of these seed nodes.
    #[arg(long, value_name = "URL,URL,...", value_delimiter = ',', group = "redis_target")]
    pub redis_cluster: Vec<String>,
    /// With --redis or --redis-cluster: Redis alone, without the in-process
    /// L1 (every hit is a Redis round trip).
    #[arg(long, requires = "redis_target")]
    pub redis_only: bool,
    /// Prefix of every key in Redis, so that several applications share it.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_REDIS_PREFIX, requires = "redis_target")]
    pub redis_prefix: String,
    /// Serve the purge API (`POST /purge`, `PURGE <url>`) to requests with
    /// `Authorization: Bearer TOKEN`. Without it there is no purge API.
    /// Read from `STOREFRONT_PURGE_TOKEN` when not given (which, unlike an
    /// argument, other users cannot see in `ps`).
    #[arg(long, value_name = "TOKEN", env = "STOREFRONT_PURGE_TOKEN", hide_env_values = true)]
    pub purge_token: Option<PurgeAuth>,
}

impl Options {
    /// The configuration these options describe, listening on `listen`.
    pub fn config(&self, listen: SocketAddr) -> Config {
        let defaults = Config::default();
        Config {
            listen,
            db_latency: self.db_latency.as_duration(),
            products_per_tenant: self.products_per_tenant.unwrap_or(defaults.products_per_tenant),
            db: self.db.clone(),
            cache_table: self.config.clone(),
            cache_capacity_bytes: self.cache_capacity.unwrap_or(defaults.cache_capacity_bytes),
            store: self.store(),
            purge_token: self.purge_token.clone(),
        }
    }

    /// The store these options select: moka unless Redis is given.
    pub fn store(&self) -> StoreConfig {
        let target = match (&self.redis, self.redis_cluster.is_empty()) {
            (Some(url), _) => RedisTarget::Server(url.clone()),
            (None, false) => RedisTarget::Cluster(self.redis_cluster.clone()),
            (None, true) => return StoreConfig::Moka,
        };
        StoreConfig::Redis {
            target,
            prefix: self.redis_prefix.clone(),
            l1: !self.redis_only,
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[command(flatten)]
        options: Options,
    }

    fn store(args: &[&str]) -> Result<StoreConfig, clap::Error> {
        let args = Args::try_parse_from(std::iter::once("storefront").chain(args.iter().copied()))?;
        Ok(args.options.store())
    }

    fn redis(target: RedisTarget, prefix: &str, l1: bool) -> StoreConfig {
        StoreConfig::Redis {
            target,
            prefix: prefix.to_owned(),
            l1,
        }
    }

    #[test]
    fn redis_flags_select_the_store() {
        let server = || RedisTarget::Server("redis://127.0.0.1:6379".into());
        assert_eq!(store(&[]).unwrap(), StoreConfig::Moka);
        assert_eq!(
            store(&["--redis", "redis://127.0.0.1:6379"]).unwrap(),
            redis(server(), "storefront:", true)
        );
        assert_eq!(
            store(&["--redis", "redis://127.0.0.1:6379", "--redis-only", "--redis-prefix", "shop:"]).unwrap(),
            redis(server(), "shop:", false)
        );
        assert_eq!(
            store(&["--redis-cluster", "redis://a:7000,redis://b:7000"]).unwrap(),
            redis(
                RedisTarget::Cluster(vec!["redis://a:7000".into(), "redis://b:7000".into()]),
                "storefront:",
                true
            )
        );
    }

    #[test]
    fn db_selects_a_shared_file_and_defaults_to_memory() {
        let config = |args: &[&str]| {
            let args = Args::try_parse_from(std::iter::once("storefront").chain(args.iter().copied())).expect("the flags parse");
            args.options.config(Config::default().listen)
        };
        assert_eq!(config(&[]).db, None);
        assert_eq!(
            config(&["--db", "/tmp/storefront.db"]).db,
            Some(PathBuf::from("/tmp/storefront.db"))
        );
    }

    #[test]
    fn redis_flags_that_do_not_go_together_are_rejected() {
        assert!(store(&["--redis-only"]).is_err());
        assert!(store(&["--redis-prefix", "shop:"]).is_err());
        assert!(store(&["--redis", "redis://a:6379", "--redis-cluster", "redis://b:7000"]).is_err());
    }
}
