//! A caching reverse proxy built from `cache-tower`: the library standing
//! where Varnish or nginx would, in front of any HTTP/1.1 origin.
//!
//! ```sh
//! cargo run --release -p caching-proxy -- --listen 127.0.0.1:8081 --upstream http://127.0.0.1:8000
//! curl -i http://127.0.0.1:8081/some/page   # twice: x-cache: MISS, then HIT if the origin allows it
//! ```
//!
//! | flag                 | default          | what                                                          |
//! |----------------------|------------------|---------------------------------------------------------------|
//! | `--listen`           | `127.0.0.1:8081` | address to listen on                                          |
//! | `--upstream`         | (required)       | the origin, `http://host[:port]`                              |
//! | `--upstream-timeout` | `30s`            | time for the origin to send a response head, then `504`       |
//! | `--cache-capacity`   | 256 MiB          | bytes of responses kept in memory (moka)                      |
//! | `--cache-name`       | `caching-proxy`  | the name in `Cache-Status`                                    |
//! | `--max-body-size`    | 1 MiB            | largest body stored; larger ones stream through uncached      |
//! | `--purge-token`      | none             | serve the purge API to `Authorization: Bearer TOKEN`          |
//! | `--trust-forwarded-from` | none         | keep the `X-Forwarded-*` / `Forwarded` of this proxy in front (repeatable) |
//!
//! `RUST_LOG` sets the log filter (default `info`; `cache_core=debug` logs
//! why a response was not stored). Ctrl-C stops accepting, lets the requests
//! in flight finish and exits; a second Ctrl-C exits at once.
//!
//! # Forwarding
//!
//! Every method, path, query, header and body goes to the upstream, over a
//! pool of keep-alive HTTP/1.1 connections ([`Forward`]). Bodies stream both
//! ways; neither is buffered (except a cacheable response body, read up to
//! `--max-body-size` to be stored).
//!
//! - The hop-by-hop fields of RFC 9110 §7.6.1 are dropped in both directions:
//!   `Connection` and every field it names, `Keep-Alive`,
//!   `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`,
//!   `Proxy-Authorization` and `Proxy-Authenticate`.
//! - `Host` is the upstream's authority as given in `--upstream`
//!   (`127.0.0.1:8000`), as nginx's `proxy_pass` does by default
//!   (`proxy_set_header Host $proxy_host`); the `Host` the client sent goes
//!   in `X-Forwarded-Host`.
//! - The forwarding headers are the proxy's own ([`Forwarding`]): from a
//!   client, `X-Forwarded-For`, `-Host`, `-Proto`, `-Port`, `-Prefix`,
//!   `-Server`, `X-Real-IP` and `Forwarded` are dropped, then
//!   `X-Forwarded-For` (the client's address), `X-Forwarded-Host` (its
//!   `Host`), `X-Forwarded-Proto: http` and `Forwarded` (the same three)
//!   are set. A load balancer in front, named with
//!   `--trust-forwarded-from`, keeps its own and the proxy appends to them.
//!   A `GET` or `HEAD` is forwarded without its body. So a client cannot
//!   make the upstream build a page for another host or scheme that the
//!   cache would then serve to everyone (web cache poisoning).
//! - `Via: 1.1 caching-proxy` is appended to requests and responses (to an
//!   existing `Via` list if there is one).
//! - An upstream that cannot be reached, or that breaks the exchange, gives
//!   `502 Bad Gateway`; one that sends no response head within
//!   `--upstream-timeout` gives `504 Gateway Timeout`. Both have a one-line
//!   text body and `Cache-Control: no-store`. `CONNECT` gets `405`.
//!
//! Not supported: TLS on either side (put a TLS terminator in front, and an
//! `http://` origin behind), protocol upgrades such as WebSocket (`Upgrade`
//! is hop-by-hop and dropped, so the origin answers as to a plain request),
//! HTTP/2.
//!
//! # Caching
//!
//! A [`CacheLayer`] stands in front of [`Forward`], with one policy for
//! every path ([`policy`]) in [`CacheMode::Rfc9111`]: a shared cache
//! as RFC 9111 describes it, where the origin's response headers decide
//! what is stored and for how long (`s-maxage`, `max-age`, `Expires`,
//! heuristics where allowed), with no TTL of the proxy's own. In short:
//!
//! - Only `GET` and `HEAD` are answered from the cache; a `HEAD` that misses
//!   is fetched as `GET`, so that its response can be stored. Other methods
//!   pass through, and a successful `POST`, `PUT`, `PATCH`, `DELETE` or
//!   other method not known to be safe (`M-SEARCH`, but not `PROPFIND`)
//!   drops the entries of its URI.
//! - The key is `Host`, the path and the whole query, plus the request
//!   headers the response's `Vary` names (with `--trust-forwarded-from`,
//!   also `X-Forwarded-Host` and `X-Forwarded-Proto`): the forwarding
//!   headers common frameworks read are keyed, set by the proxy or dropped
//!   (see [`Forwarding`]). Any other request header the upstream builds a
//!   shared page from must be named in the response's `Vary`.
//! - Responses marked `private` or `no-store`, with `Set-Cookie`, or to a
//!   request with `Authorization` (unless marked `public`, `s-maxage` or
//!   `must-revalidate`) are not stored.
//! - Conditional requests (`If-None-Match`, `If-Modified-Since`) are answered
//!   with `304` from stored responses; concurrent misses on one key share
//!   one upstream request.
//! - Every response says what happened: `X-Cache: HIT`/`MISS` and
//!   `Cache-Status: caching-proxy; hit; ttl=57` (RFC 9211), with `Age`.
//!
//! # Purging
//!
//! With `--purge-token TOKEN` ([`Config::purge_token`]), the proxy answers
//! two kinds of request itself, with `Authorization: Bearer TOKEN` (see
//! `cache_core::purge`): `PURGE <url>` drops every stored variant of the
//! URL, and `POST /purge` with `{"tags": [...], "keys": [...], "prefixes":
//! [...]}` drops those entries; both answer `{"dropped": n}`, or `401`
//! without the token. Without `--purge-token`, both are forwarded upstream
//! like any other request.
//!
//! # Metrics
//!
//! The binary answers `GET /metrics` itself with the cache's metrics in
//! the Prometheus text format (requests by outcome, store latency and size,
//! invalidations: see [`metrics`]), instead of forwarding it upstream; in
//! code, [`Proxy::with_metrics`] turns it on.
//!
//! # Example
//!
//! The proxy in-process, as the tests run it:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use caching_proxy::{Config, Proxy, serve_with_shutdown};
//!
//! let config = Config::new("http://127.0.0.1:8000".parse()?);
//! let proxy = Proxy::new(&config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("proxying http://{} to {}", listener.local_addr()?, config.upstream);
//! serve_with_shutdown(listener, proxy, async {
//!     tokio::signal::ctrl_c().await.ok();
//! })
//! .await;
//! # Ok(())
//! # }
//! ```
//!
//! [`Proxy::service`] is the whole proxy as one tower service, to serve
//! with another server or to call in-process.

