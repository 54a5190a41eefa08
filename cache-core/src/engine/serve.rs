//! The second step of serving a request ([`Exchange::serve`]): lookup,
//! coalescing, the fetch, and the unsafe methods' invalidations.

use std::{fmt, future::Future, sync::Arc};

use bytes::Bytes;
use http::{Request, Response, header, request::Parts};
use http_body::Body;
use tracing::Instrument;

use super::{
    Cache, Origin, OriginBody,
    classify::Class,
    exchange::Exchange,
    freshness::{early_refresh_due, usable},
    lease::Across,
    miss::Miss,
    refresh::Refresh,
    rfc::RequestDirectives,
};
use crate::{
    CacheBody, CacheMode, CachePolicy, CachedEntry, RouteMatch, Stamp,
    cache_status::{Fwd, Status},
    coalesce::{self, Turn},
    error::BoxError,
    key::CacheKey,
    metrics::Outcome,
    tags::Tag,
};

/// A response the engine built, and how the cache came to it.
pub(crate) type Answer<B> = (Response<CacheBody<B>>, Outcome);

/// What [`Exchange::serve`] came to.
pub struct Served<ResB, ReqB, F> {
    /// The response for the client.
    pub response: Response<CacheBody<ResB>>,
    /// How the cache came to it (counted in the metrics already).
    pub outcome: Outcome,
    /// With [`Exchange::refresh_in_background`]: the refresh of the stale
    /// entry that answered, for the caller to run in the background
    /// ([`Refresh::run`]); dropping it skips the refresh.
    pub refresh: Option<Refresh<ReqB, F>>,
}

impl<ResB, ReqB, F> fmt::Debug for Served<ResB, ReqB, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Served")
            .field("status", &self.response.status())
            .field("outcome", &self.outcome)
            .field("refresh", &self.refresh.is_some())
            .finish()
    }
}

/// What serving a cacheable request came to.
enum Step<ResB, ReqB, F> {
    Done(Answer<ResB>),
    /// A stored entry answered (stale, or fresh but due for an early
    /// refresh); the request's body and origin are left for a background
    /// refresh of the entry stored at `u64` (ms).
    Refresh(Answer<ResB>, ReqB, F, u64),
}

impl Cache {
    /// Serves one request through the cache: [`begin`](Cache::begin), then
    /// [`Exchange::serve`] (a stale entry is refreshed before it answers).
    ///
    /// `origin` is called at most once, with the request to forward (its
    /// conditional headers removed, and `HEAD` turned into `GET` so that the
    /// response can be stored), when the cache cannot answer by itself. Its
    /// error is returned unchanged; store failures never become errors.
    pub async fn serve<ReqB, ResB, E, F, Fut>(
        &self,
        policy: &CachePolicy,
        route: &RouteMatch,
        req: Request<ReqB>,
        origin: F,
    ) -> Result<Response<CacheBody<ResB>>, E>
    where
        F: FnOnce(Request<ReqB>) -> Fut,
        Fut: Future<Output = Result<Response<ResB>, E>>,
        ResB: Body<Data = Bytes>,
        ResB::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let missed = match self.begin(policy, &parts) {
            super::Begun::Ready(hit) => return Ok(hit.response()),
            super::Begun::Missed(missed) => missed,
        };
        let served = missed.exchange(parts).with_route(route.clone()).serve(body, origin).await?;
        Ok(served.response)
    }
}

impl Exchange {
    /// Serves the request: from the store, or from `origin`, called at most
    /// once with the request to forward (its conditional headers removed,
    /// and `HEAD` turned into `GET` so that the response can be stored).
    /// `origin`'s error is returned unchanged; store failures never become
    /// errors. Runs in a `DEBUG` span `http_cache` and counts the request by
    /// outcome (see [`crate::metrics`]).
    ///
    /// # Concurrent requests for the same key
    ///
    /// Only one request per key goes to the origin at a time (per `Cache`);
    /// the others wait up to the policy's coalescing timeout and get its
    /// response, marked `collapsed`. If the leading request is dropped
    /// before it finishes, a waiting one takes over. If the response cannot
    /// be stored, the waiting requests go to the origin themselves.
    pub async fn serve<ReqB, ResB, E, F, Fut>(self, body: ReqB, origin: F) -> Result<Served<ResB, ReqB, F>, E>
    where
        F: FnOnce(Request<ReqB>) -> Fut,
        Fut: Future<Output = Result<Response<ResB>, E>>,
        ResB: Body<Data = Bytes>,
        ResB::Error: Into<BoxError>,
    {
        let policy = Arc::clone(&self.policy);
        let span = tracing::debug_span!(
            "http_cache",
            route = policy.metrics.label(),
            key = tracing::field::Empty,
            outcome = tracing::field::Empty
        );
        if !matches!(self.class, Class::Pass(_)) {
            self.record_key(&span);
        }
        let served = self.serve_class(body, origin).instrument(span.clone()).await;
        let outcome = served.as_ref().map_or(Outcome::Error, |served| served.outcome);
        policy.metrics.request(outcome);
        span.record("outcome", outcome.as_str());
        served
    }

