//! `conditional::not_modified` with arbitrary (valid) `If-None-Match`,
//! `If-Modified-Since`, `ETag` and `Last-Modified` values.
//!
//! - Never panics.
//! - With response `ETag: "x"` and request `If-None-Match: "x"` or
//!   `W/"x"` (x an arbitrary valid opaque tag: RFC 9110 `etagc` bytes), the
//!   answer is `true`, whatever `If-Modified-Since`/`Last-Modified` say.
#![no_main]

use arbitrary::Arbitrary;
use cache_core::conditional::not_modified;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    if_none_match: Vec<Vec<u8>>,
    if_modified_since: Option<Vec<u8>>,
    etag: Option<Vec<u8>>,
    last_modified: Option<Vec<u8>>,
    /// The opaque tag `x` of the invariant.
    tag: Vec<u8>,
    weak: bool,
}

/// Appends `value` if it is a valid header value; invalid ones are dropped.
fn append(map: &mut HeaderMap, name: HeaderName, value: &[u8]) {
    if let Ok(v) = HeaderValue::from_bytes(value) {
        map.append(name, v);
    }
}

/// RFC 9110 `etagc = "!" / %x23-7E / obs-text`.
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7E).contains(&b) || b >= 0x80
}

fuzz_target!(|input: Input| {
    let mut request = HeaderMap::new();
    let mut response = HeaderMap::new();
    for v in &input.if_none_match {
        append(&mut request, header::IF_NONE_MATCH, v);
    }
    if let Some(v) = &input.if_modified_since {
        append(&mut request, header::IF_MODIFIED_SINCE, v);
    }
    if let Some(v) = &input.etag {
        append(&mut response, header::ETAG, v);
    }
    if let Some(v) = &input.last_modified {
        append(&mut response, header::LAST_MODIFIED, v);
    }
    let _ = not_modified(&request, &response);

    // Invariant: a matching (strong or weak) If-None-Match always hits.
    if !input.tag.iter().copied().all(is_etagc) {
        return;
    }
    let mut strong = b"\"".to_vec();
    strong.extend_from_slice(&input.tag);
    strong.push(b'"');
    let inm = if input.weak {
        [b"W/".as_slice(), &strong].concat()
    } else {
        strong.clone()
    };
    // `insert` replaces every If-None-Match field added above.
    request.insert(header::IF_NONE_MATCH, HeaderValue::from_bytes(&inm).expect("etagc bytes are valid"));
    response.insert(header::ETAG, HeaderValue::from_bytes(&strong).expect("etagc bytes are valid"));
    assert!(
        not_modified(&request, &response),
        "If-None-Match {:?} did not match ETag {:?}",
        String::from_utf8_lossy(&inm),
        String::from_utf8_lossy(&strong)
    );
});
