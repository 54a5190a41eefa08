//! A compact, versioned binary encoding of [`CachedEntry`] for shared stores.
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! magic "HCE" | version u8 | flags u8 | status u16
//! stored_at u64 | initial_age u64 | fresh_for u64 | swr u64 | sie u64   (ms)
//! [fetch u64 (ms), when flag 0x02 is set]
//! headers: count u32, then per header: name (u16 len, bytes), value (u32 len, bytes)
//! vary:    count u16, then per header: name (u16 len, bytes), present u8, [value (u32 len, bytes)]
//! tags:    count u32, then per tag: u32 len, UTF-8 bytes
//! body:    u32 len, bytes
//!          (flag 0x01 set: the bytes are: uncompressed len u32, LZ4 block)
//! ```
//!
//! `flags` bit `0x01` marks a compressed body: the body field then holds the
//! uncompressed length followed by the body in the LZ4 *block* format (no
//! frame, no checksum). The uncompressed length may be at most
//! 256 × the LZ4 block's length + 64 KiB (LZ4 cannot compress better than
//! about 255:1), and never more than 1 GiB; a body that would exceed that
//! is written uncompressed. All other flag
//! bits are reserved: decoding rejects an entry with any of them set.
//! [`encode`] never compresses; [`encode_compressed`] compresses a body when
//! that makes the entry smaller. [`decode`] reads both, so every reader can
//! read what any writer stores.
//!
//! Decoding never panics and never allocates more than the input could
//! describe (for a compressed body: the bound above): any malformed input is a
//! [`CodecError`].

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::{CachedEntry, error::CodecError};

const MAGIC: &[u8; 3] = b"HCE";
/// The codec version written by [`encode`].
pub const VERSION: u8 = 1;

/// Flag bit: the body field holds `uncompressed len u32 | LZ4 block`.
const FLAG_LZ4: u8 = 0x01;
/// Every flag bit this version understands.
/// The origin's fetch time follows the five times.
const FLAG_FETCH_TIME: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_LZ4 | FLAG_FETCH_TIME;
/// The largest uncompressed body a compressed entry may declare.
const MAX_UNCOMPRESSED_BODY: usize = 1 << 30;
/// A run of this many `0xFF` bytes in an LZ4 block overflows the `u32` that
/// `lz4_flex` sums a length into (a panic in builds with overflow checks).
/// No block of a body within [`MAX_UNCOMPRESSED_BODY`] written by
/// `lz4_flex` holds such a run: its length fields are shorter than
/// 1 GiB / 255, and it encodes runs of equal bytes as matches.
const MAX_FF_RUN: usize = (u32::MAX / 255) as usize;

/// The body size at or above which stores compress bodies by default (see
/// [`encode_compressed`]). Smaller bodies gain too little to be worth the
/// work.
pub const DEFAULT_COMPRESS_ABOVE: usize = 1024;

/// Encodes an entry. The body is never compressed.
///
/// # Errors
///
/// [`CodecError::TooLarge`] for a field the layout cannot describe: a body,
/// header value or tag of 4 GiB or more, a header name of 64 KiB or more.
pub fn encode(entry: &CachedEntry) -> Result<Bytes, CodecError> {
    encode_with_body(entry, 0, &[], &entry.body)
}

/// Encodes an entry, with its body compressed (LZ4) when the body has at
/// least `min_body_len` bytes and compressing makes the entry smaller.
/// Otherwise the output is the same as [`encode`]'s.
///
/// [`decode`] reads both forms; [`DEFAULT_COMPRESS_ABOVE`] is a reasonable
/// `min_body_len`.
///
/// # Errors
///
/// As [`encode`].
pub fn encode_compressed(entry: &CachedEntry, min_body_len: usize) -> Result<Bytes, CodecError> {
    let body = &entry.body[..];
    if body.len() < min_body_len || body.len() > MAX_UNCOMPRESSED_BODY {
        return encode(entry);
    }
    let block = lz4_flex::block::compress(body);
    // Compressed, the body field holds 4 more bytes (the uncompressed length).
    let smaller = block.len().saturating_add(4) < body.len();
    if !smaller || body.len() > max_uncompressed_len(block.len()) {
        return encode(entry);
    }
    let uncompressed_len = u32::try_from(body.len()).map_err(|_| CodecError::TooLarge("body"))?;
    encode_with_body(entry, FLAG_LZ4, &uncompressed_len.to_be_bytes(), &block)
}

