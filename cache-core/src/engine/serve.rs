//! The flow of one request (DESIGN.md steps 1–8).

use std::{future::Future, sync::Arc};

use bytes::Bytes;
use http::{Request, Response, header, request::Parts};
use http_body::Body;
use tracing::{Instrument, Span, field};

pub(crate) use super::miss::Miss;
use super::{
    Cache,
    classify::{Class, classify},
    lease::Across,
    refresh::Refresh,
    rfc::{self, RequestDirectives},
};
use crate::{
    CacheBody, CacheMode, CachePolicy, CachedEntry, RouteMatch, Stamp,
    cache_status::{Fwd, Status},
    coalesce::{self, Joined, Waited},
    error::BoxError,
    key::CacheKey,
    metrics::{KeyHash, Outcome},
    policy::PolicyInner,
};

/// Everything the engine knows about one request while serving it.
pub(crate) struct Exchange<'a> {
    pub(crate) policy: &'a PolicyInner,
    pub(crate) route: &'a RouteMatch,
    /// The request head as the client sent it.
    pub(crate) parts: Parts,
    pub(crate) key: CacheKey,
    /// Whether the responses to this request can be shared with other
    /// requests for the key (not so for a request with credentials the key
    /// does not include).
    pub(crate) shared: bool,
}

impl<'a> Exchange<'a> {
    /// The exchange of a request, its key recorded (hashed) in the current
    /// span.
    pub(crate) fn new(policy: &'a PolicyInner, route: &'a RouteMatch, parts: Parts, shared: bool) -> Self {
        let key = policy.key.build(&parts);
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            record_key(&Span::current(), &key);
        }
        Exchange {
            policy,
            route,
            parts,
            key,
            shared,
        }
    }
}

