//! The stored form of a response.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use crate::engine::HitHeaders;

mod headers;

pub use headers::StoredHeaders;

/// A response as the cache keeps it.
///
/// Holds what is needed to answer later requests without the origin: the
/// status, the end-to-end headers (hop-by-hop headers, `Age` and
/// `Content-Length` are not kept), the body, when it was stored and how long
/// it stays fresh and usable stale, its tags, and the values of the request
/// headers named by the response's `Vary`.
///
/// Entries are encoded for shared stores with [`codec`](crate::store::codec).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CachedEntry {
    /// The response status.
    pub status: StatusCode,
    /// End-to-end response headers, including a generated `ETag`.
    pub headers: StoredHeaders,
    /// The whole response body.
    pub body: Bytes,
    /// Wall-clock time the entry was stored, in ms since the Unix epoch.
    pub stored_at_ms: u64,
    /// The response's age when it was stored (from an upstream `Age`), in ms.
    pub initial_age_ms: u64,
    /// How long after `stored_at_ms` the entry is fresh, in ms.
    pub fresh_for_ms: u64,
    /// How long after freshness ends a stale copy may be served while it is
    /// refreshed, in ms.
    pub stale_while_revalidate_ms: u64,
    /// How long after freshness ends a stale copy may be served when the
    /// origin fails, in ms.
    pub stale_if_error_ms: u64,
    /// How long the origin took to produce the response, in ms: the cost
    /// of recomputing it, which early refresh weighs (0 when unknown).
    pub fetch_ms: u64,
    /// Tags the entry can be invalidated by, as stores hold them: the app's
    /// tags, those beginning with `@` escaped with one more `@`, and the
    /// cache's own (`@uri:` and the entry's URI), which no app tag can equal.
    pub tags: Vec<String>,
    /// Request header values this response varies on (from its `Vary`), in
    /// the order of the `Vary` header; `None` when the request lacked the
    /// header.
    pub vary: Vec<(HeaderName, Option<HeaderValue>)>,
    /// The headers the last hits on the entry answered with.
    pub(crate) hit_headers: HitHeaders,
    /// Where its fetch began in the store's order of invalidations; not
    /// encoded.
    pub(crate) stamp: crate::Stamp,
}

