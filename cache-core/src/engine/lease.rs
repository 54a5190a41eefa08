//! Coalescing misses across instances through store leases.

use std::{sync::Arc, time::Duration};

use super::{Cache, exchange::Exchange};
use crate::{CachedEntry, Lease, LeaseToken, store::SharedStore};

/// First pause between looks at the store while another instance fetches.
const FIRST_POLL: Duration = Duration::from_millis(5);
/// Longest pause between looks.
const MAX_POLL: Duration = Duration::from_millis(50);

/// What a request that leads coalescing in its process does next.
pub(crate) enum Across {
    /// Fetch from the origin, holding the lease if there is one.
    Fetch(Option<LeaseGuard>),
    /// Another instance stored the response.
    Entry(Arc<CachedEntry>),
}

/// A held lease, released when the fetch is over (or, if the request is
/// dropped first, in the background).
pub(crate) struct LeaseGuard {
    store: SharedStore,
    key: String,
    token: Option<LeaseToken>,
}

impl LeaseGuard {
    pub(crate) async fn release(mut self) {
        if let Some(token) = self.token.take()
            && let Err(err) = self.store.release_lease(&self.key, &token).await
        {
            tracing::debug!(error = %err, "lease not released; it expires");
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, key) = (Arc::clone(&self.store), std::mem::take(&mut self.key));
        runtime.spawn(async move {
            let _ = store.release_lease(&key, &token).await;
        });
    }
}

impl Cache {
    /// Takes the key's lease, or waits for the instance holding it to store
    /// the response: bounded by the policy's coalescing timeout, after
    /// which the request fetches anyway.
    pub(crate) async fn lease_or_wait(&self, ex: &Exchange) -> Across {
        let store = &self.inner.store;
        let key = ex.key.as_str();
        let timeout = ex.policy.coalesce_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = FIRST_POLL;
        loop {
            match store.try_lease(key, timeout).await {
                Ok(Lease::Acquired(token)) => {
                    return Across::Fetch(Some(LeaseGuard {
                        store: Arc::clone(store),
                        key: key.to_owned(),
                        token: Some(token),
                    }));
                }
                Ok(Lease::Held) => {}
                Ok(Lease::Unsupported) => return Across::Fetch(None),
                Err(err) => {
                    self.log_store_error("lease", &err);
                    return Across::Fetch(None);
                }
            }
            // Another instance is fetching: look for its response, then
            // (if it is not there yet) for the lease again, which is free
            // when the holder finished without a storable response or died.
            let now = tokio::time::Instant::now();
            if now >= deadline {
                tracing::debug!("waited the coalescing timeout for another instance: fetching");
                return Across::Fetch(None);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 3 / 2).min(MAX_POLL);
            if let Ok((entry, _)) = self.lookup(ex).await {
                return Across::Entry(entry);
            }
        }
    }
}
