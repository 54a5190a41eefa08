//! Hits answered at once, without asynchronous work.

use std::sync::Arc;

use http::{HeaderMap, Response, request::Parts};
use tracing::field;

use super::{
    Cache,
    classify::{Class, classify},
    hit_headers::HitHead,
    respond::{Head, response},
    serve::{in_early_refresh_window, record_key, usable},
};
use crate::{CacheBody, CachePolicy, CachedEntry, key::CacheKey, metrics::Outcome, policy::PolicyInner};

impl Cache {
    /// Answers a request from the store without waiting, when it can: the
    /// request is served from the cache, the store holds a fresh entry for
    /// it in this process, and the entry matches. Adapters try this first
    /// and call [`serve`](Cache::serve) when it returns `None`, so that a hit
    /// on an in-process store costs no asynchronous work.
    pub fn serve_now<B>(&self, policy: &CachePolicy, parts: &Parts) -> Option<Response<CacheBody<B>>> {
        let policy = policy.inner();
        let (entry, now, key) = self.hit_now(policy, parts)?;
        let mut response = self.respond_hit(Head { parts, policy }, &entry, now);
        self.debug_key(&mut response, &key);
        Some(response)
    }

    /// [`serve_now`](Cache::serve_now) for adapters that convert headers to
    /// their framework's types: when the hit's headers are the ones every
    /// hit on the entry answers with this second, the response comes with
    /// an **empty** header map and the headers in the [`HitHead`], which
    /// converts them once for all those hits
    /// ([`HitHead::converted`]). Otherwise (`HEAD`, a `304`, a debug key in
    /// `Cache-Status`) the headers are in the response and the head is
    /// `None`.
    pub fn serve_now_shared<B>(&self, policy: &CachePolicy, parts: &Parts) -> Option<(Response<CacheBody<B>>, Option<HitHead>)> {
        let policy = policy.inner();
        let (entry, now, key) = self.hit_now(policy, parts)?;
        let head = Head { parts, policy };
        match self.shared_hit(head, &entry, now) {
            Some(memo) if !self.inner.debug_keys => {
                let body = CacheBody::full(entry.body.clone());
                Some((response(entry.status, HeaderMap::new(), body), Some(HitHead(memo))))
            }
            shared => {
                let mut response = self.respond_hit_with(head, &entry, now, shared);
                self.debug_key(&mut response, &key);
                Some((response, None))
            }
        }
    }

    /// The fresh entry a request can be answered with at once, counted as a
    /// hit.
    fn hit_now(&self, policy: &PolicyInner, parts: &Parts) -> Option<(Arc<CachedEntry>, u64, CacheKey)> {
        if !matches!(classify(parts, policy), Class::Cacheable) {
            return None;
        }
        let key = policy.key.build(parts);
        let entry = self.inner.store.get_now(key.as_str())?;
        let now = self.inner.clock.now_ms();
        usable(&entry, parts, now, policy).ok()?;
        if in_early_refresh_window(policy, &entry, now) {
            // The asynchronous path decides, and can start the refresh.
            return None;
        }
        policy.metrics.request(Outcome::Hit);
        let span = tracing::debug_span!("http_cache", route = policy.metrics.label(), key = field::Empty, outcome = "hit");
        record_key(&span, &key);
        Some((entry, now, key))
    }
}
