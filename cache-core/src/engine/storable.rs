//! Whether a response may be stored, and the entry made from it.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header, response};

use super::{Cache, exchange::Exchange, rfc};
use crate::{
    CacheHints, CacheMode, CachedEntry, RouteMatch,
    cache_control::CacheControl,
    cache_status::X_CACHE,
    clock::duration_ms,
    metrics::NotStored,
    tags::{Tag, TagContext, TagTemplate},
};

/// Headers that describe one connection, not the response (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

impl Cache {
    /// Why the response must not be stored, if it must not.
    /// `cc` is the response's directives as the policy reads them
    /// ([`response_directives`](super::rfc::response_directives)), parsed
    /// once for this and [`build_entry`](Cache::build_entry).
    pub(crate) fn refusal(&self, ex: &Exchange, parts: &response::Parts, hints: &CacheHints, cc: &CacheControl) -> Option<NotStored> {
        if !ex.policy.is_cacheable_status(parts.status) {
            return Some(NotStored::Status);
        }
        if hints.is_no_store() {
            return Some(NotStored::Handler);
        }
        if parts.headers.contains_key(header::SET_COOKIE) {
            return Some(NotStored::SetCookie);
        }
        let rfc = ex.policy.mode == CacheMode::Rfc9111;
        if cc.is_malformed() {
            // A directive that could not be read might forbid storing.
            return Some(NotStored::UnreadableCacheControl);
        }
        // A shared cache stores `no-cache` responses and revalidates them
        // before each reuse (RFC 9111 §5.2.2.4); policy mode does not.
        if cc.no_store() || cc.private() || (!rfc && cc.no_cache()) {
            return Some(NotStored::CacheControl);
        }
        if !vary_is_valid(&parts.headers) {
            return Some(NotStored::UnreadableVary);
        }
        if vary_names(&parts.headers).any(|v| v == "*") {
            return Some(NotStored::VaryStar);
        }
        if rfc {
            let fresh = hints
                .ttl_override()
                .unwrap_or_else(|| rfc::freshness(cc, &parts.headers, parts.status, self.inner.clock.now_ms()));
            let validator = parts.headers.contains_key(header::ETAG) || parts.headers.contains_key(header::LAST_MODIFIED);
            if fresh.is_zero() && !validator {
                return Some(NotStored::NeverReusable);
            }
        } else if hints.ttl_override().is_some_and(|ttl| ttl.is_zero()) || ex.policy.ttl_for(parts.status).is_zero() {
            return Some(NotStored::ZeroTtl);
        }
        if declared_length(parts).is_some_and(|n| n > ex.policy.max_body_size as u64) {
            return Some(NotStored::TooLarge);
        }
        if CacheControl::from_headers(&ex.parts.headers).no_store() {
            return Some(NotStored::RequestNoStore);
        }
        let authorized = ex.parts.headers.contains_key(header::AUTHORIZATION) && !ex.policy.key.by_principal;
        if authorized && !shareable(cc) {
            return Some(NotStored::Authorization);
        }
        None
    }

    /// Makes the entry for a storable response.
    pub(crate) fn build_entry(
        &self,
        ex: &Exchange,
        parts: response::Parts,
        body: Bytes,
        hints: &CacheHints,
        cc: &CacheControl,
    ) -> CachedEntry {
        let now = self.inner.clock.now_ms();
        let rfc = ex.policy.mode == CacheMode::Rfc9111;
        let mut initial_age_ms = age_header(&parts.headers).saturating_mul(1000);
        // RFC 5861: the response's own stale windows win over the policy's.
        let rfc_fresh = rfc.then(|| {
            // RFC 9111 §4.2.3: the age is at least the time since `Date`,
            // and it counts against the freshness lifetime.
            initial_age_ms = initial_age_ms.max(rfc::apparent_age_ms(&parts.headers, now));
            rfc::freshness(cc, &parts.headers, parts.status, now).saturating_sub(std::time::Duration::from_millis(initial_age_ms))
        });
        let window =
            |directive: Option<u64>, policy: std::time::Duration| directive.map_or(duration_ms(policy), |s| s.saturating_mul(1000));
        let stale_while_revalidate_ms = window(cc.stale_while_revalidate(), ex.policy.stale_while_revalidate);
        let stale_if_error_ms = window(cc.stale_if_error(), ex.policy.stale_if_error);
        let vary = self.varied_values(ex, &parts.headers);
        let mut headers = end_to_end(parts.headers);
        if parts.status == StatusCode::OK && !headers.contains_key(header::ETAG) {
            headers.insert(header::ETAG, generated_etag(&body));
        }
        super::respond::add_vary(&mut headers, &ex.policy.keyed_headers);
        let fresh_for = hints
            .ttl_override()
            .or(rfc_fresh)
            .unwrap_or_else(|| ex.policy.ttl_for(parts.status));
        let mut tags = self.route_tags(ex, parts.extensions.get::<RouteMatch>());
        tags.extend(hints.tags().iter().cloned().map(Tag::app));
        tags.push(Tag::uri(ex.key.uri()));
        tags.sort_unstable();
        tags.dedup();
        let mut entry = CachedEntry::new(parts.status, headers, body, now, duration_ms(fresh_for));
        entry.initial_age_ms = initial_age_ms;
        entry.stale_while_revalidate_ms = stale_while_revalidate_ms;
        entry.stale_if_error_ms = stale_if_error_ms;
        entry.tags = Tag::stored(tags);
        entry.vary = vary;
        entry
    }

