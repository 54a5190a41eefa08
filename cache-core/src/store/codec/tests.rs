//! Codec tests: round trips, compression, the fetch time, malformed input.

use super::*;
use http::header;
use proptest::prelude::*;

fn encode(e: &CachedEntry) -> Bytes {
    super::encode(e).expect("a test entry can be encoded")
}

fn encode_compressed(e: &CachedEntry, min_body_len: usize) -> Bytes {
    super::encode_compressed(e, min_body_len).expect("a test entry can be encoded")
}

/// A body the layout cannot describe is an error, not a panic. The 4 GiB
/// of zeros are never touched (the allocator maps them lazily, and encoding
/// stops at the body's length).
#[test]
#[cfg(target_pointer_width = "64")]
fn a_body_of_4_gib_is_an_error() {
    let huge = CachedEntry::new(StatusCode::OK, HeaderMap::new(), Bytes::from(vec![0u8; 1 << 32]), 0, 0);
    assert_eq!(super::encode(&huge), Err(CodecError::TooLarge("body")));
    assert_eq!(super::encode_compressed(&huge, 0), Err(CodecError::TooLarge("body")));
}

fn sample() -> CachedEntry {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.append(header::LINK, HeaderValue::from_static("</a>; rel=next"));
    headers.append(header::LINK, HeaderValue::from_static("</b>; rel=prev"));
    let mut e = CachedEntry::new(
        StatusCode::OK,
        headers,
        Bytes::from_static(b"{\"id\":1}"),
        1_700_000_000_000,
        3_600_000,
    );
    e.initial_age_ms = 12_000;
    e.stale_while_revalidate_ms = 30_000;
    e.stale_if_error_ms = 600_000;
    e.tags = vec!["product:acme:1".into(), "ünïcode".into()];
    e.vary = vec![
        (header::ACCEPT_LANGUAGE, Some(HeaderValue::from_static("en"))),
        (header::ACCEPT_ENCODING, None),
    ];
    e
}

#[test]
fn round_trips() {
    let e = sample();
    assert_eq!(decode(encode(&e)).unwrap(), e);
}

#[test]
fn rejects_foreign_and_damaged_bytes() {
    assert_eq!(decode(Bytes::from_static(b"{\"json\":true}")), Err(CodecError::BadMagic));
    assert_eq!(decode(Bytes::new()), Err(CodecError::Truncated("magic")));
    let mut v2 = encode(&sample()).to_vec();
    v2[3] = 2;
    assert_eq!(decode(v2.into()), Err(CodecError::UnsupportedVersion(2)));
    let full = encode(&sample());
    for cut in 0..full.len() {
        assert!(decode(full.slice(..cut)).is_err(), "prefix of {cut} bytes decoded");
    }
    let mut extra = full.to_vec();
    extra.push(0);
    assert_eq!(decode(extra.into()), Err(CodecError::TrailingBytes(1)));
}

#[test]
fn huge_counts_do_not_allocate() {
    let mut bytes = encode(&CachedEntry::new(StatusCode::OK, HeaderMap::new(), Bytes::new(), 0, 0)).to_vec();
    let headers_at = 3 + 1 + 1 + 2 + 40;
    bytes[headers_at..headers_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(decode(bytes.into()), Err(CodecError::Truncated(_))));
}

#[test]
fn too_many_headers_is_an_error_not_a_panic() {
    let mut bytes = encode(&CachedEntry::new(StatusCode::OK, HeaderMap::new(), Bytes::new(), 0, 0)).to_vec();
    let headers_at = 3 + 1 + 1 + 2 + 40;
    let tail = bytes.split_off(headers_at + 4);
    let count: u32 = 40_000;
    bytes.truncate(headers_at);
    bytes.extend_from_slice(&count.to_be_bytes());
    for i in 0..count {
        let name = format!("x-{i}");
        bytes.extend_from_slice(&(name.len() as u16).to_be_bytes());
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.push(b'v');
    }
    bytes.extend_from_slice(&tail);
    assert_eq!(decode(bytes.into()), Err(CodecError::Invalid("too many headers")));
}

/// Offset of the flags byte.
const FLAGS_AT: usize = 4;

fn with_body(body: impl Into<Bytes>) -> CachedEntry {
    let mut e = sample();
    e.body = body.into();
    e
}

