//! Going to the origin, reading what it sends, and storing it.

use std::{collections::VecDeque, pin::Pin, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;

use super::{Cache, Origin, OriginBody, exchange::Exchange, miss::Miss, serve::Answer};
use crate::{
    CacheBody, CacheHints, CachedEntry,
    cache_status::{Fwd, Status},
    coalesce::{Leader, Outcome},
    error::BoxError,
    metrics::NotStored,
};

/// A response body read up to the policy's limit.
enum Read<B> {
    Complete(Bytes),
    /// Too large, or with trailers (the reason): what was read, then the
    /// rest.
    Partial(NotStored, VecDeque<Frame<Bytes>>, Pin<Box<B>>),
    Failed(VecDeque<Frame<Bytes>>, BoxError),
}

async fn read_body<B>(body: B, limit: usize) -> Read<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = Box::pin(body);
    let mut frames = VecDeque::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return Read::Failed(frames, e.into()),
        };
        let Some(data) = frame.data_ref() else {
            frames.push_back(frame);
            return Read::Partial(NotStored::Trailers, frames, body);
        };
        len += data.len();
        frames.push_back(frame);
        if len > limit {
            return Read::Partial(NotStored::TooLarge, frames, body);
        }
    }
    Read::Complete(concat(frames, len))
}

fn concat(frames: VecDeque<Frame<Bytes>>, len: usize) -> Bytes {
    let mut chunks = frames.into_iter().filter_map(|f| f.into_data().ok());
    let Some(first) = chunks.next() else { return Bytes::new() };
    if first.len() == len {
        return first;
    }
    let mut out = BytesMut::with_capacity(len);
    out.extend_from_slice(&first);
    chunks.for_each(|c| out.extend_from_slice(&c));
    out.freeze()
}

/// The request sent to the origin on a miss: without the client's
/// conditionals (the cache answers those itself, and needs a full response
/// to store) and the headers the policy strips, and as `GET` for a `HEAD`.
fn origin_request<B>(ex: &Exchange, body: B) -> Request<B> {
    let mut parts = ex.parts.clone();
    parts.headers.remove(header::IF_NONE_MATCH);
    parts.headers.remove(header::IF_MODIFIED_SINCE);
    for name in &ex.policy.strip {
        parts.headers.remove(name);
    }
    if parts.method == Method::HEAD {
        parts.method = Method::GET;
    }
    Request::from_parts(parts, body)
}

/// Adds the stale entry's validators from the origin (not the ETag the
/// cache generated) to the origin request, so that it can answer `304`.
/// Returns whether it added any.
fn add_validators(headers: &mut http::HeaderMap, stale: &CachedEntry) -> bool {
    if stale.status != StatusCode::OK {
        return false;
    }
    let mut added = false;
    if let Some(etag) = stale.etag()
        && !super::storable::is_generated_etag(&etag, &stale.body)
    {
        headers.insert(header::IF_NONE_MATCH, etag);
        added = true;
    }
    if let Some(modified) = stale.headers.get(&header::LAST_MODIFIED) {
        headers.insert(header::IF_MODIFIED_SINCE, modified);
        added = true;
    }
    added
}

impl Cache {
    /// Fetches from the origin, stores the response when allowed, and
    /// answers. `leader` is this request's role in coalescing, if any;
    /// `miss` says why the cache could not answer, with the stale entry to
    /// revalidate and the stamp the stored response gets.
    pub(crate) async fn fetch<ReqB, ResB, E, F>(
        &self,
        ex: &Exchange,
        leader: Option<Leader>,
        body: ReqB,
        origin: F,
        miss: Miss,
    ) -> Result<Answer<ResB>, E>
    where
        F: Origin<ReqB, ResB, E>,
        ResB: OriginBody,
    {
        let Miss { fwd, stale, stamp } = miss;
        let since = self.inner.invalidations.seq();
        let mut request = origin_request(ex, body);
        let validated = stale.as_deref().is_some_and(|entry| add_validators(request.headers_mut(), entry));
        let started = std::time::Instant::now();
        let response = match origin(request).await {
            Ok(response) => response,
            Err(e) => {
                if let Some(leader) = leader {
                    leader.finish(Outcome::Uncacheable);
                }
                return self.stale_if_error(ex, stale.as_deref(), None).ok_or(e);
            }
        };
        if response.status().is_server_error()
            && let Some(stale) = self.stale_if_error(ex, stale.as_deref(), Some(response.status().as_u16()))
        {
            // Waiters fetch for themselves, and may get the stale entry too.
            drop(leader);
            return Ok(stale);
        }
        let (mut parts, body) = response.into_parts();
        let mut status = Status::forward(fwd);
        status.fwd_status = Some(parts.status.as_u16());
        let fetched = Fetched {
            hints: parts.extensions.remove::<CacheHints>().unwrap_or_default(),
            leader,
            since,
            stamp,
            status,
            started,
        };
        Ok(match stale {
            Some(stale) if validated && parts.status == StatusCode::NOT_MODIFIED => self.freshen(ex, &stale, parts, fetched).await,
            _ => self.take(ex, parts, body, fetched).await,
        })
    }

