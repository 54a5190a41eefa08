//! `CacheControl::from_headers` on arbitrary `Cache-Control` fields (one or
//! more; invalid header values are dropped): never panics, nor do the
//! accessors the engine uses.
#![no_main]

use cache_core::cache_control::CacheControl;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|values: Vec<Vec<u8>>| {
    let mut headers = HeaderMap::new();
    for v in &values {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            headers.append(header::CACHE_CONTROL, v);
        }
    }
    let cc = CacheControl::from_headers(&headers);
    let _ = cc.is_empty();
    for name in ["no-store", "no-cache", "private", "public", "must-revalidate"] {
        let _ = cc.has(name);
    }
    for name in ["max-age", "s-maxage", "stale-while-revalidate", "stale-if-error"] {
        let _ = cc.value(name);
        let _ = cc.seconds(name);
    }
});
