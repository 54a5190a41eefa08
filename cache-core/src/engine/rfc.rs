//! Shared-cache rules of RFC 9111 for [`CacheMode::Rfc9111`](crate::CacheMode::Rfc9111).

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, StatusCode, header, request::Parts};

use crate::{CacheMode, CachedEntry, cache_control::CacheControl, policy::PolicyInner};

/// The most heuristic freshness a response gets (RFC 9111 §4.2.2 leaves the
/// bound to the cache).
pub(crate) const MAX_HEURISTIC: Duration = Duration::from_secs(24 * 60 * 60);

/// Statuses whose responses may get heuristic freshness (RFC 9110 §15.1).
const HEURISTICALLY_CACHEABLE: [u16; 12] = [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

fn date_ms(headers: &HeaderMap, name: header::HeaderName) -> Option<u64> {
    let text = headers.get(name)?.to_str().ok()?;
    let time = httpdate::parse_http_date(text).ok()?;
    u64::try_from(time.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// The freshness lifetime of a response (RFC 9111 §4.2.1): `s-maxage`, then
/// `max-age`, then `Expires` − `Date`, then a heuristic (a tenth of the time
/// since `Last-Modified`, for statuses that allow it or `public`), else
/// none. `no-cache` responses get none: they are revalidated before reuse.
pub(crate) fn freshness(cc: &CacheControl, headers: &HeaderMap, status: StatusCode, now_ms: u64) -> Duration {
    if cc.no_cache() {
        return Duration::ZERO;
    }
    if let Some(secs) = cc.s_maxage().or_else(|| cc.max_age()) {
        return Duration::from_secs(secs);
    }
    let date = date_ms(headers, header::DATE).unwrap_or(now_ms);
    if headers.contains_key(header::EXPIRES) {
        // An invalid Expires (such as "0") means already expired.
        return date_ms(headers, header::EXPIRES).map_or(Duration::ZERO, |expires| Duration::from_millis(expires.saturating_sub(date)));
    }
    let heuristic = HEURISTICALLY_CACHEABLE.contains(&status.as_u16()) || cc.public();
    match date_ms(headers, header::LAST_MODIFIED) {
        Some(modified) if heuristic => Duration::from_millis(date.saturating_sub(modified) / 10).min(MAX_HEURISTIC),
        _ => Duration::ZERO,
    }
}

/// The response's apparent age at `now_ms` from its `Date` (RFC 9111 §4.2.3).
pub(crate) fn apparent_age_ms(headers: &HeaderMap, now_ms: u64) -> u64 {
    date_ms(headers, header::DATE).map_or(0, |date| now_ms.saturating_sub(date))
}

/// The response's caching directives for this cache: `CDN-Cache-Control`'s
/// when the policy makes the cache its target (RFC 9213) and the response
/// has one, else `Cache-Control`'s.
pub(crate) fn response_directives(policy: &PolicyInner, headers: &HeaderMap) -> CacheControl {
    if policy.cdn_cache_control_target && policy.mode == CacheMode::Rfc9111 && headers.contains_key(super::respond::CDN_CACHE_CONTROL) {
        return CacheControl::from_field(headers, &super::respond::CDN_CACHE_CONTROL);
    }
    CacheControl::from_headers(headers)
}

/// Whether a stored response forbids answering with it once stale
/// (`must-revalidate`, `proxy-revalidate`, `s-maxage`: RFC 9111 §5.2.2),
/// read from the directives that targeted this cache.
pub(crate) fn forbids_stale(policy: &PolicyInner, entry: &CachedEntry) -> bool {
    let headers = &entry.headers;
    let cdn = &super::respond::CDN_CACHE_CONTROL;
    let cc = if policy.cdn_cache_control_target && policy.mode == CacheMode::Rfc9111 && headers.contains_key(cdn) {
        CacheControl::from_values(headers.get_all(cdn))
    } else {
        CacheControl::from_values(headers.get_all(&header::CACHE_CONTROL))
    };
    cc.must_revalidate() || cc.proxy_revalidate() || cc.has_s_maxage() || cc.no_cache()
}

/// Whether the origin gave the entry a validator a conditional request can
/// use.
pub(crate) fn has_validator(entry: &CachedEntry) -> bool {
    entry.headers.contains_key(&header::LAST_MODIFIED)
        || entry
            .etag()
            .is_some_and(|etag| !super::storable::is_generated_etag(&etag, &entry.body))
}

/// What a request's own directives (RFC 9111 §5.2.1) allow.
#[derive(Debug, Default)]
pub(crate) struct RequestDirectives {
    /// `no-cache` (or `Pragma: no-cache`): revalidate whatever is stored.
    pub(crate) no_cache: bool,
    pub(crate) max_age: Option<u64>,
    pub(crate) min_fresh: Option<u64>,
    /// `max-stale`: `Some(None)` accepts any staleness.
    pub(crate) max_stale: Option<Option<u64>>,
    pub(crate) only_if_cached: bool,
}

impl RequestDirectives {
    /// The request's directives; `None` when it has none (the common case,
    /// checked without parsing).
    pub(crate) fn of(parts: &Parts) -> Option<Self> {
        let headers = &parts.headers;
        if !headers.contains_key(header::CACHE_CONTROL) && !headers.contains_key(header::PRAGMA) {
            return None;
        }
        let cc = CacheControl::from_headers(headers);
        let pragma_no_cache = cc.is_empty()
            && headers
                .get_all(header::PRAGMA)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.split(',').any(|d| d.trim().eq_ignore_ascii_case("no-cache")));
        Some(RequestDirectives {
            no_cache: cc.no_cache() || pragma_no_cache,
            max_age: cc.max_age(),
            min_fresh: cc.min_fresh(),
            max_stale: cc.max_stale(),
            only_if_cached: cc.only_if_cached(),
        })
    }

    /// Whether a fresh entry is fresh enough for this request.
    pub(crate) fn accepts_fresh(&self, entry: &CachedEntry, now_ms: u64) -> bool {
        if self.no_cache {
            return false;
        }
        if let Some(max_age) = self.max_age
            && entry.age_secs(now_ms) > max_age
        {
            return false;
        }
        if let Some(min_fresh) = self.min_fresh
            && entry.ttl_secs(now_ms) < min_fresh
        {
            return false;
        }
        true
    }

    /// Whether this request accepts the stale entry as it is.
    pub(crate) fn accepts_stale(&self, policy: &PolicyInner, entry: &CachedEntry, now_ms: u64) -> bool {
        let Some(limit) = self.max_stale else { return false };
        if self.no_cache || forbids_stale(policy, entry) {
            return false;
        }
        if let Some(max_age) = self.max_age
            && entry.age_secs(now_ms) > max_age
        {
            return false;
        }
        let stale_for = now_ms.saturating_sub(entry.fresh_until_ms()) / 1000;
        limit.is_none_or(|limit| stale_for <= limit)
    }
}

/// Milliseconds since the epoch, for the `Date` arithmetic of tests.
#[cfg(test)]
fn ms(time: std::time::SystemTime) -> u64 {
    u64::try_from(time.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::CachePolicy;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn fresh(pairs: &[(header::HeaderName, &str)], status: u16, now_ms: u64) -> u64 {
        let h = headers(pairs);
        freshness(&CacheControl::from_headers(&h), &h, StatusCode::from_u16(status).unwrap(), now_ms).as_secs()
    }

    #[test]
    fn freshness_follows_rfc_9111_precedence() {
        let now = ms(httpdate::parse_http_date("Sun, 22 Nov 2026 12:00:00 GMT").unwrap());
        let date = (header::DATE, "Sun, 22 Nov 2026 12:00:00 GMT");
        let cc = |v| (header::CACHE_CONTROL, v);
        assert_eq!(fresh(&[cc("max-age=60, s-maxage=30")], 200, now), 30);
        assert_eq!(
            fresh(&[cc("max-age=60"), (header::EXPIRES, "Sun, 22 Nov 2026 13:00:00 GMT")], 200, now),
            60
        );
        assert_eq!(
            fresh(&[date.clone(), (header::EXPIRES, "Sun, 22 Nov 2026 13:00:00 GMT")], 200, now),
            3600
        );
        assert_eq!(
            fresh(&[date.clone(), (header::EXPIRES, "0")], 200, now),
            0,
            "an invalid Expires is in the past"
        );
        assert_eq!(
            fresh(&[date.clone(), (header::LAST_MODIFIED, "Sun, 22 Nov 2026 02:00:00 GMT")], 200, now),
            3600
        );
        assert_eq!(
            fresh(&[date.clone(), (header::LAST_MODIFIED, "Sun, 22 Nov 2026 02:00:00 GMT")], 302, now),
            0,
            "no heuristic for 302"
        );
        assert_eq!(
            fresh(
                &[date.clone(), cc("public"), (header::LAST_MODIFIED, "Sun, 22 Nov 2026 02:00:00 GMT")],
                302,
                now
            ),
            3600,
            "public allows it"
        );
        assert_eq!(
            fresh(&[date.clone(), (header::LAST_MODIFIED, "Mon, 01 Jan 2001 00:00:00 GMT")], 200, now),
            86_400,
            "capped"
        );
        assert_eq!(fresh(&[cc("no-cache, max-age=60")], 200, now), 0);
        assert_eq!(fresh(&[date], 200, now), 0, "no freshness information");
    }

    #[test]
    fn request_directives() {
        let parts = |cc: &str| {
            let mut req = http::Request::new(());
            req.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_str(cc).unwrap());
            req.into_parts().0
        };
        let entry = CachedEntry::new(StatusCode::OK, HeaderMap::new(), bytes::Bytes::new(), 0, 60_000);
        assert!(RequestDirectives::of(&http::Request::new(()).into_parts().0).is_none());
        assert!(!RequestDirectives::of(&parts("no-cache")).unwrap().accepts_fresh(&entry, 1_000));
        assert!(!RequestDirectives::of(&parts("max-age=10")).unwrap().accepts_fresh(&entry, 11_000));
        assert!(RequestDirectives::of(&parts("max-age=10")).unwrap().accepts_fresh(&entry, 10_000));
        assert!(!RequestDirectives::of(&parts("min-fresh=30")).unwrap().accepts_fresh(&entry, 31_000));
        assert!(RequestDirectives::of(&parts("max-stale")).unwrap().accepts_stale(
            CachePolicy::builder().mode(CacheMode::Rfc9111).build().unwrap().inner(),
            &entry,
            600_000
        ));
        assert!(RequestDirectives::of(&parts("max-stale=5")).unwrap().accepts_stale(
            CachePolicy::builder().mode(CacheMode::Rfc9111).build().unwrap().inner(),
            &entry,
            65_000
        ));
        assert!(!RequestDirectives::of(&parts("max-stale=5")).unwrap().accepts_stale(
            CachePolicy::builder().mode(CacheMode::Rfc9111).build().unwrap().inner(),
            &entry,
            66_000
        ));
        let mut strict = entry.clone();
        let mut headers = strict.headers.to_map();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60, must-revalidate"));
        strict.headers = headers.into();
        assert!(!RequestDirectives::of(&parts("max-stale")).unwrap().accepts_stale(
            CachePolicy::builder().mode(CacheMode::Rfc9111).build().unwrap().inner(),
            &strict,
            61_000
        ));
        let mut pragma = http::Request::new(());
        pragma.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        assert!(RequestDirectives::of(&pragma.into_parts().0).unwrap().no_cache);
    }
}
