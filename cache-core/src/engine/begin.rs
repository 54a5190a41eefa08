//! The first step of serving a request: classify it, key it, and answer a
//! fresh in-process hit at once.

use std::sync::Arc;

use http::{HeaderMap, Response, request::Parts};
use tracing::field;

use super::{
    Cache,
    classify::{Class, classify},
    exchange::{Exchange, Head, record_key},
    freshness::{in_early_refresh_window, usable},
    hit_headers::HitHead,
    respond::response,
};
use crate::{CacheBody, CachePolicy, CachedEntry, cache_status::Status, key::CacheKey};

/// What [`Cache::begin`] made of a request.
#[derive(Debug)]
pub enum Begun<'a> {
    /// A fresh entry in this process answers it: no asynchronous work.
    Ready(Ready<'a>),
    /// The rest is asynchronous: [`Missed::exchange`], then
    /// [`Exchange::serve`].
    Missed(Missed),
}

/// A hit answered without waiting (see [`Cache::begin`]); already counted
/// in the metrics, so an adapter answers with it once.
pub struct Ready<'a> {
    cache: &'a Cache,
    policy: &'a CachePolicy,
    parts: &'a Parts,
    entry: Arc<CachedEntry>,
    now: u64,
    key: CacheKey,
}

impl std::fmt::Debug for Ready<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready").field("uri", &self.parts.uri).finish_non_exhaustive()
    }
}

/// A request [`Cache::begin`] could not answer at once: how it is served
/// and its key, computed once. [`exchange`](Missed::exchange) takes the
/// request head back for the second step.
#[must_use = "a missed request is served by Missed::exchange, then Exchange::serve"]
pub struct Missed {
    cache: Cache,
    policy: CachePolicy,
    class: Class,
    key: CacheKey,
    /// The method and target `begin` read, to check the head given back.
    #[cfg(debug_assertions)]
    read: (http::Method, http::Uri),
}

impl std::fmt::Debug for Missed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Missed").finish_non_exhaustive()
    }
}

impl Missed {
    /// The exchange that serves the request whose head `begin` read.
    ///
    /// `parts` must be that head, unchanged: the class and the key were
    /// made from it (debug builds check the method and the target).
    pub fn exchange(self, parts: Parts) -> Exchange {
        #[cfg(debug_assertions)]
        debug_assert!(
            self.read.0 == parts.method && self.read.1 == parts.uri,
            "Missed::exchange takes the head Cache::begin read"
        );
        Exchange::new(self.cache, self.policy, parts, self.class, self.key)
    }
}

impl Cache {
    /// Starts serving a request: classifies its head against `policy` and
    /// builds its key, once. A fresh entry that this process holds (an
    /// in-process store, or a tiered store's L1) answers at once
    /// ([`Begun::Ready`]); anything else needs asynchronous work: the
    /// [`Exchange`] made by [`Missed::exchange`] from the same head, served
    /// with the request's body and the origin ([`Exchange::serve`]).
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use cache_core::{Cache, CachePolicy, MokaStore, adapter::Begun};
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let cache = Cache::new(MokaStore::new());
    /// # let policy = CachePolicy::with_ttl(std::time::Duration::from_secs(60));
    /// let (parts, body) = Request::get("/greeting").body(()).unwrap().into_parts();
    /// let response = match cache.begin(&policy, &parts) {
    ///     Begun::Ready(hit) => hit.response(),
    ///     Begun::Missed(missed) => {
    ///         let origin = |_req: Request<()>| async {
    ///             Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    ///         };
    ///         missed.exchange(parts).serve(body, origin).await.unwrap().response
    ///     }
    /// };
    /// assert_eq!(response.headers()["x-cache"], "MISS");
    /// # }
    /// ```
    pub fn begin<'a>(&'a self, policy: &'a CachePolicy, parts: &'a Parts) -> Begun<'a> {
        let inner = policy.inner();
        let class = classify(parts, inner);
        // A request passed through is never looked up: no key.
        let key = match class {
            Class::Pass(_) => CacheKey::empty(),
            _ => inner.key.build(parts),
        };
        let fresh = match class {
            Class::Cacheable => self.fresh_now(inner, parts, &key),
            _ => None,
        };
        let Some((entry, now)) = fresh else {
            return Begun::Missed(Missed {
                cache: self.clone(),
                policy: policy.clone(),
                class,
                key,
                #[cfg(debug_assertions)]
                read: (parts.method.clone(), parts.uri.clone()),
            });
        };
        // A stale entry a request's `max-stale` accepts answers too.
        let outcome = Status::hit(entry.signed_ttl_secs(now)).outcome();
        inner.metrics.request(outcome);
        let span = tracing::debug_span!(
            "http_cache",
            route = inner.metrics.label(),
            key = field::Empty,
            outcome = outcome.as_str()
        );
        record_key(&span, &key);
        Begun::Ready(Ready {
            cache: self,
            policy,
            parts,
            entry,
            now,
            key,
        })
    }

    /// The fresh entry this process holds for the request, unless an early
    /// refresh may be due (the asynchronous path decides, and can start it).
    fn fresh_now(&self, policy: &crate::policy::PolicyInner, parts: &Parts, key: &CacheKey) -> Option<(Arc<CachedEntry>, u64)> {
        let entry = self.inner.store.get_now(key.as_str())?;
        let now = self.inner.clock.now_ms();
        usable(&entry, parts, now, policy).ok()?;
        (!in_early_refresh_window(policy, &entry, now)).then_some((entry, now))
    }
}

