//! Conditional requests (RFC 9110 §13): `If-None-Match` and
//! `If-Modified-Since` evaluated against a stored response.

use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, header};

/// Whether a `GET`/`HEAD` with these request headers should get `304 Not
/// Modified` for a response with these headers.
///
/// `If-None-Match` wins when present (RFC 9110 §13.2.2): it is false when
/// any listed entity tag matches the response's `ETag` by weak comparison, or
/// when it is `*`. Otherwise `If-Modified-Since` is false when the response's
/// `Last-Modified` is not later than the given date. An unparsable header
/// never yields a 304.
pub fn not_modified(request: &HeaderMap, response: &HeaderMap) -> bool {
    not_modified_by(request, response.get(header::ETAG), response.get(header::LAST_MODIFIED))
}

/// [`not_modified`] for a response whose validators are `etag` and
/// `last_modified`.
pub(crate) fn not_modified_by(request: &HeaderMap, etag: Option<&HeaderValue>, last_modified: Option<&HeaderValue>) -> bool {
    let inm = request.get_all(header::IF_NONE_MATCH);
    if inm.iter().next().is_some() {
        let etag = etag.and_then(|v| opaque_tag(v.as_bytes()));
        return inm.iter().any(|v| none_match_fails(v, etag));
    }
    let Some(since) = request.get(header::IF_MODIFIED_SINCE) else {
        return false;
    };
    match (last_modified.and_then(http_date), http_date(since)) {
        (Some(modified), Some(since)) => modified <= since,
        _ => false,
    }
}

/// Whether one `If-None-Match` field value matches `etag` (so the condition
/// is false and a 304 is due).
fn none_match_fails(value: &HeaderValue, etag: Option<&[u8]>) -> bool {
    let bytes = value.as_bytes();
    if bytes.iter().all(|b| *b == b' ' || *b == b'\t' || *b == b'*') && bytes.contains(&b'*') {
        return true;
    }
    let Some(etag) = etag else { return false };
    EntityTags { rest: bytes }.any(|tag| tag == etag)
}

/// The opaque part of an entity tag (`W/"abc"` and `"abc"` give `abc`), for
/// weak comparison.
fn opaque_tag(value: &[u8]) -> Option<&[u8]> {
    let mut tags = EntityTags { rest: value };
    let tag = tags.next()?;
    tags.rest.iter().all(u8::is_ascii_whitespace).then_some(tag)
}

/// Iterates the opaque tags of a comma-separated list of entity tags; stops
/// at the first malformed element.
struct EntityTags<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for EntityTags<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|b| !matches!(b, b' ' | b'\t' | b','))?;
        let mut s = &self.rest[start..];
        if let Some(weak) = s.strip_prefix(b"W/") {
            s = weak;
        }
        let Some(inner) = s.strip_prefix(b"\"") else {
            self.rest = &[];
            return None;
        };
        let Some(end) = inner.iter().position(|b| *b == b'"') else {
            self.rest = &[];
            return None;
        };
        self.rest = &inner[end + 1..];
        Some(&inner[..end])
    }
}

fn http_date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (http::HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn if_none_match() {
        let strong = headers(&[("etag", "\"v1\"")]);
        let weak = headers(&[("etag", "W/\"v1\"")]);
        let cases = [
            ("\"v1\"", &strong, true),
            ("W/\"v1\"", &strong, true),
            ("\"v1\"", &weak, true),
            ("\"v2\"", &strong, false),
            ("\"v0\", \"v1\"", &strong, true),
            ("\"v0\",W/\"v1\"", &weak, true),
            ("*", &strong, true),
            ("\"v1", &strong, false),
            ("v1", &strong, false),
            ("\"a,b\", \"v1\"", &strong, true),
        ];
        for (inm, response, expected) in cases {
            let req = headers(&[("if-none-match", inm)]);
            assert_eq!(not_modified(&req, response), expected, "If-None-Match: {inm}");
        }
        assert!(!not_modified(&headers(&[("if-none-match", "\"v1\"")]), &HeaderMap::new()));
        assert!(not_modified(&headers(&[("if-none-match", "*")]), &HeaderMap::new()));
    }

    #[test]
    fn if_modified_since() {
        let response = headers(&[("last-modified", "Tue, 01 Jan 2030 00:00:00 GMT")]);
        let at = |d: &'static str| headers(&[("if-modified-since", d)]);
        assert!(not_modified(&at("Tue, 01 Jan 2030 00:00:00 GMT"), &response));
        assert!(not_modified(&at("Wed, 02 Jan 2030 00:00:00 GMT"), &response));
        assert!(!not_modified(&at("Mon, 31 Dec 2029 00:00:00 GMT"), &response));
        assert!(!not_modified(&at("yesterday"), &response));
        assert!(!not_modified(&at("Wed, 02 Jan 2030 00:00:00 GMT"), &HeaderMap::new()));
    }

    #[test]
    fn if_none_match_takes_precedence() {
        let response = headers(&[("etag", "\"v1\""), ("last-modified", "Tue, 01 Jan 2030 00:00:00 GMT")]);
        let req = headers(&[("if-none-match", "\"v2\""), ("if-modified-since", "Wed, 02 Jan 2030 00:00:00 GMT")]);
        assert!(!not_modified(&req, &response));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(inm in proptest::collection::vec(proptest::num::u8::ANY, 0..64), etag in "[ -~]{0,20}") {
            if let (Ok(inm), Ok(etag)) = (HeaderValue::from_bytes(&inm), HeaderValue::from_str(&etag)) {
                let mut req = HeaderMap::new();
                req.insert(header::IF_NONE_MATCH, inm);
                let mut resp = HeaderMap::new();
                resp.insert(header::ETAG, etag);
                let _ = not_modified(&req, &resp);
            }
        }
    }
}