    async fn serve_class<ReqB, ResB, E, F>(self, body: ReqB, origin: F) -> Result<Served<ResB, ReqB, F>, E>
    where
        F: Origin<ReqB, ResB, E>,
        ResB: OriginBody,
    {
        let cache = self.cache.clone();
        let answer = match self.class {
            Class::Pass(fwd) => {
                let response = origin(Request::from_parts(self.parts, body)).await?;
                let keyed = if fwd == Fwd::Bypass { &self.policy.keyed_headers[..] } else { &[] };
                return Ok(served(cache.pass(response, Status::forward(fwd), keyed), None));
            }
            Class::Unsafe => return Ok(served(cache.serve_unsafe(&self, body, origin).await?, None)),
            Class::StoreOnly => {
                let miss = Miss::new(Fwd::Bypass, cache.stamp().await);
                cache.fetch(&self, None, body, origin, miss).await?
            }
            Class::Cacheable => match cache.serve_cacheable(&self, body, origin).await? {
                Step::Done(answer) => answer,
                Step::Refresh((mut response, outcome), body, origin, stored_at_ms) => {
                    cache.debug_key(&mut response, &self.key);
                    let refresh = cache.refresh_job(self, body, origin, stored_at_ms);
                    return Ok(served((response, outcome), refresh));
                }
            },
        };
        let (mut response, outcome) = answer;
        cache.debug_key(&mut response, &self.key);
        Ok(served((response, outcome), None))
    }
}

fn served<ResB, ReqB, F>((response, outcome): Answer<ResB>, refresh: Option<Refresh<ReqB, F>>) -> Served<ResB, ReqB, F> {
    Served {
        response,
        outcome,
        refresh,
    }
}

impl Cache {
    /// Steps 3 to 7 for a request answered from the cache when it can:
    /// lookup, stale answers, coalescing, the fetch.
    async fn serve_cacheable<ReqB, ResB, E, F>(&self, ex: &Exchange, body: ReqB, origin: F) -> Result<Step<ResB, ReqB, F>, E>
    where
        F: Origin<ReqB, ResB, E>,
        ResB: OriginBody,
    {
        let miss = match self.lookup(ex).await {
            Ok((entry, now)) => {
                let answer = self.respond_hit(ex.head(), &entry, now);
                if ex.background_refresh && early_refresh_due(&ex.policy, &entry, now) {
                    return Ok(Step::Refresh(answer, body, origin, entry.stored_at_ms));
                }
                return Ok(Step::Done(answer));
            }
            Err(miss) => miss,
        };
        let now = self.inner.clock.now_ms();
        if ex.background_refresh
            && let Some(entry) = miss.stale_while_revalidate(&ex.policy, now)
        {
            return Ok(Step::Refresh(
                self.respond_hit(ex.head(), entry, now),
                body,
                origin,
                entry.stored_at_ms,
            ));
        }
        if ex.policy.mode == CacheMode::Rfc9111 && RequestDirectives::of(&ex.parts).is_some_and(|d| d.only_if_cached) {
            // RFC 9111 §5.2.1.7: nothing stored will do, and the origin must
            // not be asked.
            return Ok(Step::Done(self.respond_gateway_timeout(ex)));
        }
        if !ex.policy.coalesce || self.inner.hit_for_miss.is_marked(ex.key.as_str(), now) {
            return self.fetch(ex, None, body, origin, miss).await.map(Step::Done);
        }
        self.coalesced(ex, body, origin, miss, now).await.map(Step::Done)
    }