impl Ready<'_> {
    fn head(&self) -> Head<'_> {
        Head {
            parts: self.parts,
            policy: self.policy.inner(),
        }
    }

    /// The response: the stored one with the headers of a hit (`304` when
    /// the request's conditionals allow, no body for `HEAD`).
    pub fn response<B>(&self) -> Response<CacheBody<B>> {
        let (mut response, _) = self.cache.respond_hit(self.head(), &self.entry, self.now);
        self.cache.debug_key(&mut response, &self.key);
        response
    }

    /// [`response`](Ready::response) for adapters that convert headers to
    /// their framework's types: when the hit's headers are the ones every
    /// hit on the entry answers with this second, the response comes with
    /// an **empty** header map and the headers in the [`HitHead`], which
    /// converts them once for all those hits ([`HitHead::converted`]).
    /// Otherwise (`HEAD`, a `304`, a debug key in `Cache-Status`) the
    /// headers are in the response and the head is `None`.
    pub fn shared_response<B>(&self) -> (Response<CacheBody<B>>, Option<HitHead>) {
        let head = self.head();
        match self.cache.shared_hit(head, &self.entry, self.now) {
            Some(memo) if !self.cache.inner.debug_keys => {
                let body = CacheBody::full(self.entry.body.clone());
                (response(self.entry.status, HeaderMap::new(), body), Some(HitHead(memo)))
            }
            shared => {
                let (mut response, _) = self.cache.respond_hit_with(head, &self.entry, self.now, shared);
                self.cache.debug_key(&mut response, &self.key);
                (response, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, time::Duration};

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Full;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use crate::{Cache, CacheMode, CachePolicy, Clock, MokaStore, RouteMatch};

    /// An in-process answer from a stale entry that the request's
    /// `max-stale` accepts is counted as `stale`, as its `X-Cache` says.
    #[test]
    fn an_answer_at_once_is_counted_as_what_it_is() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let origin = |_req: Request<()>| async {
            let response = Response::builder()
                .header("cache-control", "max-age=1")
                .body(Full::new(Bytes::from_static(b"x")));
            Ok::<_, Infallible>(response.unwrap())
        };
        let x_cache: Vec<String> = metrics::with_local_recorder(&recorder, || {
            runtime.block_on(async {
                let cache = Cache::builder().store(MokaStore::new()).clock(Clock::manual()).build().unwrap();
                let policy = CachePolicy::builder().mode(CacheMode::Rfc9111).label("r").build().unwrap();
                let mut seen = Vec::new();
                for (advance, request) in [
                    (0, Request::get("/a").body(()).unwrap()),
                    (0, Request::get("/a").body(()).unwrap()),
                    (5, Request::get("/a").header("cache-control", "max-stale=60").body(()).unwrap()),
                ] {
                    cache.clock().advance(Duration::from_secs(advance));
                    let response = cache.serve(&policy, &RouteMatch::default(), request, origin).await.unwrap();
                    seen.push(response.headers()["x-cache"].to_str().unwrap().to_owned());
                }
                seen
            })
        });
        assert_eq!(x_cache, ["MISS", "HIT", "STALE"]);
        let mut counted: Vec<(String, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| {
                let outcome = key.key().labels().find(|l| l.key() == "outcome")?.value().to_owned();
                let DebugValue::Counter(n) = value else { return None };
                Some((outcome, n))
            })
            .collect();
        counted.sort();
        assert_eq!(counted, [("hit".to_owned(), 1), ("miss".to_owned(), 1), ("stale".to_owned(), 1)]);
    }
}