impl Cache {
    /// Serves one request through the cache.
    ///
    /// `origin` is called at most once, with the request to forward (its
    /// conditional headers removed, and `HEAD` turned into `GET` so that the
    /// response can be stored), when the cache cannot answer by itself. Its
    /// error is returned unchanged; store failures never become errors.
    ///
    /// # Concurrent calls on the same key
    ///
    /// Only one call per key goes to the origin at a time (per `Cache`);
    /// the others wait up to the policy's coalescing timeout and get its
    /// response, marked `collapsed`. If the leading call is dropped before it
    /// finishes, a waiting call takes over. If the response cannot be stored,
    /// the waiting calls go to the origin themselves.
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
        self.serve_step(policy, route, req, origin, false)
            .await
            .map(|(response, _)| response)
    }

    /// [`serve`](Cache::serve), and stale-while-revalidate in the
    /// background: when the store holds a stale entry inside the policy's
    /// (or the response's) `stale-while-revalidate` window, the entry is
    /// answered at once (`X-Cache: STALE`, a negative `ttl` in
    /// `Cache-Status`) and a [`Refresh`] is returned: the caller runs
    /// [`Refresh::run`] in the background (`tokio::spawn`, or a local task),
    /// which fetches from `origin` and stores the response. One refresh per
    /// key runs at a time, and at most [`MAX_REFRESHES`](crate::MAX_REFRESHES)
    /// across keys; past that the stale entry is still answered and a
    /// later request refreshes it.
    ///
    /// [`serve`](Cache::serve) instead refreshes such an entry before
    /// answering the request that found it stale, while concurrent requests
    /// for the key answer with the stale entry at once.
    pub async fn serve_with_refresh<ReqB, ResB, E, F, Fut>(
        &self,
        policy: &CachePolicy,
        route: &RouteMatch,
        req: Request<ReqB>,
        origin: F,
    ) -> Result<(Response<CacheBody<ResB>>, Option<Refresh<ReqB, F>>), E>
    where
        F: FnOnce(Request<ReqB>) -> Fut,
        Fut: Future<Output = Result<Response<ResB>, E>>,
        ResB: Body<Data = Bytes>,
        ResB::Error: Into<BoxError>,
    {
        self.serve_step(policy, route, req, origin, true).await
    }

    /// Serves one request in its span, and counts it by outcome.
    async fn serve_step<ReqB, ResB, E, F, Fut>(
        &self,
        policy: &CachePolicy,
        route: &RouteMatch,
        req: Request<ReqB>,
        origin: F,
        refresh: bool,
    ) -> Result<(Response<CacheBody<ResB>>, Option<Refresh<ReqB, F>>), E>
    where
        F: FnOnce(Request<ReqB>) -> Fut,
        Fut: Future<Output = Result<Response<ResB>, E>>,
        ResB: Body<Data = Bytes>,
        ResB::Error: Into<BoxError>,
    {
        let metrics = &policy.inner().metrics;
        let span = tracing::debug_span!("http_cache", route = metrics.label(), key = field::Empty, outcome = field::Empty);
        let served = self
            .serve_classified(policy, route, req, origin, refresh)
            .instrument(span.clone())
            .await;
        let outcome = match &served {
            Ok((_, outcome, _)) => *outcome,
            Err(_) => Outcome::Error,
        };
        metrics.request(outcome);
        span.record("outcome", outcome.as_str());
        served.map(|(response, _, refresh)| (response, refresh))
    }

    /// Serves one request; says how (from the response's cache headers,
    /// before the debug key is added to them).
    async fn serve_classified<ReqB, ResB, E, F, Fut>(
        &self,
        policy: &CachePolicy,
        route: &RouteMatch,
        req: Request<ReqB>,
        origin: F,
        refresh: bool,
    ) -> Result<(Response<CacheBody<ResB>>, Outcome, Option<Refresh<ReqB, F>>), E>
    where
        F: FnOnce(Request<ReqB>) -> Fut,
        Fut: Future<Output = Result<Response<ResB>, E>>,
        ResB: Body<Data = Bytes>,
        ResB::Error: Into<BoxError>,
    {
        let inner = policy.inner();
        let (parts, body) = req.into_parts();
        let response = match classify(&parts, inner) {
            Class::Pass(fwd) => {
                let response = origin(Request::from_parts(parts, body)).await?;
                let keyed = if fwd == Fwd::Bypass { &inner.keyed_headers[..] } else { &[] };
                self.pass(response, Status::forward(fwd), keyed)
            }
            Class::Unsafe => self.serve_unsafe(inner, route, parts, body, origin).await?,
            Class::StoreOnly => {
                let ex = Exchange::new(inner, route, parts, false);
                let miss = Miss::new(Fwd::Bypass, self.stamp().await);
                let mut response = self.fetch(&ex, None, body, origin, miss).await?;
                let outcome = Outcome::of(response.headers());
                self.debug_key(&mut response, &ex.key);
                return Ok((response, outcome, None));
            }
            Class::Cacheable => {
                let ex = Exchange::new(inner, route, parts, true);
                return match self.serve_cacheable(&ex, body, origin, refresh).await? {
                    Served::Response(mut response) => {
                        let outcome = Outcome::of(response.headers());
                        self.debug_key(&mut response, &ex.key);
                        Ok((response, outcome, None))
                    }
                    Served::Refresh(mut response, body, origin, stored_at_ms) => {
                        let outcome = Outcome::of(response.headers());
                        self.debug_key(&mut response, &ex.key);
                        let refresh = self.refresh_job(policy, route, ex.parts, body, origin, stored_at_ms);
                        Ok((response, outcome, refresh))
                    }
                };
            }
        };
        Ok((response, Outcome::Bypass, None))
    }

    async fn serve_cacheable<ReqB, ResB, E, F, Fut>(
        &self,
        ex: &Exchange<'_>,
        body: ReqB,
        origin: F,
        refresh: bool,
    ) -> Result<Served<ResB, ReqB, F>, E>
    where
        F: FnOnce(Request<ReqB>) -> Fut,
        Fut: Future<Output = Result<Response<ResB>, E>>,
        ResB: Body<Data = Bytes>,
        ResB::Error: Into<BoxError>,
    {
        let mut miss = match self.lookup(ex).await {
            Ok((entry, now)) => {
                let response = self.respond_hit(ex.head(), &entry, now);
                if refresh && early_refresh_due(ex.policy, &entry, now) {
                    return Ok(Served::Refresh(response, body, origin, entry.stored_at_ms));
                }
                return Ok(Served::Response(response));
            }
            Err(miss) => miss,
        };
        let now = self.inner.clock.now_ms();
        if refresh && let Some(entry) = miss.stale_while_revalidate(ex.policy, now) {
            return Ok(Served::Refresh(
                self.respond_hit(ex.head(), entry, now),
                body,
                origin,
                entry.stored_at_ms,
            ));
        }
        if ex.policy.mode == CacheMode::Rfc9111 && RequestDirectives::of(&ex.parts).is_some_and(|d| d.only_if_cached) {
            // RFC 9111 §5.2.1.7: nothing stored will do, and the origin must
            // not be asked.
            return Ok(Served::Response(self.respond_gateway_timeout(ex)));
        }
        if !ex.policy.coalesce || self.inner.hit_for_miss.is_marked(ex.key.as_str(), now) {
            return self.fetch(ex, None, body, origin, miss).await.map(Served::Response);
        }
        // Waits for other requests' fetches, in all, end here: a leader whose
        // response was dropped (an invalidation overlapped it) hands over to
        // one waiter, whose fetch the others wait for in the time left.
        let deadline = tokio::time::Instant::now() + ex.policy.coalesce_timeout;
        loop {
            match self.inner.coalescer.join(ex.key.as_str()) {
                Joined::Leader(leader) => {
                    // Another leader may have stored the entry between our
                    // lookup and our joining: look again before fetching —
                    // unless the store just failed, so that a request waits
                    // on a failing store once, not twice.
                    let miss = if miss.stamp.is_lost() {
                        miss
                    } else {
                        match self.lookup(ex).await {
                            Ok((entry, now)) => {
                                leader.finish(coalesce::Outcome::Entry(Arc::clone(&entry)));
                                return Ok(Served::Response(self.respond_hit(ex.head(), &entry, now)));
                            }
                            Err(again) => miss.looked_again(again),
                        }
                    };
                    // A failing store is not asked for a lease either.
                    if !ex.policy.coalesce_across_instances || miss.stamp.is_lost() {
                        return self.fetch(ex, Some(leader), body, origin, miss).await.map(Served::Response);
                    }
                    return match self.lease_or_wait(ex).await {
                        Across::Entry(entry) if entry.vary_matches(&ex.parts.headers) => {
                            leader.finish(coalesce::Outcome::Entry(Arc::clone(&entry)));
                            Ok(Served::Response(self.respond_collapsed(ex, &entry, miss.fwd)))
                        }
                        Across::Entry(_) => self
                            .fetch(ex, Some(leader), body, origin, miss.with_fwd(Fwd::VaryMiss))
                            .await
                            .map(Served::Response),
                        Across::Fetch(lease) => {
                            let response = self.fetch(ex, Some(leader), body, origin, miss).await;
                            if let Some(lease) = lease {
                                lease.release().await;
                            }
                            response.map(Served::Response)
                        }
                    };
                }
                // Another request is refreshing a stale entry that may be
                // served stale meanwhile: answer with it at once (callers
                // that refresh inline, such as actix, make only the request
                // that started the refresh wait for it).
                Joined::Waiter(_) if let Some(entry) = miss.stale_while_revalidate(ex.policy, now) => {
                    return Ok(Served::Response(self.respond_hit(ex.head(), entry, self.inner.clock.now_ms())));
                }
                Joined::Waiter(rx) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    match coalesce::wait(rx, left).await {
                        // The leader's response may vary on headers this
                        // request does not share.
                        Waited::Entry(entry) if entry.vary_matches(&ex.parts.headers) => {
                            return Ok(Served::Response(self.respond_collapsed(ex, &entry, miss.fwd)));
                        }
                        Waited::Entry(_) => {
                            return self
                                .fetch(ex, None, body, origin, miss.with_fwd(Fwd::VaryMiss))
                                .await
                                .map(Served::Response);
                        }
                        Waited::Uncacheable | Waited::TimedOut => {
                            return self.fetch(ex, None, body, origin, miss).await.map(Served::Response);
                        }
                        Waited::Abandoned => {
                            match self.lookup(ex).await {
                                Ok((entry, now)) => return Ok(Served::Response(self.respond_hit(ex.head(), &entry, now))),
                                Err(again) => miss = miss.looked_again(again),
                            }
                            if tokio::time::Instant::now() >= deadline {
                                return self.fetch(ex, None, body, origin, miss).await.map(Served::Response);
                            }
                        }
                    }
                }
            }
        }
    }

    /// A fresh entry for the request and the time it was checked at, or why
    /// the origin must be asked (with the stale entry, if there is one).
    pub(crate) async fn lookup(&self, ex: &Exchange<'_>) -> Result<(Arc<CachedEntry>, u64), Miss> {
        let (entry, mut stamp) = match self.inner.store.get_stamped(ex.key.as_str()).await {
            Ok((Some(entry), stamp)) => (entry, stamp),
            Ok((None, stamp)) => return Err(Miss::new(Fwd::UriMiss, stamp)),
            Err(err) => {
                self.log_store_error("get", &err);
                return Err(Miss::new(Fwd::UriMiss, Stamp::LOST));
            }
        };
        let now = self.inner.clock.now_ms();
        let usable = usable(&entry, &ex.parts, now, ex.policy);
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

    async fn serve_unsafe<ReqB, ResB, E, F, Fut>(
        &self,
        policy: &PolicyInner,
        route: &RouteMatch,
        parts: Parts,
        body: ReqB,
        origin: F,
    ) -> Result<Response<CacheBody<ResB>>, E>
    where
        F: FnOnce(Request<ReqB>) -> Fut,
        Fut: Future<Output = Result<Response<ResB>, E>>,
        ResB: Body<Data = Bytes>,
        ResB::Error: Into<BoxError>,
    {
        let ex = Exchange::new(policy, route, parts, true);
        let request = Request::from_parts(ex.parts.clone(), body);
        let mut response = origin(request).await?;
        response.extensions_mut().remove::<crate::CacheHints>();
        let routed = response.extensions_mut().remove::<RouteMatch>();
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            let mut tags = self.route_tags(&ex, routed.as_ref());
            tags.extend(route.invalidations().iter().cloned());
            tags.push(uri_tag(ex.key.uri()));
            // RFC 9111 §4.4: the URIs the response names, on this origin.
            for name in [header::LOCATION, header::CONTENT_LOCATION] {
                if let Some(target) = response.headers().get(name).and_then(|v| same_origin_target(&ex.parts, v)) {
                    let mut parts = ex.parts.clone();
                    parts.uri = target;
                    tags.push(uri_tag(policy.key.build(&parts).uri()));
                }
            }
            // Runs to its end even if the client goes away (see Invalidator).
            if let Err(err) = self.invalidator().tags(tags).await {
                self.log_store_error("invalidate", &err);
            }
        }
        Ok(self.pass(response, Status::forward(Fwd::Method), &[]))
    }
}