    /// A miss that coalesces with the other requests for its key: leads
    /// the fetch, or waits for the leader's response.
    async fn coalesced<ReqB, ResB, E, F>(&self, ex: &Exchange, body: ReqB, origin: F, mut miss: Miss, now: u64) -> Result<Answer<ResB>, E>
    where
        F: Origin<ReqB, ResB, E>,
        ResB: OriginBody,
    {
        // Another request refreshing a stale entry that may be served stale
        // meanwhile: answer with it at once (callers that refresh inline,
        // such as actix, make only the request that started the refresh
        // wait for it).
        let stale = miss.stale_while_revalidate(&ex.policy, now).cloned();
        let (turn, looked) = self
            .inner
            .coalescer
            .lead_or_wait(ex.key.as_str(), ex.policy.coalesce_timeout, stale.is_none(), || self.lookup(ex))
            .await;
        if let Some(again) = looked {
            miss.looked_again(again);
        }
        match (turn, stale) {
            (Turn::Lead(leader), _) => self.lead(ex, leader, body, origin, miss).await,
            (Turn::Found((entry, now)), _) => Ok(self.respond_hit(ex.head(), &entry, now)),
            (Turn::Busy, Some(entry)) => Ok(self.respond_hit(ex.head(), &entry, self.inner.clock.now_ms())),
            // The leader's response may vary on headers this request does
            // not share.
            (Turn::Shared(entry), _) if entry.vary_matches(&ex.parts.headers) => Ok(self.respond_collapsed(ex, &entry, miss.fwd)),
            (Turn::Shared(_), _) => self.fetch(ex, None, body, origin, miss.with_fwd(Fwd::VaryMiss)).await,
            (Turn::Alone | Turn::Busy, _) => self.fetch(ex, None, body, origin, miss).await,
        }
    }

    /// The fetch of the request leading its key's coalescing in this
    /// process: after another look at the store (a leader that finished
    /// just before may have stored the response), and, across instances,
    /// after taking the store's lease or waiting for its holder's response.
    async fn lead<ReqB, ResB, E, F>(
        &self,
        ex: &Exchange,
        leader: coalesce::Leader,
        body: ReqB,
        origin: F,
        mut miss: Miss,
    ) -> Result<Answer<ResB>, E>
    where
        F: Origin<ReqB, ResB, E>,
        ResB: OriginBody,
    {
        // Unless the store just failed: a request waits on a failing store
        // once, not twice, and asks it for no lease.
        if !miss.stamp.is_lost() {
            match self.lookup(ex).await {
                Ok((entry, now)) => {
                    leader.finish(coalesce::Outcome::Entry(Arc::clone(&entry)));
                    return Ok(self.respond_hit(ex.head(), &entry, now));
                }
                Err(again) => miss.looked_again(again),
            }
        }
        if !ex.policy.coalesce_across_instances || miss.stamp.is_lost() {
            return self.fetch(ex, Some(leader), body, origin, miss).await;
        }
        match self.lease_or_wait(ex).await {
            Across::Entry(entry) if entry.vary_matches(&ex.parts.headers) => {
                leader.finish(coalesce::Outcome::Entry(Arc::clone(&entry)));
                Ok(self.respond_collapsed(ex, &entry, miss.fwd))
            }
            Across::Entry(_) => self.fetch(ex, Some(leader), body, origin, miss.with_fwd(Fwd::VaryMiss)).await,
            Across::Fetch(lease) => {
                let answer = self.fetch(ex, Some(leader), body, origin, miss).await;
                if let Some(lease) = lease {
                    lease.release().await;
                }
                answer
            }
        }
    }

    /// A fresh entry for the request and the time it was checked at, or why
    /// the origin must be asked (with the stale entry, if there is one).
    pub(crate) async fn lookup(&self, ex: &Exchange) -> Result<(Arc<CachedEntry>, u64), Miss> {
        let (entry, mut stamp) = match self.inner.store.get_stamped(ex.key.as_str()).await {
            Ok((Some(entry), stamp)) => (entry, stamp),
            Ok((None, stamp)) => return Err(Miss::new(Fwd::UriMiss, stamp)),
            Err(err) => {
                self.log_store_error("get", &err);
                return Err(Miss::new(Fwd::UriMiss, Stamp::LOST));
            }
        };
        let now = self.inner.clock.now_ms();
        let usable = usable(&entry, &ex.parts, now, &ex.policy);
        if usable.is_err() {
            stamp = self.stamp_for_fetch(stamp).await;
        }
        match usable {
            Ok(()) => Ok((entry, now)),
            // Kept for stale serving and revalidation.
            Err(fwd @ (Fwd::Stale | Fwd::Request)) => Err(Miss {
                fwd,
                stale: Some(entry),
                stamp,
            }),
            Err(fwd) => Err(Miss::new(fwd, stamp)),
        }
    }