/// A JSON-like body that compresses well.
fn compressible(len: usize) -> Bytes {
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

fn random(len: usize, seed: u64) -> Bytes {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect::<Vec<_>>().into()
}

/// `e` encoded (not compressed) with its body field replaced by `field`
/// and the flags byte set to `flags`.
fn with_body_field(e: &CachedEntry, flags: u8, field: &[u8]) -> Bytes {
    let mut bytes = encode(e).to_vec();
    bytes.truncate(bytes.len() - e.body.len() - 4);
    bytes[FLAGS_AT] = flags;
    bytes.extend_from_slice(&u32::try_from(field.len()).unwrap().to_be_bytes());
    bytes.extend_from_slice(field);
    bytes.into()
}

fn compressed_field(uncompressed_len: u32, block: &[u8]) -> Vec<u8> {
    let mut field = uncompressed_len.to_be_bytes().to_vec();
    field.extend_from_slice(block);
    field
}

#[test]
fn compressed_round_trips_and_is_smaller() {
    let e = with_body(compressible(64 * 1024));
    let plain = encode(&e);
    let compressed = encode_compressed(&e, DEFAULT_COMPRESS_ABOVE);
    assert_eq!(compressed[FLAGS_AT], FLAG_LZ4);
    assert!(compressed.len() * 4 < plain.len(), "{} vs {}", compressed.len(), plain.len());
    assert_eq!(decode(compressed).unwrap(), e);
    assert_eq!(decode(plain).unwrap(), e);
}

#[test]
fn compression_threshold_is_respected() {
    let e = with_body(compressible(DEFAULT_COMPRESS_ABOVE - 1));
    assert_eq!(encode_compressed(&e, DEFAULT_COMPRESS_ABOVE), encode(&e));
    assert_eq!(encode_compressed(&e, usize::MAX), encode(&e));
    let compressed = encode_compressed(&e, DEFAULT_COMPRESS_ABOVE - 1);
    assert_eq!(compressed[FLAGS_AT], FLAG_LZ4);
    assert_eq!(decode(compressed).unwrap(), e);
    // An empty or tiny body never gets smaller.
    for body in [&b""[..], b"a", b"aaaa"] {
        let e = with_body(Bytes::from_static(body));
        assert_eq!(encode_compressed(&e, 0), encode(&e));
    }
}

#[test]
fn incompressible_body_is_stored_plain() {
    let e = with_body(random(64 * 1024, 7));
    assert_eq!(encode_compressed(&e, 0), encode(&e));
}

#[test]
fn the_most_compressible_bodies_are_compressed_and_read_back() {
    // LZ4's best ratio (about 255:1) stays within what a reader accepts.
    for len in [64 * 1024, 4 << 20] {
        let e = with_body(vec![0u8; len]);
        let encoded = encode_compressed(&e, 0);
        assert_eq!(encoded[FLAGS_AT], FLAG_LZ4);
        assert!(encoded.len() < len / 100 + 256, "{len} zeros take {} bytes", encoded.len());
        assert_eq!(decode(encoded).unwrap(), e);
    }
}

#[test]
fn the_fetch_time_round_trips_behind_its_flag() {
    let plain = sample();
    assert_eq!(encode(&plain)[FLAGS_AT], 0, "no fetch time, no flag");
    let mut timed = sample();
    timed.fetch_ms = 42;
    let bytes = encode(&timed);
    assert_eq!(bytes[FLAGS_AT], FLAG_FETCH_TIME);
    assert_eq!(bytes.len(), encode(&plain).len() + 8);
    assert_eq!(decode(bytes).unwrap(), timed);
    // The flag without the field: the rest no longer parses.
    let mut lying = encode(&plain).to_vec();
    lying[FLAGS_AT] = FLAG_FETCH_TIME;
    assert!(decode(lying.into()).is_err());
}

#[test]
fn unknown_flag_bits_are_rejected() {
    let plain = encode(&sample()).to_vec();
    let compressed = encode_compressed(&with_body(compressible(4096)), 0).to_vec();
    for bit in 2..8 {
        for base in [&plain, &compressed] {
            let mut bytes = base.clone();
            bytes[FLAGS_AT] |= 1 << bit;
            assert_eq!(decode(bytes.into()), Err(CodecError::Invalid("flags")), "bit {bit}");
        }
    }
}

#[test]
fn damaged_compressed_bodies_are_errors() {
    let body = compressible(8192);
    let e = with_body(Bytes::new());
    let block = lz4_flex::block::compress(&body);
    let len = u32::try_from(body.len()).unwrap();
    let decoded = decode(with_body_field(&e, FLAG_LZ4, &compressed_field(len, &block))).unwrap();
    assert_eq!(decoded.body, body);

    let invalid = |field: &[u8]| decode(with_body_field(&e, FLAG_LZ4, field)).unwrap_err();
    // No room for the uncompressed length.
    for short in 0..4 {
        assert_eq!(invalid(&vec![0; short]), CodecError::Truncated("uncompressed body length"));
    }
    // A size that lies, either way.
    for lie in [len - 1, len + 1, 0, 1] {
        assert_eq!(
            invalid(&compressed_field(lie, &block)),
            CodecError::Invalid("compressed body"),
            "{lie}"
        );
    }
    // A size beyond the bound is rejected before allocating.
    let bound = u32::try_from(max_uncompressed_len(block.len())).unwrap();
    assert!(matches!(invalid(&compressed_field(bound, &block)), CodecError::Invalid(_)));
    for huge in [bound + 1, 1 << 30, u32::MAX] {
        assert_eq!(
            invalid(&compressed_field(huge, &block)),
            CodecError::Invalid("uncompressed body length")
        );
    }
    assert_eq!(
        invalid(&compressed_field(u32::MAX, b"")),
        CodecError::Invalid("uncompressed body length")
    );
    // Damaged blocks.
    assert_eq!(invalid(&compressed_field(len, b"")), CodecError::Invalid("compressed body"));
    for cut in [1, block.len() / 2, block.len() - 1] {
        assert_eq!(
            invalid(&compressed_field(len, &block[..cut])),
            CodecError::Invalid("compressed body"),
            "{cut}"
        );
    }
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..2000 {
        let mut damaged = block.clone();
        for _ in 0..rng.usize(1..4) {
            let i = rng.usize(..damaged.len());
            damaged[i] = rng.u8(..);
        }
        let _ = decode(with_body_field(&e, FLAG_LZ4, &compressed_field(len, &damaged)));
    }
    // A plain body with the flag set.
    assert!(decode(with_body_field(&e, FLAG_LZ4, &body)).is_err());
}

#[test]
fn long_ff_run_is_an_error_not_an_overflow() {
    // A literal length made of 0xFF bytes overflows lz4_flex's u32 sum.
    let mut block = vec![0xF0];
    block.resize(1 + MAX_FF_RUN, 0xFF);
    block.push(0x01);
    let e = with_body(Bytes::new());
    let got = decode(with_body_field(&e, FLAG_LZ4, &compressed_field(100, &block)));
    assert_eq!(got, Err(CodecError::Invalid("compressed body")));
}

fn arb_entry() -> impl Strategy<Value = CachedEntry> {
    let header = ("[a-z][a-z0-9-]{0,15}", "[ -~]{0,40}");
    (
        100u16..600,
        proptest::collection::vec(header, 0..8),
        arb_body(),
        any::<[u64; 6]>(),
        proptest::collection::vec(".{0,20}", 0..5),
    )
        .prop_map(|(status, hs, body, times, tags)| {
            let mut headers = HeaderMap::new();
            for (n, v) in hs {
                headers.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(&v).unwrap());
            }
            let mut e = CachedEntry::new(StatusCode::from_u16(status).unwrap(), headers, body.into(), times[0], times[1]);
            e.initial_age_ms = times[2];
            e.stale_while_revalidate_ms = times[3];
            e.stale_if_error_ms = times[4];
            // Half the entries without a fetch time (the flag unset).
            e.fetch_ms = if times[5] % 2 == 0 { 0 } else { times[5] };
            e.tags = tags;
            e
        })
}