/// What serving a cacheable request came to.
pub(crate) enum Served<ResB, ReqB, F> {
    Response(Response<CacheBody<ResB>>),
    /// A stored entry answered (stale, or fresh but due for an early
    /// refresh); the request's body and origin are left for a background
    /// refresh of the entry stored at `u64` (ms).
    Refresh(Response<CacheBody<ResB>>, ReqB, F, u64),
}

/// Whether a stored entry may answer the request at `now`: it matches the
/// request's varied headers and is fresh, or, in RFC 9111 mode, satisfies
/// the request's own directives (which may refuse a fresh entry or accept a
/// stale one).
pub(crate) fn usable(entry: &CachedEntry, parts: &Parts, now: u64, policy: &PolicyInner) -> Result<(), Fwd> {
    if !entry.vary_matches(&parts.headers) {
        return Err(Fwd::VaryMiss);
    }
    if policy.mode == CacheMode::Rfc9111
        && let Some(directives) = RequestDirectives::of(parts)
    {
        return match entry.is_fresh(now) {
            true if directives.accepts_fresh(entry, now) => Ok(()),
            true => Err(Fwd::Request),
            false if directives.accepts_stale(policy, entry, now) => Ok(()),
            false if directives.no_cache => Err(Fwd::Request),
            false => Err(Fwd::Stale),
        };
    }
    if !entry.is_fresh(now) {
        return Err(Fwd::Stale);
    }
    Ok(())
}

