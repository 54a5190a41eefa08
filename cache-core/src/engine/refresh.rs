//! Background refreshes for stale-while-revalidate.

use std::{fmt, future::Future, sync::Arc};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, field};

use super::{Cache, Origin, OriginBody, exchange::Exchange, miss::Miss};
use crate::{
    cache_status::Fwd,
    coalesce::{Joined, Outcome},
    error::BoxError,
};

/// Background refreshes that may run at once, across keys, per [`Cache`].
pub const MAX_REFRESHES: usize = 64;

/// A stale entry's refresh, handed out in [`Served::refresh`](super::Served)
/// after the stale entry answered (see
/// [`Exchange::refresh_in_background`]). Run it in the background with
/// [`Refresh::run`]; dropping it skips the refresh (a later request starts
/// another).
#[must_use = "a refresh does nothing unless run"]
pub struct Refresh<ReqB, F> {
    exchange: Exchange,
    body: ReqB,
    origin: F,
    /// When the entry being refreshed was stored: a newer one found at run
    /// time means another refresh got there first.
    stored_at_ms: u64,
    _permit: OwnedSemaphorePermit,
}

impl<ReqB, F> fmt::Debug for Refresh<ReqB, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresh")
            .field("uri", &self.exchange.parts.uri)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A refresh of the exchange's entry, unless too many already run.
    pub(crate) fn refresh_job<ReqB, F>(&self, exchange: Exchange, body: ReqB, origin: F, stored_at_ms: u64) -> Option<Refresh<ReqB, F>> {
        let Ok(permit) = Arc::clone(&self.inner.refreshes).try_acquire_owned() else {
            tracing::debug!("too many background refreshes: serving stale without one");
            return None;
        };
        Some(Refresh {
            exchange,
            body,
            origin,
            stored_at_ms,
            _permit: permit,
        })
    }
}

impl<ReqB, F> Refresh<ReqB, F> {
    /// Fetches the response from the origin and stores it, unless another
    /// request is already fetching it or has stored a fresh one. Runs in a
    /// `DEBUG` span `http_cache_refresh` (see [`crate::metrics`]).
    pub async fn run<ResB, E, Fut>(self)
    where
        F: FnOnce(Request<ReqB>) -> Fut,
        Fut: Future<Output = Result<Response<ResB>, E>>,
        ResB: Body<Data = Bytes>,
        ResB::Error: Into<BoxError>,
    {
        let span = tracing::debug_span!(
            "http_cache_refresh",
            route = self.exchange.policy.metrics.label(),
            key = field::Empty
        );
        self.exchange.record_key(&span);
        self.refresh().instrument(span).await;
    }

    async fn refresh<ResB, E>(self)
    where
        F: Origin<ReqB, ResB, E>,
        ResB: OriginBody,
    {
        let Refresh {
            exchange: ex,
            body,
            origin,
            stored_at_ms,
            _permit,
        } = self;
        let cache = &ex.cache;
        let Joined::Leader(leader) = cache.inner.coalescer.join(ex.key.as_str()) else {
            return;
        };
        let miss = match cache.lookup(&ex).await {
            Ok((entry, _)) if entry.stored_at_ms > stored_at_ms => {
                leader.finish(Outcome::Entry(entry));
                return;
            }
            // Fresh but due for an early refresh: revalidated like a stale one.
            Ok((entry, _)) => Miss {
                fwd: Fwd::Stale,
                stale: Some(entry),
                stamp: cache.stamp().await,
            },
            Err(miss) => Miss { fwd: Fwd::Stale, ..miss },
        };
        match cache.fetch(&ex, Some(leader), body, origin, miss).await {
            Ok((response, _)) => tracing::debug!(status = %response.status(), "refreshed in the background"),
            Err(_) => tracing::debug!("background refresh failed at the origin; the stale entry stays"),
        }
    }
}
