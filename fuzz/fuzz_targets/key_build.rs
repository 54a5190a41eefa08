//! `KeySpec::build` for a policy keyed by `x-tenant-id` and varying on
//! `accept-language`, on requests with arbitrary path+query, tenant and
//! language bytes (inputs `http` rejects are skipped).
//!
//! - Keys are at most `MAX_KEY_LEN` bytes and ASCII.
//! - `key.uri()` is a prefix of the key unless the key was hashed (`#`).
//! - Changing one byte of the tenant header always changes the key.
#![no_main]

use arbitrary::Arbitrary;
use cache_core::{key::CacheKey, CachePolicy, key::MAX_KEY_LEN};
use http::{HeaderValue, Request, request::Parts};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    path_and_query: Vec<u8>,
    tenant: Vec<u8>,
    accept_language: Option<Vec<u8>>,
    /// Which tenant byte the second request changes (modulo its length).
    flip_at: u16,
    /// XOR-ed into that byte; 0 is turned into 1 so the byte always changes.
    flip_xor: u8,
}

/// The request, or `None` if `http` rejects one of its parts.
fn parts(path_and_query: &[u8], tenant: &[u8], accept_language: Option<&[u8]>) -> Option<Parts> {
    let pq = http::uri::PathAndQuery::try_from(path_and_query).ok()?;
    let mut req = Request::get(http::Uri::from(pq)).body(()).ok()?;
    req.headers_mut().insert("x-tenant-id", HeaderValue::from_bytes(tenant).ok()?);
    if let Some(lang) = accept_language {
        req.headers_mut().insert("accept-language", HeaderValue::from_bytes(lang).ok()?);
    }
    Some(req.into_parts().0)
}

fn check(key: &CacheKey) {
    let k = key.as_str();
    assert!(k.len() <= MAX_KEY_LEN, "key longer than MAX_KEY_LEN ({}): {k:?}", k.len());
    assert!(k.is_ascii(), "non-ASCII key: {k:?}");
    if !k.contains('#') {
        assert!(k.starts_with(key.uri()), "uri {:?} is not a prefix of key {k:?}", key.uri());
    }
}

fuzz_target!(|input: Input| {
    let policy = CachePolicy::builder()
        .tenant_header("x-tenant-id")
        .vary(["accept-language"])
        .build()
        .expect("valid policy");
    let lang = input.accept_language.as_deref();
    let Some(a) = parts(&input.path_and_query, &input.tenant, lang) else {
        return;
    };
    let key_a = policy.key().build(&a);
    check(&key_a);

    // The same request with one tenant byte changed (or one byte added to an
    // empty tenant).
    let mut tenant_b = input.tenant.clone();
    let delta = input.flip_xor.max(1);
    if tenant_b.is_empty() {
        tenant_b.push(delta);
    } else {
        let i = usize::from(input.flip_at) % tenant_b.len();
        tenant_b[i] ^= delta;
    }
    let Some(b) = parts(&input.path_and_query, &tenant_b, lang) else {
        return;
    };
    let key_b = policy.key().build(&b);
    check(&key_b);
    assert_ne!(
        key_a.as_str(),
        key_b.as_str(),
        "tenants {:?} and {tenant_b:?} share a key",
        input.tenant
    );
});