/// Random bytes (incompressible) or a short pattern repeated (compressible).
fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (proptest::collection::vec(any::<u8>(), 1..16), 0..4096usize).prop_map(|(pattern, len)| pattern
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect()),
    ]
}

proptest! {
    #[test]
    fn any_entry_round_trips_compressed(e in arb_entry(), min_body_len in 0..5000usize) {
        let encoded = encode_compressed(&e, min_body_len);
        if e.body.len() < min_body_len {
            prop_assert_eq!(&encoded, &encode(&e));
        }
        prop_assert!(encoded.len() <= encode(&e).len());
        prop_assert_eq!(decode(encoded).unwrap(), e);
    }

    #[test]
    fn arbitrary_compressed_bodies_never_panic(
        field in proptest::collection::vec(any::<u8>(), 0..512),
        declared in prop_oneof![Just(None), (0..70_000u32).prop_map(Some)],
    ) {
        let e = CachedEntry::new(StatusCode::OK, HeaderMap::new(), Bytes::new(), 0, 0);
        let field = match declared {
            // Arbitrary bytes, the first four read as the declared size.
            None => field,
            // A plausible declared size before arbitrary block bytes.
            Some(len) => compressed_field(len, &field),
        };
        let _ = decode(with_body_field(&e, FLAG_LZ4, &field));
    }

    #[test]
    fn corrupted_compressed_entries_never_panic(e in arb_entry(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = encode_compressed(&e, 0).to_vec();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = decode(bytes.into());
    }

    #[test]
    fn any_entry_round_trips(e in arb_entry()) {
        prop_assert_eq!(decode(encode(&e)).unwrap(), e);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(bytes.into());
    }

    #[test]
    fn corrupted_entries_never_panic(e in arb_entry(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = encode(&e).to_vec();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = decode(bytes.into());
    }
}