    /// A `304` to a revalidation: the stored body is still current, so the
    /// entry is freshened with the 304's headers (RFC 9111 §4.3.4) without
    /// a body transfer — unless the 304 is personal, when it answers the
    /// request that asked and changes nothing stored.
    async fn freshen<B>(&self, ex: &Exchange, stale: &CachedEntry, parts: http::response::Parts, fetched: Fetched) -> Answer<B> {
        let Fetched {
            hints,
            leader,
            since,
            stamp,
            status,
            ..
        } = fetched;
        match self.revalidated_entry(ex, stale, parts, &hints) {
            (entry, None) => {
                self.store_and_respond(ex, Arc::new(entry.with_stamp(stamp)), leader, since, status)
                    .await
            }
            (personal, Some(reason)) => {
                ex.policy.metrics.not_stored(reason);
                // Waiters revalidate for themselves.
                drop(leader);
                self.respond_personal(ex, &personal, status)
            }
        }
    }

    /// A full response from the origin: stored when the rules allow and its
    /// body is read whole within the limit; passed on as it streams
    /// otherwise.
    async fn take<ResB: OriginBody>(&self, ex: &Exchange, parts: http::response::Parts, body: ResB, fetched: Fetched) -> Answer<ResB> {
        let Fetched {
            hints,
            leader,
            since,
            stamp,
            status,
            started,
        } = fetched;
        let cc = super::rfc::response_directives(&ex.policy, &parts.headers);
        if let Some(reason) = self.refusal(ex, &parts, &hints, &cc) {
            ex.policy.metrics.not_stored(reason);
            if reason.by_request() {
                // Dropping the leader hands the key to a waiting request.
                drop(leader);
            } else {
                self.uncacheable(ex, leader);
            }
            return self.respond_passed(ex, parts, CacheBody::stream(body), status);
        }
        match read_body(body, ex.policy.max_body_size).await {
            Read::Complete(bytes) => {
                let mut entry = self.build_entry(ex, parts, bytes, &hints, &cc).with_stamp(stamp);
                entry.fetch_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
                self.store_and_respond(ex, Arc::new(entry), leader, since, status).await
            }
            Read::Partial(reason, prefix, rest) => {
                ex.policy.metrics.not_stored(reason);
                self.uncacheable(ex, leader);
                self.respond_passed(ex, parts, CacheBody::resume(prefix, rest), status)
            }
            Read::Failed(prefix, error) => {
                ex.policy.metrics.not_stored(NotStored::BodyError);
                self.uncacheable(ex, leader);
                self.respond_passed(ex, parts, CacheBody::failed(prefix, error), status)
            }
        }
    }

    /// Stores a fetched (or revalidated) entry, hands it to the waiters and
    /// answers with it.
    async fn store_and_respond<B>(
        &self,
        ex: &Exchange,
        entry: Arc<CachedEntry>,
        leader: Option<Leader>,
        since: u64,
        mut status: Status,
    ) -> Answer<B> {
        let put = self.put(ex, &entry, since, leader).await;
        match put {
            Put::Stored => {}
            Put::Invalidated => ex.policy.metrics.not_stored(NotStored::Invalidated),
            Put::Failed => ex.policy.metrics.not_stored(NotStored::StoreFailed),
        }
        status.stored = put == Put::Stored;
        self.respond_entry(ex.head(), &entry, status, self.inner.clock.now_ms())
    }

    /// The stale entry as the answer to a failed fetch (`fwd_status` is the
    /// origin's 5xx, `None` for an error), when its `stale-if-error` window
    /// allows.
    fn stale_if_error<B>(&self, ex: &Exchange, stale: Option<&CachedEntry>, fwd_status: Option<u16>) -> Option<Answer<B>> {
        let entry = stale?;
        let now = self.inner.clock.now_ms();
        if !entry.within_stale_window(now, entry.stale_if_error_ms) || !super::freshness::may_serve_stale(&ex.policy, entry) {
            return None;
        }
        tracing::debug!(?fwd_status, "origin failed: serving the stale entry (stale-if-error)");
        let mut status = Status::forward(Fwd::Stale);
        status.fwd_status = fwd_status;
        status.ttl = Some(entry.signed_ttl_secs(now));
        Some(self.respond_entry(ex.head(), entry, status, now))
    }