/// Beyond this many times the expected XFetch gap, an early refresh is too
/// unlikely (e^-10) to consider.
const EARLY_REFRESH_WINDOW: f64 = 10.0;

/// The XFetch gap of an entry: its fetch time times β, in ms.
fn early_refresh_gap_ms(policy: &PolicyInner, entry: &CachedEntry) -> f64 {
    entry.fetch_ms.max(1) as f64 * policy.early_refresh_beta
}

/// Whether a fresh entry is close enough to expiry that an early refresh
/// may be due.
pub(crate) fn in_early_refresh_window(policy: &PolicyInner, entry: &CachedEntry, now: u64) -> bool {
    policy.early_refresh_beta > 0.0
        && (entry.fresh_until_ms().saturating_sub(now) as f64) < EARLY_REFRESH_WINDOW * early_refresh_gap_ms(policy, entry)
}

/// XFetch: whether this hit on a fresh entry should start a refresh,
/// `now − gap · ln(rand) ≥ expiry`.
fn early_refresh_due(policy: &PolicyInner, entry: &CachedEntry, now: u64) -> bool {
    if !in_early_refresh_window(policy, entry, now) {
        return false;
    }
    let draw = -(1.0 - fastrand::f64()).ln();
    draw * early_refresh_gap_ms(policy, entry) >= entry.fresh_until_ms().saturating_sub(now) as f64
}

/// Whether the policy lets the entry answer once stale (stale-while-
/// revalidate, stale-if-error): in RFC 9111 mode, not when the response said
/// `must-revalidate`, `proxy-revalidate`, `s-maxage` or `no-cache`.
pub(crate) fn may_serve_stale(policy: &PolicyInner, entry: &CachedEntry) -> bool {
    policy.mode != CacheMode::Rfc9111 || !rfc::forbids_stale(policy, entry)
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

/// Records a short hash of the request's key in its span, when the span is
/// enabled (never the key: it can name the tenant).
pub(crate) fn record_key(span: &Span, key: &CacheKey) {
    if !span.is_disabled() {
        span.record("key", field::display(KeyHash(key)));
    }
}

/// The tag every entry carries for its URI, so that all variants of a URI
/// can be invalidated together.
pub(crate) fn uri_tag(uri: &str) -> String {
    let mut tag = String::with_capacity(uri.len() + 5);
    tag.push_str("@uri:");
    tag.push_str(uri);
    tag
}