impl CachedEntry {
    /// An entry stored at `stored_at_ms`, fresh for `fresh_for_ms`, with no
    /// stale windows, tags or varied headers.
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes, stored_at_ms: u64, fresh_for_ms: u64) -> Self {
        CachedEntry {
            status,
            headers: StoredHeaders::from_map(&headers),
            body,
            stored_at_ms,
            initial_age_ms: 0,
            fresh_for_ms,
            stale_while_revalidate_ms: 0,
            stale_if_error_ms: 0,
            fetch_ms: 0,
            tags: Vec::new(),
            vary: Vec::new(),
            hit_headers: HitHeaders::default(),
            stamp: crate::Stamp::NONE,
        }
    }

    /// Where the fetch of this entry began in the store's order of
    /// invalidations: a shared store refuses to store the entry when an
    /// invalidation that concerns it came later (see [`Store::put`](crate::Store::put)).
    /// [`Stamp::NONE`](crate::store::Stamp::NONE) for an entry built by hand.
    pub fn stamp(&self) -> crate::Stamp {
        self.stamp
    }

    /// The entry with its fetch's [`stamp`](CachedEntry::stamp).
    #[must_use]
    pub fn with_stamp(mut self, stamp: crate::Stamp) -> Self {
        self.stamp = stamp;
        self
    }

    /// The time at which the entry stops being fresh, in ms since the epoch.
    pub fn fresh_until_ms(&self) -> u64 {
        self.stored_at_ms.saturating_add(self.fresh_for_ms)
    }

    /// Whether the entry is fresh at `now_ms`.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms < self.fresh_until_ms()
    }

    /// The entry's age at `now_ms` (RFC 9111 §4.2.3), in whole seconds.
    pub fn age_secs(&self, now_ms: u64) -> u64 {
        let resident = now_ms.saturating_sub(self.stored_at_ms);
        self.initial_age_ms.saturating_add(resident) / 1000
    }

    /// Remaining freshness at `now_ms` in whole seconds, negative (rounded
    /// away from zero) once the entry is stale: `Cache-Status`'s `ttl`.
    pub fn signed_ttl_secs(&self, now_ms: u64) -> i64 {
        let until = self.fresh_until_ms();
        if now_ms < until {
            i64::try_from((until - now_ms) / 1000).unwrap_or(i64::MAX)
        } else {
            -i64::try_from((now_ms - until).div_ceil(1000).max(1)).unwrap_or(i64::MAX)
        }
    }

    /// Whether the entry, stale at `now_ms`, is within `window_ms` after
    /// its freshness ended.
    pub fn within_stale_window(&self, now_ms: u64, window_ms: u64) -> bool {
        !self.is_fresh(now_ms) && now_ms < self.fresh_until_ms().saturating_add(window_ms)
    }

    /// Remaining freshness at `now_ms`, in whole seconds (0 when stale).
    pub fn ttl_secs(&self, now_ms: u64) -> u64 {
        self.fresh_until_ms().saturating_sub(now_ms) / 1000
    }

    /// How long a store should keep the entry: its freshness plus the longer
    /// of its stale windows, in ms.
    pub fn retain_for_ms(&self) -> u64 {
        let stale = self.stale_while_revalidate_ms.max(self.stale_if_error_ms);
        self.fresh_for_ms.saturating_add(stale)
    }

    /// The entry's `ETag`, if any.
    pub fn etag(&self) -> Option<HeaderValue> {
        self.headers.get(&header::ETAG)
    }

    /// Whether the request headers select this entry: every header the
    /// response varies on has the same value in the request as when stored.
    pub fn vary_matches(&self, request: &HeaderMap) -> bool {
        self.vary
            .iter()
            .all(|(name, stored)| combined_value(request, name).as_ref() == stored.as_ref())
    }

    /// Approximate memory held by the entry, in bytes.
    pub fn weight(&self) -> usize {
        let headers = self.headers.heap_bytes();
        let tags: usize = self.tags.iter().map(|t| t.len() + 24).sum();
        let vary: usize = self
            .vary
            .iter()
            .map(|(n, v)| n.as_str().len() + v.as_ref().map_or(0, HeaderValue::len) + 32)
            .sum();
        std::mem::size_of::<Self>() + self.body.len() + headers + tags + vary + HitHeaders::weight(self.headers.len())
    }
}

/// All values of a request header joined with `", "`, as compared for `Vary`.
pub(crate) fn combined_value(headers: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(first.clone());
    };
    let mut joined = first.as_bytes().to_vec();
    for v in std::iter::once(second).chain(values) {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(v.as_bytes());
    }
    HeaderValue::from_bytes(&joined).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_age_and_ttl() {
        let mut e = CachedEntry::new(StatusCode::OK, HeaderMap::new(), Bytes::new(), 10_000, 60_000);
        e.initial_age_ms = 5_000;
        assert!(e.is_fresh(69_999));
        assert!(!e.is_fresh(70_000));
        assert_eq!(e.age_secs(20_000), 15);
        assert_eq!(e.ttl_secs(20_000), 50);
        assert_eq!(e.ttl_secs(90_000), 0);
    }

    #[test]
    fn vary_compares_combined_values() {
        let mut e = CachedEntry::new(StatusCode::OK, HeaderMap::new(), Bytes::new(), 0, 1);
        e.vary = vec![
            (header::ACCEPT_LANGUAGE, Some(HeaderValue::from_static("en, fr"))),
            (header::ACCEPT_ENCODING, None),
        ];
        let mut req = HeaderMap::new();
        req.append(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
        req.append(header::ACCEPT_LANGUAGE, HeaderValue::from_static("fr"));
        assert!(e.vary_matches(&req));
        req.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(!e.vary_matches(&req));
    }
}
