//! `codec::decode` on arbitrary bytes.
//!
//! - Decoding never panics (any malformed input must be a `CodecError`),
//!   including compressed bodies (flag `0x01`) with damaged LZ4 blocks or
//!   lying sizes.
//! - Whatever decodes re-encodes to something that decodes to the same
//!   entry: `decode(encode(&e)) == Ok(e)`.
//! - The same through `encode_compressed`, with the input's last byte
//!   choosing the threshold; its output is never larger than `encode`'s and
//!   is `encode`'s when the body is below the threshold. The decoded body is
//!   also fed through `encode_compressed` with a threshold of 0, so that
//!   bodies that decoded uncompressed get compressed too.
#![no_main]

use bytes::Bytes;
use cache_core::store::codec::{decode, encode, encode_compressed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let plain = encode(&entry).expect("a decoded entry can be encoded");
    assert_eq!(decode(plain.clone()), Ok(entry.clone()), "decode(encode(e)) != e");

    let threshold = usize::from(data.last().copied().unwrap_or(0)) * 16;
    for min_body_len in [threshold, 0] {
        let compressed = encode_compressed(&entry, min_body_len).expect("a decoded entry can be encoded");
        assert!(compressed.len() <= plain.len(), "encode_compressed grew the entry");
        if entry.body.len() < min_body_len {
            assert_eq!(compressed, plain, "body below the threshold was compressed");
        }
        assert_eq!(decode(compressed), Ok(entry.clone()), "decode(encode_compressed(e)) != e");
    }
});
