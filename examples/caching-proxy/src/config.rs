//! [`Config`] and [`Upstream`]: what a proxy is built from.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use cache_core::purge::PurgeAuth;

use http::{
    HeaderValue, Uri,
    uri::{Authority, PathAndQuery, Scheme},
};

use crate::ProxyError;

/// How long the upstream has to answer with a response head, by default.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// The capacity of the response cache, by default: 256 MiB.
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 256 * 1024 * 1024;
/// The proxy's name in `Cache-Status`, by default.
pub const DEFAULT_CACHE_NAME: &str = "caching-proxy";
/// The largest response body stored, by default (larger ones stream
/// through uncached): 1 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = cache_core::policy::DEFAULT_MAX_BODY_SIZE;

/// Settings of one proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where requests go.
    pub upstream: Upstream,
    /// How long the upstream has, from the start of forwarding a request
    /// (connecting included), to answer with a response head; after it the
    /// client gets `504 Gateway Timeout`. The body that follows the head is
    /// not timed. Default: [`DEFAULT_UPSTREAM_TIMEOUT`].
    pub upstream_timeout: Duration,
    /// Capacity of the in-memory response cache, in bytes. Default:
    /// [`DEFAULT_CACHE_CAPACITY_BYTES`].
    pub cache_capacity_bytes: u64,
    /// The proxy's name in `Cache-Status` (`caching-proxy; hit`). Default:
    /// [`DEFAULT_CACHE_NAME`].
    pub cache_name: String,
    /// The largest response body stored, in bytes; a larger one streams
    /// through uncached, and is never buffered past this size. Default:
    /// [`DEFAULT_MAX_BODY_SIZE`].
    pub max_body_size: usize,
    /// A TTL table in TOML (`--config FILE`, see
    /// [`cache_core::config`]): the policies of the paths its routes match;
    /// other paths keep the proxy's own RFC 9111 policy. Default: `None`.
    pub cache_table: Option<PathBuf>,
    /// The token of the purge API (`PURGE <url>`, `POST /purge`); without
    /// one, those requests are forwarded like any other. Default: `None`.
    pub purge_token: Option<PurgeAuth>,
    /// Addresses of proxies in front (load balancers) whose
    /// `X-Forwarded-*` and `Forwarded` headers are kept rather than
    /// replaced (see [`Forwarding`](crate::Forwarding)). Default: none.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Config {
    /// A configuration forwarding to `upstream`, with every other default.
    pub fn new(upstream: Upstream) -> Self {
        Config {
            upstream,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            cache_capacity_bytes: DEFAULT_CACHE_CAPACITY_BYTES,
            cache_name: DEFAULT_CACHE_NAME.to_owned(),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            cache_table: None,
            purge_token: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The origin server a proxy forwards to: `http://host[:port]`.
///
/// Parsed from a URL with the `http` scheme, a host, an optional port and
/// no path (a trailing `/` is accepted), query or user information.
///
/// # Example
///
/// ```
/// use caching_proxy::Upstream;
///
/// let upstream: Upstream = "http://127.0.0.1:8000".parse().unwrap();
/// assert_eq!(upstream.authority().as_str(), "127.0.0.1:8000");
/// assert!("https://example.com".parse::<Upstream>().is_err());
/// assert!("http://example.com/app".parse::<Upstream>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    authority: Authority,
    host: HeaderValue,
}

impl Upstream {
    /// The upstream's host and port, as given; also the `Host` of every
    /// forwarded request.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The value of `Host` on forwarded requests.
    pub(crate) fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// The absolute URI of `path_and_query` on the upstream.
    pub(crate) fn uri(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let path_and_query = path_and_query.map_or_else(|| PathAndQuery::from_static("/"), PathAndQuery::clone);
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

impl FromStr for Upstream {
    type Err = ProxyError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let unsupported = |reason| ProxyError::UnsupportedUpstream {
            input: input.to_owned(),
            reason,
        };
        let uri: Uri = input.parse().map_err(|source| ProxyError::UpstreamUrl {
            input: input.to_owned(),
            source,
        })?;
        match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP => {}
            Some(_) => return Err(unsupported("only `http://` upstreams are supported")),
            None => return Err(unsupported("give a URL such as `http://127.0.0.1:8000`")),
        }
        let authority = uri.authority().ok_or_else(|| unsupported("the URL has no host"))?.clone();
        if authority.as_str().contains('@') {
            return Err(unsupported("user information is not supported"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(unsupported("the URL must have no path or query: requests keep their own"));
        }
        let host = HeaderValue::from_str(authority.as_str()).expect("a parsed authority is a valid field value");
        Ok(Upstream { authority, host })
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_checked() {
        let upstream: Upstream = "http://localhost:8000/".parse().unwrap();
        assert_eq!(upstream.to_string(), "http://localhost:8000");
        assert_eq!(upstream.host(), "localhost:8000");
        let pq = PathAndQuery::from_static("/a/b?c=d");
        assert_eq!(upstream.uri(Some(&pq)).unwrap(), "http://localhost:8000/a/b?c=d");
        assert_eq!(upstream.uri(None).unwrap(), "http://localhost:8000/");

        for bad in [
            "localhost:8000",
            "https://localhost",
            "http://u:p@localhost",
            "http://localhost/app",
            "http://h/?q=1",
            "http://",
        ] {
            assert!(bad.parse::<Upstream>().is_err(), "{bad} is accepted");
        }
    }
}
