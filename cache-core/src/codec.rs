//! A compact, versioned binary encoding of [`CachedEntry`] for shared stores.
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! magic "HCE" | version u8 | flags u8 | status u16
//! stored_at u64 | initial_age u64 | fresh_for u64 | swr u64 | sie u64   (ms)
//! headers: count u32, then per header: name (u16 len, bytes), value (u32 len, bytes)
//! vary:    count u16, then per header: name (u16 len, bytes), present u8, [value (u32 len, bytes)]
//! tags:    count u32, then per tag: u32 len, UTF-8 bytes
//! body:    u32 len, bytes
//! ```
//!
//! `flags` is reserved for body compression; version 1 writes 0 and rejects
//! any other value. Decoding never panics and never allocates more than the
//! input could describe: any malformed input is a [`CodecError`].

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::{CachedEntry, error::CodecError};

const MAGIC: &[u8; 3] = b"HCE";
/// The codec version written by [`encode`].
pub const VERSION: u8 = 1;

/// Encodes an entry.
pub fn encode(entry: &CachedEntry) -> Bytes {
    let mut out = BytesMut::with_capacity(entry.weight() + 64);
    out.put_slice(MAGIC);
    out.put_u8(VERSION);
    out.put_u8(0);
    out.put_u16(entry.status.as_u16());
    for ms in [
        entry.stored_at_ms,
        entry.initial_age_ms,
        entry.fresh_for_ms,
        entry.stale_while_revalidate_ms,
        entry.stale_if_error_ms,
    ] {
        out.put_u64(ms);
    }
    put_len32(&mut out, entry.headers.len());
    for (name, value) in &entry.headers {
        put_bytes16(&mut out, name.as_str().as_bytes());
        put_bytes32(&mut out, value.as_bytes());
    }
    out.put_u16(u16::try_from(entry.vary.len()).unwrap_or(u16::MAX));
    for (name, value) in entry.vary.iter().take(usize::from(u16::MAX)) {
        put_bytes16(&mut out, name.as_str().as_bytes());
        match value {
            Some(v) => {
                out.put_u8(1);
                put_bytes32(&mut out, v.as_bytes());
            }
            None => out.put_u8(0),
        }
    }
    put_len32(&mut out, entry.tags.len());
    for tag in &entry.tags {
        put_bytes32(&mut out, tag.as_bytes());
    }
    put_bytes32(&mut out, &entry.body);
    out.freeze()
}

fn put_len32(out: &mut BytesMut, len: usize) {
    out.put_u32(u32::try_from(len).expect("cached entries are far smaller than 4 GiB"));
}

fn put_bytes16(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u16(u16::try_from(bytes.len()).expect("header names are shorter than 64 KiB"));
    out.put_slice(bytes);
}

fn put_bytes32(out: &mut BytesMut, bytes: &[u8]) {
    put_len32(out, bytes.len());
    out.put_slice(bytes);
}

/// Decodes an entry. The body shares memory with `input`.
///
/// # Errors
///
/// Any input that is not an entry written by a compatible [`encode`].
pub fn decode(input: Bytes) -> Result<CachedEntry, CodecError> {
    let mut r = Reader { buf: input, pos: 0 };
    if r.take(3, "magic")?.as_ref() != MAGIC {
        return Err(CodecError::BadMagic);
    }
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    if r.u8("flags")? != 0 {
        return Err(CodecError::Invalid("flags"));
    }
    let status = StatusCode::from_u16(r.u16("status")?).map_err(|_| CodecError::Invalid("status"))?;
    let mut times = [0u64; 5];
    for t in &mut times {
        *t = r.u64("times")?;
    }
    let headers = read_headers(&mut r)?;
    let vary = read_vary(&mut r)?;
    let tags = read_tags(&mut r)?;
    let body_len = r.u32("body length")? as usize;
    let body = r.take(body_len, "body")?;
    if r.remaining() != 0 {
        return Err(CodecError::TrailingBytes(r.remaining()));
    }
    let [
        stored_at_ms,
        initial_age_ms,
        fresh_for_ms,
        stale_while_revalidate_ms,
        stale_if_error_ms,
    ] = times;
    Ok(CachedEntry {
        status,
        headers,
        body,
        stored_at_ms,
        initial_age_ms,
        fresh_for_ms,
        stale_while_revalidate_ms,
        stale_if_error_ms,
        tags,
        vary,
    })
}

fn read_headers(r: &mut Reader) -> Result<HeaderMap, CodecError> {
    let count = r.count32("header count", 6)?;
    let mut headers = HeaderMap::with_capacity(count.min(64));
    for _ in 0..count {
        let name = r.header_name()?;
        let value = r.header_value()?;
        headers
            .try_append(name, value)
            .map_err(|_| CodecError::Invalid("too many headers"))?;
    }
    Ok(headers)
}

fn read_vary(r: &mut Reader) -> Result<Vec<(HeaderName, Option<HeaderValue>)>, CodecError> {
    let count = usize::from(r.u16("vary count")?);
    let mut vary = Vec::with_capacity(count.min(r.remaining() / 3));
    for _ in 0..count {
        let name = r.header_name()?;
        let value = match r.u8("vary flag")? {
            0 => None,
            1 => Some(r.header_value()?),
            _ => return Err(CodecError::Invalid("vary flag")),
        };
        vary.push((name, value));
    }
    Ok(vary)
}

fn read_tags(r: &mut Reader) -> Result<Vec<String>, CodecError> {
    let count = r.count32("tag count", 4)?;
    let mut tags = Vec::with_capacity(count);
    for _ in 0..count {
        let len = r.u32("tag length")? as usize;
        let bytes = r.take(len, "tag")?;
        let tag = std::str::from_utf8(&bytes).map_err(|_| CodecError::Invalid("tag"))?;
        tags.push(tag.to_owned());
    }
    Ok(tags)
}

struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<Bytes, CodecError> {
        if len > self.remaining() {
            return Err(CodecError::Truncated(what));
        }
        let out = self.buf.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, CodecError> {
        self.array(what).map(u16::from_be_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        self.array(what).map(u32::from_be_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        self.array(what).map(u64::from_be_bytes)
    }

    /// A count of items that each take at least `min_item` bytes, checked
    /// against the remaining input so that no count can cause a large
    /// allocation.
    fn count32(&mut self, what: &'static str, min_item: usize) -> Result<usize, CodecError> {
        let count = self.u32(what)? as usize;
        if count.saturating_mul(min_item) > self.remaining() {
            return Err(CodecError::Truncated(what));
        }
        Ok(count)
    }

    fn header_name(&mut self) -> Result<HeaderName, CodecError> {
        let len = usize::from(self.u16("header name length")?);
        let bytes = self.take(len, "header name")?;
        HeaderName::from_bytes(&bytes).map_err(|_| CodecError::Invalid("header name"))
    }

    fn header_value(&mut self) -> Result<HeaderValue, CodecError> {
        let len = self.u32("header value length")? as usize;
        let bytes = self.take(len, "header value")?;
        HeaderValue::from_maybe_shared(bytes).map_err(|_| CodecError::Invalid("header value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;
    use proptest::prelude::*;

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

    fn arb_entry() -> impl Strategy<Value = CachedEntry> {
        let header = ("[a-z][a-z0-9-]{0,15}", "[ -~]{0,40}");
        (
            100u16..600,
            proptest::collection::vec(header, 0..8),
            proptest::collection::vec(any::<u8>(), 0..256),
            any::<[u64; 5]>(),
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
                e.tags = tags;
                e
            })
    }

    proptest! {
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
}
