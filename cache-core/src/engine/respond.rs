//! Responses built by the engine.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header, response};

use super::{
    Cache,
    exchange::{Exchange, Head},
    hit_headers::{Memo, Stamp},
    serve::Answer,
};
use crate::{
    CacheBody, CacheHints, CachedEntry,
    cache_status::{CACHE_STATUS, Fwd, Status, X_CACHE},
    conditional,
    policy::PolicyInner,
};

/// Headers a `304 Not Modified` carries from the stored response
/// (RFC 9110 §15.4.5).
const NOT_MODIFIED_HEADERS: [header::HeaderName; 7] = [
    header::CACHE_CONTROL,
    header::CONTENT_LOCATION,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::VARY,
    header::LAST_MODIFIED,
];

/// Headers a hit may add to the stored ones: `Age`, `Cache-Status`,
/// `X-Cache`, `Content-Length`, and the downstream `Cache-Control`,
/// `CDN-Cache-Control`, `Surrogate-Key` and `Cache-Tag`.
pub(crate) const HIT_HEADERS: usize = 8;

impl Cache {
    /// A hit: the entry as stored, with the headers of a hit.
    pub(crate) fn respond_hit<B>(&self, head: Head<'_>, entry: &Arc<CachedEntry>, now_ms: u64) -> Answer<B> {
        self.respond_hit_with(head, entry, now_ms, self.shared_hit(head, entry, now_ms))
    }

    /// [`respond_hit`](Cache::respond_hit) with the entry's
    /// [`shared_hit`](Cache::shared_hit) already looked up.
    pub(crate) fn respond_hit_with<B>(&self, head: Head<'_>, entry: &CachedEntry, now_ms: u64, shared: Option<Arc<Memo>>) -> Answer<B> {
        let status = Status::hit(entry.signed_ttl_secs(now_ms));
        match shared {
            Some(memo) => (
                response(entry.status, memo.headers.clone(), CacheBody::full(entry.body.clone())),
                status.outcome(),
            ),
            None => self.respond_entry(head, entry, status, now_ms),
        }
    }

    /// The memoized headers of a full hit on `entry` (see
    /// [`HitHeaders`](super::HitHeaders)); `None` for `HEAD`, a `304`, and an
    /// entry only this request holds (decoded from a shared store for it:
    /// there is no later hit to keep headers for).
    pub(crate) fn shared_hit(&self, head: Head<'_>, entry: &Arc<CachedEntry>, now_ms: u64) -> Option<Arc<Memo>> {
        if head.parts.method == Method::HEAD || Arc::strong_count(entry) == 1 || self.not_modified(head, entry) {
            return None;
        }
        let ttl = entry.signed_ttl_secs(now_ms);
        let age = entry.age_secs(now_ms);
        let stamp = Stamp::new(age, ttl, &self.inner.name, head.policy);
        Some(
            entry
                .hit_headers
                .get_or_build(&stamp, || self.entry_headers(head, entry, Status::hit(ttl), age)),
        )
    }

    /// The response for a request that waited on another's fetch.
    pub(crate) fn respond_collapsed<B>(&self, ex: &Exchange, entry: &CachedEntry, fwd: Fwd) -> Answer<B> {
        let mut status = Status::forward(fwd);
        status.fwd_status = Some(entry.status.as_u16());
        status.collapsed = true;
        self.respond_entry(ex.head(), entry, status, self.inner.clock.now_ms())
    }

    /// Whether the request's conditionals let the entry be answered with
    /// `304 Not Modified`.
    fn not_modified(&self, head: Head<'_>, entry: &CachedEntry) -> bool {
        let request = &head.parts.headers;
        let conditional = request.contains_key(header::IF_NONE_MATCH) || request.contains_key(header::IF_MODIFIED_SINCE);
        // The entry's validators are read only for a conditional request.
        conditional
            && entry.status == StatusCode::OK
            && conditional::not_modified_by(request, entry.etag().as_ref(), entry.headers.get(&header::LAST_MODIFIED).as_ref())
    }

