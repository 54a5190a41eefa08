//! Invalidation from code.

use std::{future::Future, sync::Arc};

use http::Request;

use crate::{
    Cache, CachePolicy,
    error::StoreError,
    invalidation_log::Target,
    metrics::{self, InvalidationKind},
    tags::Tag,
};

/// Drops entries: by key, by tag, by key prefix, or every variant of a
/// request's URI.
///
/// Get one from [`Cache::invalidator`]; it is cheap to clone and can live in
/// application state or be extracted in handlers. An invalidation also stops
/// the responses being fetched while it runs from being stored, when they
/// would carry a dropped tag or key, since they may predate the change.
///
/// Each invalidation runs to its end on a task of its own: a caller that
/// goes away halfway (a handler whose client disconnected) never leaves it
/// applied to the store but not to other instances' in-process copies.
///
/// # Errors
///
/// Each method returns the store's error; the entries may then still be
/// there until they expire.
///
/// # Metrics
///
/// Each tag, key and prefix counts in `http_cache_invalidations_total`
/// (label `kind`: `tag`, `key`, `prefix`), and the entries dropped in
/// `http_cache_invalidated_entries_total`; see [`crate::metrics`].
#[derive(Debug, Clone)]
pub struct Invalidator {
    pub(crate) cache: Cache,
}

impl Invalidator {
    /// Drops every entry carrying `tag`; returns how many were dropped.
    pub async fn tag(&self, tag: impl Into<String>) -> Result<u64, StoreError> {
        self.tags([tag.into()]).await
    }

    /// Drops every entry carrying any of `tags`; returns how many.
    pub async fn tags<I, S>(&self, tags: I) -> Result<u64, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.typed_tags(tags.into_iter().map(|tag| Tag::app(tag)).collect()).await
    }

    /// Drops every entry carrying any of `tags`, app's or the cache's own.
    pub(crate) async fn typed_tags(&self, tags: Vec<Tag>) -> Result<u64, StoreError> {
        let tags = Tag::stored(tags);
        self.cache.inner.invalidations.record(Target::Tags(tags.clone()));
        let store = Arc::clone(&self.cache.inner.store);
        let owned = tags.clone();
        let dropped = detached(async move { store.invalidate_tags(&owned).await }).await;
        let count = u64::try_from(tags.len()).unwrap_or(u64::MAX);
        metrics::invalidation(InvalidationKind::Tag, count, dropped.as_ref().ok().copied());
        let dropped = dropped?;
        tracing::debug!(?tags, dropped, "invalidated tags");
        Ok(dropped)
    }

    /// Drops the entry stored at `key` (see [`CacheKey`](crate::key::CacheKey)).
    pub async fn key(&self, key: &str) -> Result<bool, StoreError> {
        self.cache.inner.invalidations.record(Target::Key(key.to_owned()));
        let store = Arc::clone(&self.cache.inner.store);
        let key = key.to_owned();
        let dropped = detached(async move { store.delete(&key).await }).await;
        metrics::invalidation(InvalidationKind::Key, 1, dropped.as_ref().ok().map(|&d| u64::from(d)));
        dropped
    }

    /// Drops every entry whose key starts with `prefix`; see
    /// [`KeySpec::prefix`](crate::key::KeySpec::prefix) to build one. May scan
    /// the store.
    pub async fn prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        self.cache.inner.invalidations.record(Target::Prefix(prefix.to_owned()));
        let store = Arc::clone(&self.cache.inner.store);
        let prefix = prefix.to_owned();
        let dropped = detached(async move { store.invalidate_prefix(&prefix).await }).await;
        metrics::invalidation(InvalidationKind::Prefix, 1, dropped.as_ref().ok().copied());
        dropped
    }

    /// Drops every stored variant of the URI that `request` addresses under
    /// `policy`, as a successful unsafe request on it would.
    pub async fn request<B>(&self, policy: &CachePolicy, request: &Request<B>) -> Result<u64, StoreError> {
        let mut head = Request::new(());
        *head.method_mut() = request.method().clone();
        *head.uri_mut() = request.uri().clone();
        *head.headers_mut() = request.headers().clone();
        *head.extensions_mut() = request.extensions().clone();
        let (parts, ()) = head.into_parts();
        let key = policy.key().build(&parts);
        self.typed_tags(vec![Tag::uri(key.uri())]).await
    }
}

/// Runs `work` on a task of its own when there is a runtime, so that it
/// ends even if the caller's future is dropped.
async fn detached<T, F>(work: F) -> Result<T, StoreError>
where
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
    T: Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => match runtime.spawn(work).await {
            Ok(done) => done,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // The runtime is shutting down.
            Err(join) => Err(StoreError::backend(join)),
        },
        Err(_) => work.await,
    }
}
