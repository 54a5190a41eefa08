//! `codec::decode` on real encoded entries, then on damaged copies of them.
//!
//! Random bytes rarely get past the codec's header, so this target builds a
//! valid `CachedEntry` from the input (status 100..=999, headers with valid
//! names and values, a `Vary` list with present and absent values, UTF-8
//! tags, a body that is sometimes a repeated pattern so that the LZ4 path is
//! taken, all six times) and encodes it with `encode` or
//! `encode_compressed(&e, threshold)`.
//!
//! - The encoded entry decodes to itself: `decode(encoded) == Ok(e)`
//!   (an entry built with `CachedEntry::new` carries no stamp and no hit
//!   headers, which are not encoded, so the whole entry compares equal).
//! - `encode_compressed` is never larger than `encode`, and is `encode`'s
//!   output when the body is below the threshold.
//! - Then a list of byte mutations (overwrite, flip a bit, write a
//!   big-endian `u32` over a length field, insert, remove, truncate; every
//!   position taken modulo the length) is applied to the encoded bytes.
//!   Decoding the result never panics, and whatever decodes re-encodes
//!   (plain and compressed) to something that decodes to the same entry.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use cache_core::{
    CachedEntry,
    store::codec::{decode, encode, encode_compressed},
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;

/// Header names a response really carries (and `Vary` really names).
const KNOWN_NAMES: &[&str] = &[
    "content-type",
    "etag",
    "last-modified",
    "cache-control",
    "vary",
    "link",
    "set-cookie",
    "accept-language",
    "accept-encoding",
    "x-tenant-id",
    "content-encoding",
    "expires",
];

/// Characters of an HTTP token (a header name), lowercase.
const TOKEN_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_!#$%&'*+.^`|~";

#[derive(Debug, Arbitrary)]
enum Name {
    Known(u8),
    /// Mapped onto `TOKEN_CHARS`; an empty name becomes `x`.
    Custom(Vec<u8>),
}

impl Name {
    fn to_header_name(&self) -> HeaderName {
        let name = match self {
            Name::Known(i) => KNOWN_NAMES[usize::from(*i) % KNOWN_NAMES.len()].as_bytes().to_vec(),
            Name::Custom(bytes) if bytes.is_empty() => b"x".to_vec(),
            Name::Custom(bytes) => bytes
                .iter()
                .take(64)
                .map(|b| TOKEN_CHARS[usize::from(*b) % TOKEN_CHARS.len()])
                .collect(),
        };
        HeaderName::from_bytes(&name).expect("token characters make a valid header name")
    }
}

/// A header value: bytes `HeaderValue` rejects (controls other than tab,
/// DEL) are replaced by `?`; obs-text (0x80..) is kept.
fn header_value(bytes: &[u8]) -> HeaderValue {
    let valid: Vec<u8> = bytes
        .iter()
        .map(|&b| if (b >= 0x20 && b != 0x7f) || b == b'\t' { b } else { b'?' })
        .collect();
    HeaderValue::from_bytes(&valid).expect("visible bytes, tab and obs-text make a valid header value")
}

#[derive(Debug, Arbitrary)]
enum Body {
    /// Arbitrary bytes (mostly incompressible).
    Raw(Vec<u8>),
    /// `pattern` repeated up to `len % 16385` bytes: compressible.
    Repeated { pattern: Vec<u8>, len: u16 },
}