    /// Answers from an entry: `304` when the request's conditionals allow,
    /// no body for `HEAD`.
    pub(crate) fn respond_entry<B>(&self, head: Head<'_>, entry: &CachedEntry, status: Status, now_ms: u64) -> Answer<B> {
        let age = entry.age_secs(now_ms);
        if self.not_modified(head, entry) {
            let mut headers = HeaderMap::with_capacity(NOT_MODIFIED_HEADERS.len() + HIT_HEADERS);
            for name in NOT_MODIFIED_HEADERS {
                for value in entry.headers.get_all(&name) {
                    headers.append(name.clone(), value);
                }
            }
            self.add_hit_headers(head, &mut headers, &entry.tags, status, age);
            return (response(StatusCode::NOT_MODIFIED, headers, CacheBody::empty()), status.outcome());
        }
        let headers = self.entry_headers(head, entry, status, age);
        let body = if head.parts.method == Method::HEAD {
            CacheBody::empty()
        } else {
            CacheBody::full(entry.body.clone())
        };
        (response(entry.status, headers, body), status.outcome())
    }

    /// The stored headers and those an answer from the entry adds.
    fn entry_headers(&self, head: Head<'_>, entry: &CachedEntry, status: Status, age: u64) -> HeaderMap {
        // Room for the stored headers and those the hit adds: growing a
        // clone of the stored map would reallocate twice per hit
        // (`bench/src/bin/hit-instructions.rs` measures it).
        let mut headers = HeaderMap::with_capacity(entry.headers.len() + HIT_HEADERS);
        for (name, value) in entry.headers.iter() {
            headers.append(name.clone(), value.clone());
        }
        // The body's length, for `HEAD` too; given here, the framework does
        // not grow the map to add it.
        if entry.status != StatusCode::NO_CONTENT {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.body.len()));
        }
        self.add_hit_headers(head, &mut headers, &entry.tags, status, age);
        headers
    }

    /// `Age`, the policy's downstream headers, `Cache-Status` and
    /// `X-Cache`.
    fn add_hit_headers(&self, head: Head<'_>, headers: &mut HeaderMap, tags: &[String], status: Status, age: u64) {
        downstream_headers(head.policy, headers, tags);
        headers.insert(header::AGE, HeaderValue::from(age));
        if let Some(cc) = &head.policy.downstream_cache_control {
            headers.insert(header::CACHE_CONTROL, cc.clone());
        }
        decorate(headers, &self.inner.name, status);
    }

    /// Answers with a revalidated response that must not be stored (a
    /// personal `304` merged into the stale entry): for this client only,
    /// as a response passed through is, without what the cache adds to
    /// responses it shares (`Age`, the policy's downstream `Cache-Control`,
    /// `CDN-Cache-Control` and tags). `304` when the client's own
    /// conditional matches, with the `Set-Cookie` it was sent.
    pub(crate) fn respond_personal<B>(&self, ex: &Exchange, personal: &CachedEntry, status: Status) -> Answer<B> {
        let mut parts = Response::new(()).into_parts().0;
        if self.not_modified(ex.head(), personal) {
            parts.status = StatusCode::NOT_MODIFIED;
            for name in NOT_MODIFIED_HEADERS.iter().chain([&header::SET_COOKIE]) {
                for value in personal.headers.get_all(name) {
                    parts.headers.append(name.clone(), value);
                }
            }
            return self.respond_passed(ex, parts, CacheBody::empty(), status);
        }
        parts.status = personal.status;
        parts.headers = personal.headers.to_map();
        if personal.status != StatusCode::NO_CONTENT {
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(personal.body.len()));
        }
        self.respond_passed(ex, parts, CacheBody::full(personal.body.clone()), status)
    }

    /// A response from the origin that was not stored.
    pub(crate) fn respond_passed<B>(&self, ex: &Exchange, parts: response::Parts, body: CacheBody<B>, status: Status) -> Answer<B> {
        let body = if ex.parts.method == Method::HEAD {
            CacheBody::empty()
        } else {
            body
        };
        let mut response = Response::from_parts(parts, body);
        response.extensions_mut().remove::<crate::RouteMatch>();
        add_vary(response.headers_mut(), &ex.policy.keyed_headers);
        decorate(response.headers_mut(), &self.inner.name, status);
        (response, status.outcome())
    }

    /// `504 Gateway Timeout` for an `only-if-cached` request the cache
    /// cannot answer.
    pub(crate) fn respond_gateway_timeout<B>(&self, ex: &Exchange) -> Answer<B> {
        let status = Status::forward(Fwd::Request);
        let mut response = Response::new(CacheBody::empty());
        *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
        add_vary(response.headers_mut(), &ex.policy.keyed_headers);
        decorate(response.headers_mut(), &self.inner.name, status);
        (response, status.outcome())
    }

    /// A response passed through without caching; `keyed` are the headers
    /// the route's key depends on, for `Vary`.
    pub(crate) fn pass<B>(&self, response: Response<B>, status: Status, keyed: &[HeaderName]) -> Answer<B> {
        let (mut parts, body) = response.into_parts();
        parts.extensions.remove::<CacheHints>();
        parts.extensions.remove::<crate::RouteMatch>();
        add_vary(&mut parts.headers, keyed);
        decorate(&mut parts.headers, &self.inner.name, status);
        (Response::from_parts(parts, CacheBody::stream(body)), status.outcome())
    }
}