/// Encodes an entry whose body field is `body_prefix` followed by `body`.
fn encode_with_body(entry: &CachedEntry, flags: u8, body_prefix: &[u8], body: &[u8]) -> Result<Bytes, CodecError> {
    let capacity = entry.weight() - entry.body.len() + body_prefix.len() + body.len() + 64;
    let mut out = BytesMut::with_capacity(capacity);
    out.put_slice(MAGIC);
    out.put_u8(VERSION);
    let flags = if entry.fetch_ms > 0 { flags | FLAG_FETCH_TIME } else { flags };
    out.put_u8(flags);
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
    if entry.fetch_ms > 0 {
        out.put_u64(entry.fetch_ms);
    }
    put_len32(&mut out, entry.headers.len(), "header count")?;
    for (name, value) in entry.headers.iter() {
        put_bytes16(&mut out, name.as_str().as_bytes(), "header name")?;
        put_bytes32(&mut out, value.as_bytes(), "header value")?;
    }
    out.put_u16(u16::try_from(entry.vary.len()).map_err(|_| CodecError::TooLarge("vary count"))?);
    for (name, value) in &entry.vary {
        put_bytes16(&mut out, name.as_str().as_bytes(), "vary name")?;
        match value {
            Some(v) => {
                out.put_u8(1);
                put_bytes32(&mut out, v.as_bytes(), "vary value")?;
            }
            None => out.put_u8(0),
        }
    }
    put_len32(&mut out, entry.tags.len(), "tag count")?;
    for tag in &entry.tags {
        put_bytes32(&mut out, tag.as_bytes(), "tag")?;
    }
    put_len32(&mut out, body_prefix.len() + body.len(), "body")?;
    out.put_slice(body_prefix);
    out.put_slice(body);
    Ok(out.freeze())
}

/// The largest uncompressed length a compressed body of `block_len` bytes
/// (the LZ4 block, without the length before it) may declare.
fn max_uncompressed_len(block_len: usize) -> usize {
    block_len.saturating_mul(256).saturating_add(64 * 1024).min(MAX_UNCOMPRESSED_BODY)
}

/// Decompresses a compressed body field (`uncompressed len u32 | LZ4 block`).
fn decompress_body(field: &[u8]) -> Result<Bytes, CodecError> {
    let Some((len, block)) = field.split_first_chunk::<4>() else {
        return Err(CodecError::Truncated("uncompressed body length"));
    };
    let len = u32::from_be_bytes(*len) as usize;
    if len > max_uncompressed_len(block.len()) {
        return Err(CodecError::Invalid("uncompressed body length"));
    }
    if block.len() >= MAX_FF_RUN && block.split(|&b| b != 0xFF).any(|run| run.len() >= MAX_FF_RUN) {
        return Err(CodecError::Invalid("compressed body"));
    }
    let mut body = vec![0; len];
    match lz4_flex::block::decompress_into(block, &mut body) {
        Ok(written) if written == len => Ok(body.into()),
        _ => Err(CodecError::Invalid("compressed body")),
    }
}

fn put_len32(out: &mut BytesMut, len: usize, what: &'static str) -> Result<(), CodecError> {
    out.put_u32(u32::try_from(len).map_err(|_| CodecError::TooLarge(what))?);
    Ok(())
}

fn put_bytes16(out: &mut BytesMut, bytes: &[u8], what: &'static str) -> Result<(), CodecError> {
    out.put_u16(u16::try_from(bytes.len()).map_err(|_| CodecError::TooLarge(what))?);
    out.put_slice(bytes);
    Ok(())
}

fn put_bytes32(out: &mut BytesMut, bytes: &[u8], what: &'static str) -> Result<(), CodecError> {
    put_len32(out, bytes.len(), what)?;
    out.put_slice(bytes);
    Ok(())
}

/// Decodes an entry written by [`encode`] or [`encode_compressed`]. An
/// uncompressed body shares memory with `input`; a compressed one is
/// decompressed into a new buffer.
///
/// # Errors
///
/// Any input that is not an entry written by a compatible [`encode`] or
/// [`encode_compressed`], including a compressed body that does not
/// decompress to exactly its declared length or declares more than the
/// bound in the [module docs](self).
pub fn decode(input: Bytes) -> Result<CachedEntry, CodecError> {
    let mut r = Reader { buf: input, pos: 0 };
    if r.take(3, "magic")?.as_ref() != MAGIC {
        return Err(CodecError::BadMagic);
    }
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    let flags = r.u8("flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(CodecError::Invalid("flags"));
    }
    let status = StatusCode::from_u16(r.u16("status")?).map_err(|_| CodecError::Invalid("status"))?;
    let mut times = [0u64; 5];
    for t in &mut times {
        *t = r.u64("times")?;
    }
    let fetch_ms = match flags & FLAG_FETCH_TIME {
        0 => 0,
        _ => r.u64("fetch time")?,
    };
    let headers = read_headers(&mut r)?;
    let vary = read_vary(&mut r)?;
    let tags = read_tags(&mut r)?;
    let body_len = r.u32("body length")? as usize;
    let body = r.take(body_len, "body")?;
    if r.remaining() != 0 {
        return Err(CodecError::TrailingBytes(r.remaining()));
    }
    let body = if flags & FLAG_LZ4 != 0 { decompress_body(&body)? } else { body };
    let [
        stored_at_ms,
        initial_age_ms,
        fresh_for_ms,
        stale_while_revalidate_ms,
        stale_if_error_ms,
    ] = times;
    let mut entry = CachedEntry::new(status, headers, body, stored_at_ms, fresh_for_ms);
    entry.initial_age_ms = initial_age_ms;
    entry.stale_while_revalidate_ms = stale_while_revalidate_ms;
    entry.stale_if_error_ms = stale_if_error_ms;
    entry.fetch_ms = fetch_ms;
    entry.tags = tags;
    entry.vary = vary;
    Ok(entry)
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
mod tests;