impl Body {
    fn to_bytes(&self) -> Bytes {
        match self {
            Body::Raw(bytes) => Bytes::copy_from_slice(bytes),
            Body::Repeated { pattern, len } => {
                let pattern: &[u8] = if pattern.is_empty() {
                    b"a"
                } else {
                    &pattern[..pattern.len().min(32)]
                };
                let len = usize::from(*len) % 16385;
                pattern.iter().copied().cycle().take(len).collect::<Vec<u8>>().into()
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Encoding {
    Plain,
    /// `encode_compressed(&e, threshold)`.
    Compressed {
        threshold: u16,
    },
}

#[derive(Debug, Arbitrary)]
enum Mutation {
    Overwrite {
        at: u32,
        byte: u8,
    },
    FlipBit {
        at: u32,
        bit: u8,
    },
    /// A big-endian `u32` over four bytes: lengths and counts that lie.
    WriteU32 {
        at: u32,
        value: u32,
    },
    Insert {
        at: u32,
        bytes: Vec<u8>,
    },
    Remove {
        at: u32,
        len: u8,
    },
    Truncate {
        len: u32,
    },
}

impl Mutation {
    fn apply(&self, buf: &mut Vec<u8>) {
        let len = buf.len();
        let pos = |at: u32, n: usize| if n == 0 { 0 } else { at as usize % n };
        match self {
            Mutation::Overwrite { at, byte } if len > 0 => buf[pos(*at, len)] = *byte,
            Mutation::FlipBit { at, bit } if len > 0 => buf[pos(*at, len)] ^= 1 << (bit % 8),
            Mutation::WriteU32 { at, value } if len >= 4 => {
                let i = pos(*at, len - 3);
                buf[i..i + 4].copy_from_slice(&value.to_be_bytes());
            }
            Mutation::Insert { at, bytes } => {
                let i = pos(*at, len + 1);
                buf.splice(i..i, bytes.iter().copied().take(64));
            }
            Mutation::Remove { at, len: n } if len > 0 => {
                let i = pos(*at, len);
                let end = (i + usize::from(*n).max(1)).min(len);
                buf.drain(i..end);
            }
            Mutation::Truncate { len: keep } => buf.truncate(pos(*keep, len + 1)),
            _ => {}
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    status: u16,
    headers: Vec<(Name, Vec<u8>)>,
    vary: Vec<(Name, Option<Vec<u8>>)>,
    tags: Vec<String>,
    body: Body,
    /// stored_at, initial_age, fresh_for, stale_while_revalidate,
    /// stale_if_error, fetch (0: no fetch time, its flag unset).
    times: [u64; 6],
    encoding: Encoding,
    mutations: Vec<Mutation>,
}

impl Input {
    fn entry(&self) -> CachedEntry {
        let status = StatusCode::from_u16(100 + self.status % 900).expect("100..=999 is a valid status");
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers.iter().take(64) {
            headers.append(name.to_header_name(), header_value(value));
        }
        let [stored_at, initial_age, fresh_for, swr, sie, fetch] = self.times;
        let mut e = CachedEntry::new(status, headers, self.body.to_bytes(), stored_at, fresh_for);
        e.initial_age_ms = initial_age;
        e.stale_while_revalidate_ms = swr;
        e.stale_if_error_ms = sie;
        e.fetch_ms = fetch;
        e.tags = self.tags.iter().take(32).cloned().collect();
        e.vary = self
            .vary
            .iter()
            .take(32)
            .map(|(name, value)| (name.to_header_name(), value.as_deref().map(header_value)))
            .collect();
        e
    }
}

/// `e` re-encoded, plain and compressed, decodes to itself.
fn assert_round_trips(e: &CachedEntry, what: &str) {
    let plain = encode(e).expect("a decoded entry can be encoded");
    assert_eq!(decode(plain.clone()).as_ref(), Ok(e), "{what}: decode(encode(e)) != e");
    let compressed = encode_compressed(e, 0).expect("a decoded entry can be encoded");
    assert!(compressed.len() <= plain.len(), "{what}: encode_compressed grew the entry");
    assert_eq!(decode(compressed).as_ref(), Ok(e), "{what}: decode(encode_compressed(e, 0)) != e");
}

fuzz_target!(|input: Input| {
    let entry = input.entry();
    let plain = encode(&entry).expect("a small entry can be encoded");
    let encoded = match input.encoding {
        Encoding::Plain => plain.clone(),
        Encoding::Compressed { threshold } => {
            let threshold = usize::from(threshold);
            let compressed = encode_compressed(&entry, threshold).expect("a small entry can be encoded");
            assert!(compressed.len() <= plain.len(), "encode_compressed grew the entry");
            if entry.body.len() < threshold {
                assert_eq!(compressed, plain, "body below the threshold was compressed");
            }
            compressed
        }
    };
    assert_eq!(decode(encoded.clone()).as_ref(), Ok(&entry), "decode(encode(e)) != e");

    if input.mutations.is_empty() {
        return;
    }
    let mut damaged = encoded.to_vec();
    for mutation in input.mutations.iter().take(16) {
        mutation.apply(&mut damaged);
    }
    if let Ok(decoded) = decode(Bytes::from(damaged)) {
        assert_round_trips(&decoded, "damaged entry");
    }
});