    /// The stamp a fetch after a lookup gets: the lookup's, or, when the
    /// lookup found an entry without a round trip (an in-process copy, no
    /// stamp), the store's now.
    pub(crate) async fn stamp_for_fetch(&self, looked_up: Stamp) -> Stamp {
        if looked_up == Stamp::NONE { self.stamp().await } else { looked_up }
    }

    /// Where a fetch that begins now stands in the store's order of
    /// invalidations ([`Stamp::LOST`] when the store cannot tell).
    pub(crate) async fn stamp(&self) -> Stamp {
        match self.inner.store.stamp().await {
            Ok(stamp) => stamp,
            Err(err) => {
                self.log_store_error("stamp", &err);
                Stamp::LOST
            }
        }
    }

    /// Adds `key="…"` to `Cache-Status` when the cache was built with
    /// [`CacheBuilder::debug_keys`](super::CacheBuilder::debug_keys).
    pub(crate) fn debug_key<B>(&self, response: &mut Response<B>, key: &CacheKey) {
        if !self.inner.debug_keys {
            return;
        }
        let Some(status) = response.headers().get(crate::cache_status::CACHE_STATUS) else {
            return;
        };
        let mut value = String::from_utf8_lossy(status.as_bytes()).into_owned();
        value.push_str("; key=\"");
        for c in key.as_str().chars() {
            match c {
                '"' | '\\' => {
                    value.push('\\');
                    value.push(c);
                }
                ' '..='~' => value.push(c),
                other => {
                    let mut buf = [0; 4];
                    for b in other.encode_utf8(&mut buf).bytes() {
                        value.push_str(&format!("%{b:02X}"));
                    }
                }
            }
        }
        value.push('"');
        if let Ok(value) = http::HeaderValue::try_from(value) {
            response.headers_mut().insert(crate::cache_status::CACHE_STATUS, value);
        }
    }

    /// An unsafe method: passed on; a success or redirect invalidates the
    /// request's URI, the URIs its `Location` and `Content-Location` name
    /// on this origin (RFC 9111 §4.4), and the route's tags.
    async fn serve_unsafe<ReqB, ResB, E, F>(&self, ex: &Exchange, body: ReqB, origin: F) -> Result<Answer<ResB>, E>
    where
        F: Origin<ReqB, ResB, E>,
        ResB: OriginBody,
    {
        let request = Request::from_parts(ex.parts.clone(), body);
        let mut response = origin(request).await?;
        response.extensions_mut().remove::<crate::CacheHints>();
        let routed = response.extensions_mut().remove::<RouteMatch>();
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            let mut tags = self.route_tags(ex, routed.as_ref());
            tags.extend(ex.route.invalidations().iter().cloned().map(Tag::app));
            tags.push(Tag::uri(ex.key.uri()));
            for name in [header::LOCATION, header::CONTENT_LOCATION] {
                if let Some(target) = response.headers().get(name).and_then(|v| same_origin_target(&ex.parts, v)) {
                    let mut parts = ex.parts.clone();
                    parts.uri = target;
                    tags.push(Tag::uri(ex.policy.key.build(&parts).uri()));
                }
            }
            // Runs to its end even if the client goes away (see Invalidator).
            if let Err(err) = self.invalidator().typed_tags(tags).await {
                self.log_store_error("invalidate", &err);
            }
        }
        Ok(self.pass(response, Status::forward(Fwd::Method), &[]))
    }
}

/// The path and query of a `Location` or `Content-Location` value, when it
/// names a resource of the request's own origin (a path, or an absolute URI
/// whose authority is the request's `Host`).
fn same_origin_target(parts: &Parts, value: &http::HeaderValue) -> Option<http::Uri> {
    let uri: http::Uri = value.to_str().ok()?.parse().ok()?;
    if let Some(authority) = uri.authority() {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str))?;
        if !authority.as_str().eq_ignore_ascii_case(host) {
            return None;
        }
    } else if !uri.path().starts_with('/') {
        return None;
    }
    let path_and_query = uri.path_and_query()?.clone();
    http::Uri::builder().path_and_query(path_and_query).build().ok()
}
