//! Writes the seed corpus of the `codec_decode` target: real entries
//! encoded by `codec::encode` (`*.plain`) and, when their body compresses,
//! by `codec::encode_compressed` (`*.lz4`).
//!
//! ```sh
//! cargo run --example codec_seeds            # writes seeds/codec_decode/
//! cargo run --example codec_seeds -- DIR     # writes DIR/
//! ```
//!
//! Every seed is checked to decode back to its entry before it is written.
//! The output is deterministic, so re-running it after a codec change shows
//! in `git diff` which seeds changed.

use std::{fs, path::PathBuf};

use bytes::Bytes;
use cache_core::{
    CachedEntry,
    codec::{decode, encode, encode_compressed},
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// 2023-11-14T22:13:20Z, in ms since the epoch.
const STORED_AT: u64 = 1_700_000_000_000;

fn entry(status: u16, body: impl Into<Bytes>) -> CachedEntry {
    CachedEntry::new(
        StatusCode::from_u16(status).expect("valid status"),
        HeaderMap::new(),
        body.into(),
        STORED_AT,
        60_000,
    )
}

fn header(e: &mut CachedEntry, name: &str, value: &[u8]) {
    e.headers.append(
        HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
        HeaderValue::from_bytes(value).expect("valid header value"),
    );
}

fn vary(name: &str, value: Option<&str>) -> (HeaderName, Option<HeaderValue>) {
    (
        HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
        value.map(|v| HeaderValue::from_str(v).expect("valid header value")),
    )
}

/// A JSON array of products, truncated to `len` bytes: compresses well.
fn json_body(len: usize) -> Bytes {
    let mut body = String::from("[");
    let mut i = 0;
    while body.len() < len {
        body.push_str(&format!(
            "{{\"id\":{i},\"name\":\"product {i}\",\"price\":{}.99,\"in_stock\":true}},",
            i % 97
        ));
        i += 1;
    }
    body.truncate(len);
    body.into()
}

/// Bytes from a fixed xorshift sequence: do not compress.
fn noise(len: usize) -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn seeds() -> Vec<(&'static str, CachedEntry)> {
    let mut seeds = Vec::new();

    // Status 200 and nothing else: the smallest entry.
    seeds.push(("minimal", entry(200, Bytes::new())));

    // Empty bodies with the statuses that have none.
    let mut no_content = entry(204, Bytes::new());
    header(&mut no_content, "cache-control", b"max-age=60");
    seeds.push(("empty-body-204", no_content));
    let mut not_modified = entry(304, Bytes::new());
    header(&mut not_modified, "etag", b"\"v1\"");
    seeds.push(("empty-body-304", not_modified));

    // The extremes of the status range.
    seeds.push(("status-100", entry(100, Bytes::from_static(b"x"))));
    seeds.push(("status-999", entry(999, Bytes::from_static(b"x"))));

    // Many headers, some repeated (multi-valued), one value with obs-text
    // and a tab.
    let mut many = entry(200, Bytes::from_static(b"{\"id\":1}"));
    header(&mut many, "content-type", b"application/json; charset=utf-8");
    header(&mut many, "etag", b"W/\"5e1f-2a\"");
    header(&mut many, "last-modified", b"Tue, 14 Nov 2023 22:13:20 GMT");
    header(&mut many, "cache-control", b"public, max-age=3600, stale-while-revalidate=30");
    header(&mut many, "vary", b"accept-language, accept-encoding");
    header(&mut many, "link", b"</a>; rel=next");
    header(&mut many, "link", b"</b>; rel=prev");
    header(&mut many, "link", b"</c>; rel=first");
    header(&mut many, "content-language", b"en");
    header(&mut many, "x-request-id", b"0f8e9c2a-4b1d-4e5f-9a3b-2c1d0e9f8a7b");
    header(&mut many, "x-obs-text", b"caf\xc3\xa9\tna\xefve");
    header(&mut many, "access-control-allow-origin", b"*");
    header(&mut many, "strict-transport-security", b"max-age=63072000");
    header(&mut many, "x-empty", b"");
    seeds.push(("many-headers", many));

    // Vary on headers the request had and did not have.
    let mut varied = entry(200, Bytes::from_static(b"bonjour"));
    header(&mut varied, "content-language", b"fr");
    varied.vary = vec![
        vary("accept-language", Some("fr-FR,fr;q=0.9,en;q=0.5")),
        vary("accept-encoding", None),
        vary("x-tenant-id", Some("acme")),
        vary("cookie", None),
    ];
    seeds.push(("vary-present-absent", varied));

    // Tags, ASCII and not, and an empty one.
    let mut tagged = entry(200, Bytes::from_static(b"[]"));
    tagged.tags = vec![
        "product:acme:1".into(),
        "ünïcode".into(),
        "категория:7".into(),
        "商品:42".into(),
        "🏷️".into(),
        String::new(),
    ];
    seeds.push(("tags-non-ascii", tagged));

    // The fetch time (its flag) and every other time set.
    let mut timed = entry(200, Bytes::from_static(b"slow"));
    timed.fetch_ms = 1_250;
    timed.initial_age_ms = 12_000;
    timed.stale_while_revalidate_ms = 30_000;
    timed.stale_if_error_ms = 600_000;
    seeds.push(("fetch-time", timed));
    let mut max_times = entry(200, Bytes::new());
    max_times.stored_at_ms = u64::MAX;
    max_times.initial_age_ms = u64::MAX;
    max_times.fresh_for_ms = u64::MAX;
    max_times.stale_while_revalidate_ms = u64::MAX;
    max_times.stale_if_error_ms = u64::MAX;
    max_times.fetch_ms = u64::MAX;
    seeds.push(("max-times", max_times));

    // Bodies: compressible 4 KiB (JSON and a single repeated byte), and
    // 1 KiB that does not compress.
    let mut json = entry(200, json_body(4096));
    header(&mut json, "content-type", b"application/json");
    seeds.push(("json-4k", json));
    seeds.push(("zeros-4k", entry(200, vec![0u8; 4096])));
    seeds.push(("noise-1k", entry(200, noise(1024))));

    // Everything at once.
    let mut full = entry(200, json_body(2048));
    header(&mut full, "content-type", b"application/json");
    header(&mut full, "etag", b"\"abc\"");
    header(&mut full, "link", b"</a>; rel=next");
    header(&mut full, "link", b"</b>; rel=prev");
    full.vary = vec![vary("accept-language", Some("en")), vary("accept-encoding", None)];
    full.tags = vec!["product:acme:1".into(), "ünïcode".into()];
    full.initial_age_ms = 5_000;
    full.stale_while_revalidate_ms = 30_000;
    full.stale_if_error_ms = 600_000;
    full.fetch_ms = 87;
    seeds.push(("full", full));

    seeds
}

fn main() {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds/codec_decode"),
        PathBuf::from,
    );
    fs::create_dir_all(&dir).expect("create the seed directory");
    let mut written = 0;
    for (name, e) in seeds() {
        let plain = encode(&e).expect("a seed entry can be encoded");
        let compressed = encode_compressed(&e, 0).expect("a seed entry can be encoded");
        let mut forms = vec![("plain", plain.clone())];
        if compressed != plain {
            forms.push(("lz4", compressed));
        }
        for (suffix, bytes) in forms {
            assert_eq!(decode(bytes.clone()).as_ref(), Ok(&e), "seed {name}.{suffix} does not round-trip");
            let path = dir.join(format!("{name}.{suffix}"));
            fs::write(&path, &bytes).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
            println!("{:>6} bytes  {}", bytes.len(), path.display());
            written += 1;
        }
    }
    println!("{written} seeds in {}", dir.display());
}