pub(crate) fn response<B>(code: StatusCode, headers: HeaderMap, body: CacheBody<B>) -> Response<CacheBody<B>> {
    let mut response = Response::new(body);
    *response.status_mut() = code;
    *response.headers_mut() = headers;
    response
}

/// Adds the headers the key depends on to `Vary`, unless already listed.
/// Entries get it when stored; responses that are not stored, here.
pub(crate) fn add_vary(headers: &mut HeaderMap, keyed: &[HeaderName]) {
    for name in keyed {
        let listed = headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(name.as_str()));
        if !listed {
            headers.append(header::VARY, HeaderValue::from_name(name.clone()));
        }
    }
}

/// The headers the policy adds for a CDN in front: `CDN-Cache-Control`, and
/// the entry's tags.
fn downstream_headers(policy: &PolicyInner, headers: &mut HeaderMap, tags: &[String]) {
    if let Some(cdn) = &policy.downstream_cdn_cache_control {
        headers.insert(CDN_CACHE_CONTROL, cdn.clone());
    }
    for name in &policy.tag_headers {
        let separator = if name == "cache-tag" { "," } else { " " };
        if let Some(value) = tag_header(tags, separator) {
            headers.insert(name.clone(), value);
        }
    }
}

/// `CDN-Cache-Control` (RFC 9213).
pub(crate) const CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");

/// The entry's app tags for a CDN, joined by `separator`; the cache's own
/// tags and tags a CDN could not parse back are left out.
fn tag_header(tags: &[String], separator: &str) -> Option<HeaderValue> {
    let mut out = String::new();
    for tag in tags.iter().filter_map(|t| crate::tags::Tag::app_tag(t)) {
        if tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c == ',' || c.is_control()) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(separator);
        }
        out.push_str(tag);
    }
    if out.is_empty() {
        return None;
    }
    HeaderValue::from_str(&out).ok()
}

/// Adds this cache's member to `Cache-Status`, after those of the caches
/// further in (RFC 9211 §2: the list reads from the origin outwards), and
/// sets `X-Cache`.
fn decorate(headers: &mut HeaderMap, name: &str, status: Status) {
    let ours = status.cache_status(name);
    let value = match headers.get(CACHE_STATUS) {
        None => ours,
        Some(_) => {
            let mut list = Vec::new();
            for member in headers.get_all(CACHE_STATUS) {
                list.extend_from_slice(member.as_bytes());
                list.extend_from_slice(b", ");
            }
            list.extend_from_slice(ours.as_bytes());
            HeaderValue::from_bytes(&list).unwrap_or(ours)
        }
    };
    headers.insert(CACHE_STATUS, value);
    headers.insert(X_CACHE, status.x_cache());
}
