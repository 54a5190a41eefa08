//! Per-response refinements from handlers.

use std::time::Duration;

/// A handler's refinement of its route's policy for one response.
///
/// Put it in the response's extensions (in axum: return
/// `(Extension(hints), body)`); the cache reads it and removes it, so it never
/// reaches outer layers or the client. Tags added here come on top of the
/// policy's tag templates.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use cache_core::CacheHints;
///
/// let hints = CacheHints::new().tag("category:acme:books").ttl(Duration::from_secs(30));
/// assert_eq!(hints.tags(), ["category:acme:books"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheHints {
    ttl: Option<Duration>,
    tags: Vec<String>,
    no_store: bool,
}

impl CacheHints {
    /// No refinement.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets this response's freshness lifetime instead of the policy's.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Adds tags.
    #[must_use]
    pub fn with_tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Keeps this response out of the cache.
    #[must_use]
    pub fn no_store(mut self) -> Self {
        self.no_store = true;
        self
    }

    /// The TTL set by the handler, if any.
    pub fn ttl_override(&self) -> Option<Duration> {
        self.ttl
    }

    /// The tags added by the handler.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Whether the handler asked not to store the response.
    pub fn is_no_store(&self) -> bool {
        self.no_store
    }
}
