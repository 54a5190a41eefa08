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
    let _ = (cc.is_empty(), cc.no_store(), cc.no_cache_fields(), cc.private_fields(), cc.max_age(), cc.s_maxage());
    let _ = (cc.max_stale(), cc.stale_while_revalidate(), cc.stale_if_error(), cc.extensions().count());
});
