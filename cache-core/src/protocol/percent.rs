//! Percent-escapes (RFC 3986 §2.1) in request targets: the normalisation
//! keys use, and the decoding frameworks' path extractors do.

use std::borrow::Cow;

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte `%XX` at the start of `bytes` stands for, if it is one.
pub(crate) fn escaped(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [b'%', hi, lo, ..] => Some(hex(*hi)? << 4 | hex(*lo)?),
        _ => None,
    }
}

/// An unreserved character (RFC 3986 §2.3): escaping one never changes
/// what a URI means.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Stands for a `%` that starts no escape in a target's normal form: a NUL byte never appears in a request target (`http` refuses
/// it), so the normal form of `/a%` is no other target's, `/a%25`'s
/// included, and that of `%%32F` is not `%2F`'s.
pub(crate) const LONE_PERCENT: char = '\0';

/// `text` in a normal form that keeps what every application sees of it,
/// byte for byte (RFC 3986 §6.2.2.2): escapes of unreserved characters
/// decoded (`%7E` → `~`, `%34%32` → `42`), other escapes kept as they are
/// (`%2F`, `%2f`, `%FF`), and a `%` that starts no escape written
/// `LONE_PERCENT`. Two targets with the same normal form are the same
/// bytes once unreserved escapes are decoded.
///
/// The reference the keys' one-pass `escape_target_into` is tested
/// against.
#[cfg(test)]
pub(crate) fn decode_unreserved(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    // On every request: most targets hold no `%` (a memchr).
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(text);
    }
    let changes = |i: usize| bytes[i] == b'%' && escaped(&bytes[i..]).is_none_or(is_unreserved);
    let Some(first) = (0..bytes.len()).find(|&i| changes(i)) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push_str(&text[..first]);
    let mut i = first;
    while i < bytes.len() {
        match escaped(&bytes[i..]) {
            Some(b) if is_unreserved(b) => {
                out.push(char::from(b));
                i += 3;
                continue;
            }
            Some(_) => {
                out.push_str(&text[i..i + 3]);
                i += 3;
            }
            None if bytes[i] == b'%' => {
                out.push(LONE_PERCENT);
                i += 1;
            }
            None => {}
        }
        // Copy up to the next `%` (a char boundary: `%` is ASCII).
        let next = bytes[i..].iter().position(|&b| b == b'%').map_or(bytes.len(), |p| i + p);
        out.push_str(&text[i..next]);
        i = next;
    }
    Cow::Owned(out)
}

/// `text` percent-decoded, as a framework's path extractor decodes a path
/// parameter (axum's `Path`, actix-web's `web::Path`): every valid escape,
/// the bytes read as UTF-8 (invalid sequences become U+FFFD; the
/// extractors reject such a request). `+` stays `+`.
pub(crate) fn decode(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match escaped(&bytes[i..]) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_escapes_are_decoded() {
        assert_eq!(decode_unreserved("/p/%34%32"), "/p/42");
        assert_eq!(decode_unreserved("/%7euser/%2Fx%2f%25%20+"), "/~user/%2Fx%2f%25%20+");
        assert_eq!(decode_unreserved("%FF%fe%"), "%FF%fe\0");
        assert_eq!(decode_unreserved("a%4"), "a\x004");
        assert_eq!(
            decode_unreserved("%%32F"),
            "\x002F",
            "a lone % never joins what follows into an escape"
        );
        assert_ne!(decode_unreserved("/a%"), decode_unreserved("/a%25"));
        assert_eq!(decode_unreserved("ü%41ü"), "üAü");
        assert!(matches!(decode_unreserved("/plain/path%2F"), Cow::Borrowed(_)));
    }

    #[test]
    fn decoding_matches_the_extractors() {
        assert_eq!(decode("%34%32"), "42");
        assert_eq!(decode("a%2Fb+c%20d"), "a/b+c d");
        assert_eq!(decode("%C3%BC"), "ü");
        assert_eq!(decode("%FF"), "\u{FFFD}");
        assert_eq!(decode("100%"), "100%");
    }

    /// Percent-decoding written from RFC 3986 §2.1 alone, sharing no code
    /// with the functions under test: the bytes an application sees.
    fn reference_decode(text: &str) -> Vec<u8> {
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let pair = b
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            match (b[i], pair) {
                (b'%', Some(v)) if b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() => {
                    out.push(v);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        out
    }

    proptest::proptest! {
        /// The normal form shows every decoder what the original shows it,
        /// so two targets share a normal form only if they decode alike.
        #[test]
        fn the_normal_form_decodes_like_the_original(s in "([a-z2F%~+/]|%[0-9a-fA-F]{2}|%[g-z]|ü){0,24}") {
            let normal = decode_unreserved(&s).replace(LONE_PERCENT, "%25");
            proptest::prop_assert_eq!(reference_decode(&normal), reference_decode(&s));
            let decoded = reference_decode(&s);
            proptest::prop_assert_eq!(decode(&s), String::from_utf8_lossy(&decoded));
        }

        /// Reserved characters never change form (`/`, `%`, `+`...).
        #[test]
        fn reserved_escapes_keep_their_bytes(a in "[a-z/+]{0,8}", b in "[a-z/+]{0,8}") {
            let raw = format!("{a}%2F{b}%2b%25");
            let normal = decode_unreserved(&raw).into_owned();
            proptest::prop_assert_eq!(normal, raw);
        }
    }
}
