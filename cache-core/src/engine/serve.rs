//! The flow of one request (DESIGN.md steps 1–8).

use std::{future::Future, sync::Arc};

use bytes::Bytes;
use http::{Method, Request, Response, header, request::Parts};
use http_body::Body;

use super::{Cache, respond::Head};
use crate::{
    CacheBody, CachePolicy, CachedEntry, RouteMatch,
    cache_status::{Fwd, Status},
    coalesce::{self, Joined, Waited},
    error::BoxError,
    key::CacheKey,
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
    fn new(policy: &'a PolicyInner, route: &'a RouteMatch, parts: Parts, shared: bool) -> Self {
        let key = policy.key.build(&parts);
        Exchange {
            policy,
            route,
            parts,
            key,
            shared,
        }
    }
}

/// How the engine treats a request, before any lookup.
enum Class {
    /// `GET`/`HEAD` served through the cache.
    Cacheable,
    /// `GET`/`HEAD` the cache may store a response for but must not answer
    /// from storage (`Authorization` without per-principal keys).
    StoreOnly,
    /// Passed to the origin untouched.
    Pass(Fwd),
    /// An unsafe method: passed on, then invalidates on success.
    Unsafe,
}

fn classify(parts: &Parts, policy: &PolicyInner) -> Class {
    let m = &parts.method;
    if *m == Method::POST || *m == Method::PUT || *m == Method::PATCH || *m == Method::DELETE {
        return Class::Unsafe;
    }
    if *m != Method::GET && *m != Method::HEAD {
        return Class::Pass(Fwd::Method);
    }
    let h = &parts.headers;
    let conditional_or_range = [header::RANGE, header::IF_MATCH, header::IF_UNMODIFIED_SINCE, header::IF_RANGE];
    if conditional_or_range.iter().any(|name| h.contains_key(name)) {
        return Class::Pass(Fwd::Bypass);
    }
    if policy.key.has_repeated_tenant_header(h) {
        // Which value would the application read? Do not guess.
        return Class::Pass(Fwd::Bypass);
    }
    if h.contains_key(header::AUTHORIZATION) && !policy.key.by_principal {
        return Class::StoreOnly;
    }
    Class::Cacheable
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
        let policy = policy.inner();
        let (parts, body) = req.into_parts();
        match classify(&parts, policy) {
            Class::Pass(fwd) => {
                let response = origin(Request::from_parts(parts, body)).await?;
                let keyed = if fwd == Fwd::Bypass { &policy.keyed_headers[..] } else { &[] };
                Ok(self.pass(response, Status::forward(fwd), keyed))
            }
            Class::Unsafe => self.serve_unsafe(policy, route, parts, body, origin).await,
            Class::StoreOnly => {
                let ex = Exchange::new(policy, route, parts, false);
                self.fetch(&ex, None, body, origin, Fwd::Bypass).await
            }
            Class::Cacheable => {
                let ex = Exchange::new(policy, route, parts, true);
                self.serve_cacheable(&ex, body, origin).await
            }
        }
    }

    async fn serve_cacheable<ReqB, ResB, E, F, Fut>(&self, ex: &Exchange<'_>, body: ReqB, origin: F) -> Result<Response<CacheBody<ResB>>, E>
    where
        F: FnOnce(Request<ReqB>) -> Fut,
        Fut: Future<Output = Result<Response<ResB>, E>>,
        ResB: Body<Data = Bytes>,
        ResB::Error: Into<BoxError>,
    {
        let fwd = match self.lookup(ex).await {
            Ok((entry, now)) => return Ok(self.respond_hit(ex.head(), &entry, now)),
            Err(fwd) => fwd,
        };
        let now = self.inner.clock.now_ms();
        if !ex.policy.coalesce || self.inner.hit_for_miss.is_marked(ex.key.as_str(), now) {
            return self.fetch(ex, None, body, origin, fwd).await;
        }
        loop {
            match self.inner.coalescer.join(ex.key.as_str()) {
                Joined::Leader(leader) => {
                    // Another leader may have stored the entry between our
                    // lookup and our joining: look again before fetching.
                    if let Ok((entry, now)) = self.lookup(ex).await {
                        leader.finish(coalesce::Outcome::Entry(Arc::clone(&entry)));
                        return Ok(self.respond_hit(ex.head(), &entry, now));
                    }
                    return self.fetch(ex, Some(leader), body, origin, fwd).await;
                }
                Joined::Waiter(rx) => match coalesce::wait(rx, ex.policy.coalesce_timeout).await {
                    // The leader's response may vary on headers this
                    // request does not share.
                    Waited::Entry(entry) if entry.vary_matches(&ex.parts.headers) => {
                        return Ok(self.respond_collapsed(ex, &entry, fwd));
                    }
                    Waited::Entry(_) => return self.fetch(ex, None, body, origin, Fwd::VaryMiss).await,
                    Waited::Uncacheable | Waited::TimedOut => return self.fetch(ex, None, body, origin, fwd).await,
                    Waited::Abandoned => {
                        if let Ok((entry, now)) = self.lookup(ex).await {
                            return Ok(self.respond_hit(ex.head(), &entry, now));
                        }
                    }
                },
            }
        }
    }

    /// A fresh entry for the request and the time it was checked at, or why
    /// the origin must be asked.
    async fn lookup(&self, ex: &Exchange<'_>) -> Result<(Arc<CachedEntry>, u64), Fwd> {
        let entry = match self.inner.store.get(ex.key.as_str()).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Err(Fwd::UriMiss),
            Err(err) => {
                self.log_store_error("get", &err);
                return Err(Fwd::UriMiss);
            }
        };
        let now = self.inner.clock.now_ms();
        usable(&entry, &ex.parts, now)?;
        Ok((entry, now))
    }

    /// Answers a request from the store without waiting, when it can: the
    /// request is served from the cache, the store holds a fresh entry for
    /// it in this process, and the entry matches. Adapters try this first
    /// and call [`serve`](Cache::serve) when it returns `None`, so that a hit
    /// on an in-process store costs no asynchronous work.
    pub fn serve_now<B>(&self, policy: &CachePolicy, parts: &Parts) -> Option<Response<CacheBody<B>>> {
        let policy = policy.inner();
        if !matches!(classify(parts, policy), Class::Cacheable) {
            return None;
        }
        let key = policy.key.build(parts);
        let entry = self.inner.store.get_now(key.as_str())?;
        let now = self.inner.clock.now_ms();
        usable(&entry, parts, now).ok()?;
        Some(self.respond_hit(Head { parts, policy }, &entry, now))
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
            tags.push(uri_tag(ex.key.uri()));
            if let Err(err) = self.invalidator().tags(tags).await {
                self.log_store_error("invalidate", &err);
            }
        }
        Ok(self.pass(response, Status::forward(Fwd::Method), &[]))
    }
}

/// Whether a stored entry may answer the request at `now`.
fn usable(entry: &CachedEntry, parts: &Parts, now: u64) -> Result<(), Fwd> {
    if !entry.vary_matches(&parts.headers) {
        return Err(Fwd::VaryMiss);
    }
    if !entry.is_fresh(now) {
        return Err(Fwd::Stale);
    }
    Ok(())
}

/// The tag every entry carries for its URI, so that all variants of a URI
/// can be invalidated together.
pub(crate) fn uri_tag(uri: &str) -> String {
    let mut tag = String::with_capacity(uri.len() + 5);
    tag.push_str("@uri:");
    tag.push_str(uri);
    tag
}