    /// The stale entry freshened by a `304` from the origin (RFC 9111
    /// §4.3.4): the 304's end-to-end headers replace the stored ones of the
    /// same names (`Content-Length` excepted), and freshness starts again
    /// now. The freshened response goes through the same storage rules as
    /// a `200` ([`Cache::refusal`]): with a refusal (the 304 sets a cookie,
    /// says `private` or `no-store`, ...), it is for the client that asked
    /// only, and the stored entry is left as it was.
    pub(crate) fn revalidated_entry(
        &self,
        ex: &Exchange,
        stale: &CachedEntry,
        mut parts: response::Parts,
        hints: &CacheHints,
    ) -> (CachedEntry, Option<NotStored>) {
        let initial_age_ms = age_header(&parts.headers).saturating_mul(1000);
        let updates = end_to_end(std::mem::take(&mut parts.headers));
        let mut entry = stale.clone();
        let mut headers = stale.headers.to_map();
        for name in updates.keys() {
            if name != header::CONTENT_LENGTH {
                headers.remove(name);
            }
        }
        for (name, value) in &updates {
            if name != header::CONTENT_LENGTH {
                headers.append(name.clone(), value.clone());
            }
        }
        // A 304 may name other request headers in `Vary`: the entry is for
        // this request's values of them.
        super::respond::add_vary(&mut headers, &ex.policy.keyed_headers);
        entry.vary = self.varied_values(ex, &headers);
        let now = self.inner.clock.now_ms();
        // The merged response's directives, as the policy reads them (its
        // `CDN-Cache-Control` when it targets this cache): for freshness and
        // for the storage rules alike, as for a `200`.
        let cc = super::rfc::response_directives(&ex.policy, &headers);
        let fresh_for = hints.ttl_override().unwrap_or_else(|| match ex.policy.mode {
            CacheMode::Rfc9111 => rfc::freshness(&cc, &headers, entry.status, now),
            _ => ex.policy.ttl_for(entry.status),
        });
        entry.stored_at_ms = now;
        entry.initial_age_ms = initial_age_ms;
        entry.fresh_for_ms = duration_ms(fresh_for);
        // The rules look at the response as it would be stored.
        parts.status = entry.status;
        parts.headers = headers;
        let refusal = self.refusal(ex, &parts, hints, &cc);
        entry.headers = crate::entry::StoredHeaders::from_map(&parts.headers);
        (entry, refusal)
    }

    /// The policy's tag templates rendered for this request. `routed` is a
    /// [`RouteMatch`] the adapter put in the response's extensions, for
    /// frameworks that know the path parameters only once the request has
    /// reached its handler; it takes precedence over the request's.
    pub(crate) fn route_tags(&self, ex: &Exchange, routed: Option<&RouteMatch>) -> Vec<Tag> {
        let templates = &ex.policy.tags;
        if templates.is_empty() {
            return Vec::new();
        }
        let tenant = ex.policy.key.tenant(&ex.parts);
        let params = match templates.iter().any(TagTemplate::needs_params) {
            true => routed.unwrap_or(&ex.route).params(&ex.parts),
            false => std::borrow::Cow::Borrowed(&[][..]),
        };
        let ctx = TagContext {
            tenant: tenant.as_deref(),
            headers: &ex.parts.headers,
            params: &params,
        };
        templates.iter().filter_map(|t| t.render(&ctx)).map(Tag::app).collect()
    }

    /// The request's values of the headers the response varies on, except
    /// those already in the key.
    fn varied_values(&self, ex: &Exchange, response: &HeaderMap) -> Vec<(HeaderName, Option<HeaderValue>)> {
        vary_names(response)
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .filter(|name| !ex.policy.keyed_headers.contains(name))
            .map(|name| {
                let value = crate::entry::combined_value(&ex.parts.headers, &name);
                (name, value)
            })
            .collect()
    }
}

