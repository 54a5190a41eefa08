//! [`ProxyError`]: why a proxy could not be configured.

use cache_core::ConfigError;

/// A configuration the proxy cannot run with, reported before it listens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The upstream is not a URL.
    #[error("invalid upstream URL `{input}`")]
    UpstreamUrl {
        /// The upstream as given.
        input: String,
        /// Why it does not parse.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The upstream is a URL the proxy cannot forward to.
    #[error("unsupported upstream `{input}`: {reason}")]
    UnsupportedUpstream {
        /// The upstream as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The upstream timeout is zero.
    #[error("the upstream timeout must be positive")]
    ZeroUpstreamTimeout,
    /// The cache or its policy rejected a setting (such as a cache name
    /// that is not a token).
    #[error(transparent)]
    Cache(#[from] ConfigError),
    /// The TTL table (`--config`) could not be loaded: the message names
    /// the file, the route and the field.
    #[error("could not load the TTL table: {0}")]
    CacheTable(cache_core::config::ConfigFileError),
}

impl From<cache_core::config::ConfigFileError> for ProxyError {
    fn from(e: cache_core::config::ConfigFileError) -> Self {
        Self::CacheTable(e)
    }
}
