//! The command line of the `caching-proxy` binary.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use cache_core::Ttl;
use cache_core::purge::PurgeAuth;
use tracing_subscriber::EnvFilter;

use crate::{Config, DEFAULT_CACHE_CAPACITY_BYTES, DEFAULT_CACHE_NAME, DEFAULT_MAX_BODY_SIZE, Upstream};

/// A caching reverse proxy: forwards every request to one upstream and
/// caches its responses as a shared cache (RFC 9111).
#[derive(Debug, clap::Parser)]
#[command(name = "caching-proxy", version, about)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// The origin server, `http://host[:port]`; it also gets this as `Host`.
    #[arg(long, value_name = "URL")]
    pub upstream: Upstream,
    /// How long the upstream has to answer with a response head before the
    /// client gets 504, like `30s` or `500ms`.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub upstream_timeout: Ttl,
    /// Capacity of the in-memory response cache, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_CACHE_CAPACITY_BYTES)]
    pub cache_capacity: u64,
    /// The proxy's name in Cache-Status headers.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CACHE_NAME)]
    pub cache_name: String,
    /// The largest response body stored, in bytes; larger ones stream
    /// through uncached.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_SIZE)]
    pub max_body_size: usize,
    /// A TTL table in TOML: policies (TTL, key, tags, invalidation) by path
    /// pattern; paths it does not match keep RFC 9111 semantics. A mistake
    /// in it stops the start.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Forward `GET /metrics` upstream instead of answering it with the
    /// proxy's own metrics (Prometheus text format).
    #[arg(long)]
    pub no_metrics: bool,
    /// Answer `PURGE <url>` and `POST /purge` for requests with
    /// `Authorization: Bearer TOKEN`, instead of forwarding them. Read from
    /// `CACHING_PROXY_PURGE_TOKEN` when not given (which, unlike an
    /// argument, other users cannot see in `ps`).
    #[arg(long, value_name = "TOKEN", env = "CACHING_PROXY_PURGE_TOKEN", hide_env_values = true)]
    pub purge_token: Option<PurgeAuth>,
    /// Keep the `X-Forwarded-*` and `Forwarded` headers of requests from
    /// this address (a load balancer in front); repeat for several. From
    /// any other client they are replaced by the proxy's own.
    #[arg(long, value_name = "ADDR")]
    pub trust_forwarded_from: Vec<std::net::IpAddr>,
}

impl Args {
    /// The proxy configuration these arguments describe.
    pub fn config(&self) -> Config {
        Config {
            upstream: self.upstream.clone(),
            upstream_timeout: self.upstream_timeout.as_duration(),
            cache_capacity_bytes: self.cache_capacity,
            cache_name: self.cache_name.clone(),
            max_body_size: self.max_body_size,
            cache_table: self.config.clone(),
            purge_token: self.purge_token.clone(),
            trusted_proxies: self.trust_forwarded_from.clone(),
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
    use std::time::Duration;

    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("caching-proxy").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let args = parse(&["--upstream", "http://127.0.0.1:8000"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:8081".parse().unwrap());
        let upstream: Upstream = "http://127.0.0.1:8000".parse().unwrap();
        assert_eq!(args.config(), Config::new(upstream));
    }

    #[test]
    fn every_flag() {
        let args = parse(&[
            "--listen",
            "0.0.0.0:9000",
            "--upstream",
            "http://origin:8080",
            "--upstream-timeout",
            "1m30s",
            "--cache-capacity",
            "1024",
            "--cache-name",
            "edge",
            "--max-body-size",
            "2048",
            "--trust-forwarded-from",
            "10.0.0.2",
            "--trust-forwarded-from",
            "::1",
        ])
        .unwrap();
        let config = args.config();
        assert_eq!(args.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(config.upstream.authority().as_str(), "origin:8080");
        assert_eq!(config.upstream_timeout, Duration::from_secs(90));
        assert_eq!((config.cache_capacity_bytes, config.max_body_size), (1024, 2048));
        assert_eq!(config.cache_name, "edge");
        assert_eq!(
            config.trusted_proxies,
            ["10.0.0.2".parse::<std::net::IpAddr>().unwrap(), "::1".parse().unwrap()]
        );
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(parse(&[]).is_err(), "--upstream is required");
        assert!(parse(&["--upstream", "https://origin"]).is_err());
        assert!(parse(&["--upstream", "http://origin", "--upstream-timeout", "soon"]).is_err());
    }
}