fn vary_names(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
}

/// Whether every `Vary` field is a list of field names or `*`: one that is
/// not names request headers the cache cannot know.
fn vary_is_valid(headers: &HeaderMap) -> bool {
    headers.get_all(header::VARY).iter().all(|value| {
        value.as_bytes().split(|&b| b == b',').all(|name| {
            let name = name.trim_ascii();
            name.is_empty() || name == b"*" || name.iter().all(|&b| crate::cache_control::is_tchar(b))
        })
    })
}

/// Whether a response to a request with `Authorization` may be shared
/// (RFC 9111 §3.5: `public`, `s-maxage` or `must-revalidate`).
fn shareable(cc: &CacheControl) -> bool {
    match cc.s_maxage() {
        Some(s) => s > 0,
        None => (cc.public() || cc.must_revalidate()) && cc.max_age() != Some(0),
    }
}

fn declared_length(parts: &response::Parts) -> Option<u64> {
    parts.headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn age_header(headers: &HeaderMap) -> u64 {
    headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The headers worth storing: no hop-by-hop headers (nor those named by
/// `Connection`), no `Age` or `Content-Length` (recomputed when served), no
/// `X-Cache` from a cache further in (each cache sets its own). The
/// `Cache-Status` members of caches further in are kept: this cache adds
/// its own after them.
fn end_to_end(mut headers: HeaderMap) -> HeaderMap {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    for name in [header::AGE, header::CONTENT_LENGTH, X_CACHE] {
        headers.remove(name);
    }
    headers
}

/// A strong `ETag` from the body's BLAKE3 hash (128 bits).
/// Whether `etag` is the one the cache generates for `body` (the origin
/// sent none).
pub(crate) fn is_generated_etag(etag: &HeaderValue, body: &[u8]) -> bool {
    etag.len() == 34 && *etag == generated_etag(body)
}

fn generated_etag(body: &[u8]) -> HeaderValue {
    let hash = blake3::hash(body);
    let hex = hash.to_hex();
    let mut tag = String::with_capacity(34);
    tag.push('"');
    tag.push_str(&hex[..32]);
    tag.push('"');
    HeaderValue::try_from(tag).expect("a quoted hex string is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_recomputed_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-conn-only"));
        h.insert("x-conn-only", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::AGE, HeaderValue::from_static("5"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let kept = end_to_end(h);
        assert_eq!(kept.len(), 1);
        assert!(kept.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn generated_etags_follow_the_body() {
        assert_eq!(generated_etag(b"a"), generated_etag(b"a"));
        assert_ne!(generated_etag(b"a"), generated_etag(b"b"));
        assert_eq!(generated_etag(b"a").len(), 34);
    }

    /// A `304` that freshens an entry is read as a `200` is: with
    /// `cdn_cache_control_target`, its freshness comes from
    /// `CDN-Cache-Control`, not `Cache-Control`.
    #[tokio::test]
    async fn a_revalidation_reads_the_directives_that_target_this_cache() {
        let cache = crate::Cache::builder()
            .store(crate::MokaStore::new())
            .clock(crate::Clock::manual())
            .build()
            .unwrap();
        let policy = crate::CachePolicy::builder()
            .mode(crate::CacheMode::Rfc9111)
            .cdn_cache_control_target(true)
            .build()
            .unwrap();
        let origin = |req: http::Request<()>| async move {
            let status = match req.headers().contains_key("if-none-match") {
                true => http::StatusCode::NOT_MODIFIED,
                false => http::StatusCode::OK,
            };
            let response = http::Response::builder()
                .status(status)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=10")
                .header("cdn-cache-control", "max-age=600")
                .body(http_body_util::Full::new(Bytes::from_static(b"x")));
            Ok::<_, std::convert::Infallible>(response.unwrap())
        };
        let get = || http::Request::get("/a").body(()).unwrap();
        let route = crate::RouteMatch::default();
        let mut statuses = Vec::new();
        for advance in [0, 601, 100] {
            cache.clock().advance(std::time::Duration::from_secs(advance));
            let response = cache.serve(&policy, &route, get(), origin).await.unwrap();
            statuses.push(response.headers()["cache-status"].to_str().unwrap().to_owned());
        }
        assert_eq!(
            statuses,
            [
                "cache; fwd=uri-miss; fwd-status=200; stored",
                "cache; fwd=stale; fwd-status=304; stored",
                "cache; hit; ttl=500",
            ]
        );
    }
}