    /// Releases waiters to the origin and remembers the key as uncacheable,
    /// for requests that share the key's responses.
    fn uncacheable(&self, ex: &Exchange, leader: Option<Leader>) {
        if let Some(leader) = leader {
            leader.finish(Outcome::Uncacheable);
        }
        if !ex.shared {
            return;
        }
        let now = self.inner.clock.now_ms();
        let until = now.saturating_add(crate::clock::duration_ms(ex.policy.hit_for_miss));
        self.inner.hit_for_miss.mark(ex.key.as_str(), until, now);
    }

    /// Stores the entry unless an invalidation that concerns it ran since
    /// the fetch started (`since`), and hands it to the waiters.
    async fn put(&self, ex: &Exchange, entry: &Arc<CachedEntry>, since: u64, leader: Option<Leader>) -> Put {
        let key = ex.key.as_str();
        let mut ttl = Duration::from_millis(entry.retain_for_ms());
        if ex.policy.mode == crate::CacheMode::Rfc9111 && super::rfc::has_validator(entry) {
            // Kept past its freshness for conditional revalidation.
            ttl = ttl.max(ex.policy.ttl);
        }
        let put = self.put_for_waiters(key, entry, ttl, since, leader).await;
        if put == Put::Stored {
            self.inner.hit_for_miss.clear(key);
        }
        put
    }

    /// [`put_ordered`](Cache::put_ordered), then the entry to the requests
    /// waiting on `leader` — unless an invalidation overlapped the fetch:
    /// waiters may have arrived after it, so the leader is dropped and one
    /// of them fetches again.
    pub(crate) async fn put_for_waiters(
        &self,
        key: &str,
        entry: &Arc<CachedEntry>,
        ttl: Duration,
        since: u64,
        leader: Option<Leader>,
    ) -> Put {
        let put = self.put_ordered(key, entry, ttl, since).await;
        match (leader, put) {
            (Some(leader), Put::Invalidated) => drop(leader),
            (Some(leader), Put::Stored | Put::Failed) => leader.finish(Outcome::Entry(Arc::clone(entry))),
            (None, _) => {}
        }
        put
    }

    /// The one gate of every write after a fetch (responses, revalidations,
    /// refreshes, typed data): stores `entry` at `key` for `ttl` unless an
    /// invalidation that concerns it overlapped its fetch — one this process
    /// ran since `since` (its invalidation log), or, in a shared store, one
    /// any instance ran after the entry's [`stamp`](CachedEntry::stamp).
    pub(crate) async fn put_ordered(&self, key: &str, entry: &Arc<CachedEntry>, ttl: Duration, since: u64) -> Put {
        let log = &self.inner.invalidations;
        if log.affects(since, key, &entry.tags) {
            tracing::debug!("invalidated during the fetch: not stored");
            return Put::Invalidated;
        }
        let failed = match self.inner.store.put(key, Arc::clone(entry), ttl).await {
            Ok(()) => false,
            // Not ordered against invalidations (the store failed when the
            // fetch began): not stored, but as good as any for the waiters.
            Err(crate::StoreError::Superseded) if entry.stamp().is_lost() => true,
            Err(crate::StoreError::Superseded) => {
                tracing::debug!("the store refused the entry: an invalidation overlapped its fetch");
                return Put::Invalidated;
            }
            Err(err) => {
                self.log_store_error("put", &err);
                true
            }
        };
        if failed {
            // Not stored; handed to the waiters unless this process
            // invalidated it while the store was being tried.
            return if log.affects(since, key, &entry.tags) {
                Put::Invalidated
            } else {
                Put::Failed
            };
        }
        if log.affects(since, key, &entry.tags) {
            // An invalidation ran while the entry was being written.
            if let Err(err) = self.inner.store.delete(key).await {
                self.log_store_error("delete", &err);
            }
            return Put::Invalidated;
        }
        Put::Stored
    }
}

/// What a fetch knows once the origin has answered.
struct Fetched {
    hints: CacheHints,
    /// This request's role in coalescing.
    leader: Option<Leader>,
    /// The invalidation log's position when the fetch began.
    since: u64,
    /// The store's stamp for the entry.
    stamp: crate::Stamp,
    status: Status,
    started: std::time::Instant,
}

/// How storing an entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    Stored,
    Failed,
    /// An invalidation that concerns the entry overlapped its fetch.
    Invalidated,
}
