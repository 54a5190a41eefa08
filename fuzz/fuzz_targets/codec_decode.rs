//! `codec::decode` on arbitrary bytes.
//!
//! - Decoding never panics (any malformed input must be a `CodecError`).
//! - Whatever decodes re-encodes to something that decodes to the same
//!   entry: `decode(encode(&e)) == Ok(e)`.
#![no_main]

use bytes::Bytes;
use cache_core::codec::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let reencoded = encode(&entry);
    assert_eq!(decode(reencoded), Ok(entry), "decode(encode(e)) != e");
});