pub mod cli;
mod config;
mod error;
mod forward;
mod forwarding;
mod headers;
pub mod metrics;
mod server;

use cache_core::purge::{PURGE_PATH, Purger};
use cache_core::{Cache, CacheMode, CachePolicy, ConfigError, MokaStore, Policies};
use cache_tower::purge::{PurgeLayer, PurgeService};
use cache_tower::{CacheLayer, CacheService};
use tower::Layer;

use crate::metrics::{Endpoint, MetricsService};

pub use config::{Config, DEFAULT_CACHE_CAPACITY_BYTES, DEFAULT_CACHE_NAME, DEFAULT_MAX_BODY_SIZE, DEFAULT_UPSTREAM_TIMEOUT, Upstream};
pub use error::ProxyError;
pub use forward::{ClientAddr, Forward, ProxyBody};
pub use forwarding::{FORWARDED, Forwarding, X_FORWARDED_HOST, X_FORWARDED_PROTO};
pub use headers::{VIA_PSEUDONYM, X_FORWARDED_FOR};
pub use server::{serve, serve_with_shutdown};

/// The whole proxy as a tower service: the metrics endpoint (inert unless
/// [`Proxy::with_metrics`]) in front of the purge API (inert without a
/// token), in front of the forwarding headers ([`Forwarding`]), in front of
/// the cache, in front of [`Forward`].
///
/// It takes any request body of [`Bytes`](bytes::Bytes) and never fails.
pub type ProxyService = MetricsService<PurgeService<Forwarding<CacheService<Forward>>>>;

/// A configured proxy: its service and the cache it serves from. Cheap to
/// clone; clones share the cache and the upstream connection pool.
#[derive(Debug, Clone)]
pub struct Proxy {
    service: ProxyService,
    cache: Cache,
}

impl Proxy {
    /// Builds the cache (moka, of `config.cache_capacity_bytes`, named
    /// `config.cache_name`), its [`policy`] and the forwarder.
    ///
    /// # Errors
    ///
    /// A zero upstream timeout, a cache name that `Cache-Status` cannot
    /// carry (it must be a token starting with a letter), or a TTL table
    /// that cannot be loaded.
    pub fn new(config: &Config) -> Result<Self, ProxyError> {
        if config.upstream_timeout.is_zero() {
            return Err(ProxyError::ZeroUpstreamTimeout);
        }
        let store = MokaStore::builder().max_capacity(config.cache_capacity_bytes).build();
        let cache = Cache::builder().name(config.cache_name.clone()).store(store).build()?;
        Self::with_cache(config, cache)
    }

    /// A proxy serving from `cache` (any store, any clock) instead of the
    /// moka cache [`Proxy::new`] builds; `config.cache_capacity_bytes` and
    /// `config.cache_name` are then the cache's business.
    ///
    /// # Errors
    ///
    /// A zero upstream timeout, or a TTL table that cannot be loaded.
    pub fn with_cache(config: &Config, cache: Cache) -> Result<Self, ProxyError> {
        if config.upstream_timeout.is_zero() {
            return Err(ProxyError::ZeroUpstreamTimeout);
        }
        let policy = policy(config)?;
        let policies = match &config.cache_table {
            Some(path) => Policies::from_toml_file(path)?.fallback(policy),
            None => Policies::new(policy),
        };
        // What the upstream may read of the request's host and scheme is
        // keyed, whichever policy applies.
        let keyed = keyed_forwarding_headers(config);
        let policies = policies.map(|policy| policy.keyed_by(&keyed));
        let purger = config.purge_token.clone().map(|token| Purger::new(&cache, token));
        let purge = PurgeLayer::new(purger, policies.clone()).endpoint(PURGE_PATH);
        let cached = CacheLayer::new(&cache, policies).layer(Forward::new(config));
        let service = purge.layer(Forwarding::new(cached, &config.trusted_proxies));
        let service = MetricsService::new(service);
        Ok(Proxy { service, cache })
    }

    /// Answers `GET /metrics` with the metrics `handle` renders (usually
    /// [`metrics::prometheus`]), after sampling the cache's gauges, instead
    /// of forwarding it upstream. See [`metrics`].
    #[must_use]
    pub fn with_metrics(mut self, handle: metrics::PrometheusHandle) -> Self {
        let cache = self.cache.clone();
        self.service.enable(Endpoint { handle, cache });
        self
    }

    /// The proxy as a tower service. Requests whose [`ClientAddr`]
    /// extension is set get `X-Forwarded-For`.
    pub fn service(&self) -> ProxyService {
        self.service.clone()
    }

    /// The response cache, to look into or invalidate from code.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }
}

/// The request headers every policy of the proxy keys by: `Host`, and with
/// trusted proxies in front, the `X-Forwarded-Host` and `X-Forwarded-Proto`
/// they set (otherwise the proxy sets those from `Host` and its own scheme).
fn keyed_forwarding_headers(config: &Config) -> Vec<http::HeaderName> {
    let mut keyed = vec![http::header::HOST];
    if !config.trusted_proxies.is_empty() {
        keyed.extend([X_FORWARDED_HOST, X_FORWARDED_PROTO]);
    }
    keyed
}

/// The cache policy of every path: [`CacheMode::Rfc9111`], storing bodies
/// up to `config.max_body_size`, every other setting at its default.
///
/// # Errors
///
/// None with the settings a [`Config`] holds; the builder's errors are
/// passed on.
pub fn policy(config: &Config) -> Result<CachePolicy, ConfigError> {
    CachePolicy::builder()
        .mode(CacheMode::Rfc9111)
        .max_body_size(config.max_body_size)
        .build()
}
