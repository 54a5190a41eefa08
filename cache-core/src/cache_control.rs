//! `Cache-Control` directives (RFC 9111 §5.2).

use http::{HeaderMap, header};

/// The directives of every `Cache-Control` field of a message, names
/// lower-cased, values unquoted.
///
/// Parsing never fails, but it fails closed: a field that is not a valid
/// list of directives (RFC 9111 §5.2: `token [ "=" ( token /
/// quoted-string ) ]`, comma-separated) makes the whole header
/// [`malformed`](CacheControl::is_malformed), and the engine then stores
/// nothing: a directive it could not read might have been `private` or
/// `no-store`. Non-ASCII bytes (`obs-text`) are valid inside a quoted
/// string, and read as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    directives: Vec<(String, Option<String>)>,
    malformed: bool,
}

impl CacheControl {
    /// Parses every `Cache-Control` field in `headers`.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::from_field(headers, &header::CACHE_CONTROL)
    }

    /// Parses every field `name` in `headers` with the `Cache-Control`
    /// syntax, such as `CDN-Cache-Control` (RFC 9213).
    pub fn from_field(headers: &HeaderMap, name: &http::HeaderName) -> Self {
        let mut cc = CacheControl::default();
        for value in headers.get_all(name) {
            if parse_into(value.as_bytes(), &mut cc.directives).is_err() {
                cc.malformed = true;
            }
        }
        cc
    }

    /// Whether the directive is present.
    pub fn has(&self, name: &str) -> bool {
        self.directives.iter().any(|(n, _)| n == name)
    }

    /// The value of a directive such as `max-age`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.directives.iter().find(|(n, _)| n == name)?.1.as_deref()
    }

    /// A directive's value as seconds (`max-age=60`), if present and valid.
    pub fn seconds(&self, name: &str) -> Option<u64> {
        self.value(name)?.parse().ok()
    }

    /// Whether no directive is present.
    pub fn is_empty(&self) -> bool {
        self.directives.is_empty()
    }

    /// Whether some field could not be parsed as a list of directives. The
    /// directives read before the fault in that field, and those of the
    /// other fields, are still there.
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }
}

/// A `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses one field value: `#cache-directive`, empty elements allowed
/// (RFC 9110 §5.6.1). `Err` at the first byte that does not fit.
fn parse_into(field: &[u8], out: &mut Vec<(String, Option<String>)>) -> Result<(), ()> {
    let mut rest = field;
    loop {
        rest = skip_ows(rest);
        match rest.first() {
            None => return Ok(()),
            Some(b',') => {
                rest = &rest[1..];
                continue;
            }
            Some(_) => {}
        }
        let name_len = rest.iter().take_while(|&&b| is_tchar(b)).count();
        if name_len == 0 {
            return Err(());
        }
        let name = String::from_utf8_lossy(&rest[..name_len]).to_ascii_lowercase();
        rest = skip_ows(&rest[name_len..]);
        let mut value = None;
        if let Some(after) = rest.strip_prefix(b"=") {
            let after = skip_ows(after);
            let (v, tail) = match after.first() {
                Some(b'"') => quoted(&after[1..])?,
                _ => {
                    let len = after.iter().take_while(|&&b| is_tchar(b)).count();
                    if len == 0 {
                        return Err(());
                    }
                    (after[..len].to_vec(), &after[len..])
                }
            };
            value = Some(String::from_utf8_lossy(&v).into_owned());
            rest = skip_ows(tail);
        }
        out.push((name, value));
        match rest.first() {
            None => return Ok(()),
            Some(b',') => rest = &rest[1..],
            Some(_) => return Err(()),
        }
    }
}

fn skip_ows(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &bytes[n..]
}

/// The content of a quoted string whose opening quote is already read, and
/// what follows its closing quote.
fn quoted(bytes: &[u8]) -> Result<(Vec<u8>, &[u8]), ()> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok((out, &bytes[i + 1..])),
            b'\\' => {
                let escaped = *bytes.get(i + 1).ok_or(())?;
                out.push(escaped);
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Err(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(values: &[&'static str]) -> CacheControl {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::CACHE_CONTROL, HeaderValue::from_static(v));
        }
        CacheControl::from_headers(&h)
    }

    #[test]
    fn parses_directives_across_fields() {
        let cc = parse(&["Public, Max-Age=60", "s-maxage=\"120\", private=\"set-cookie, x-a\""]);
        assert!(cc.has("public"));
        assert_eq!(cc.seconds("max-age"), Some(60));
        assert_eq!(cc.seconds("s-maxage"), Some(120));
        assert_eq!(cc.value("private"), Some("set-cookie, x-a"));
        assert!(!cc.has("no-store"));
        assert!(!cc.has("x-a\""));
    }

    #[test]
    fn empty_elements_and_bad_values_are_tolerated() {
        let cc = parse(&[",,no-store,, max-age=abc ,"]);
        assert!(cc.has("no-store"));
        assert_eq!(cc.seconds("max-age"), None);
        assert!(!cc.is_malformed());
    }

    #[test]
    fn what_cannot_be_parsed_fails_closed() {
        for field in [
            " =x",
            "max-age=60 60",
            "private, x=\"open",
            "a=",
            "a b",
            "no-store;",
            "a=\"x\"y",
            "@",
        ] {
            let cc = parse(&[field]);
            assert!(cc.is_malformed(), "{field:?}");
        }
        let mut h = HeaderMap::new();
        h.append(header::CACHE_CONTROL, HeaderValue::from_bytes(b"private, x=\"\xc3\xbc\"").unwrap());
        let cc = CacheControl::from_headers(&h);
        assert!(cc.has("private") && !cc.is_malformed(), "obs-text in a quoted string is valid");
        assert_eq!(cc.value("x"), Some("\u{fc}"));
        let mut h = HeaderMap::new();
        h.append(header::CACHE_CONTROL, HeaderValue::from_bytes(b"max-age=60, x=\xc3\xbc").unwrap());
        assert!(CacheControl::from_headers(&h).is_malformed(), "but not in a token");
    }

    /// A field made of directives, as written by a generator that does not
    /// share the parser's code: name, optional token or quoted value.
    fn directive() -> impl proptest::strategy::Strategy<Value = (String, Option<String>, bool)> {
        use proptest::strategy::Strategy as _;
        (
            "[a-zA-Z][a-zA-Z0-9-]{0,8}",
            proptest::option::of("[a-z0-9]{1,6}|[ a-z,=;\\\\\"]{0,6}"),
        )
            .prop_map(|(name, value)| {
                // A value of letters and digits goes as a token, any other in quotes.
                let quote = value
                    .as_ref()
                    .is_some_and(|v| v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric()));
                (name, value, quote)
            })
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in proptest::collection::vec(proptest::num::u8::ANY, 0..60)) {
            if let Ok(v) = HeaderValue::from_bytes(&s) {
                let mut h = HeaderMap::new();
                h.insert(header::CACHE_CONTROL, v);
                let _ = CacheControl::from_headers(&h);
            }
        }

        #[test]
        fn reads_back_what_was_written(directives in proptest::collection::vec(directive(), 0..6), space in "[ \t]{0,2}") {
            let mut field = String::new();
            for (i, (name, value, quote)) in directives.iter().enumerate() {
                if i > 0 {
                    field.push(',');
                    field.push_str(&space);
                }
                field.push_str(name);
                if let Some(v) = value {
                    field.push('=');
                    if *quote {
                        field.push('"');
                        for c in v.chars() {
                            if c == '"' || c == '\\' {
                                field.push('\\');
                            }
                            field.push(c);
                        }
                        field.push('"');
                    } else {
                        field.push_str(v);
                    }
                }
            }
            let mut h = HeaderMap::new();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_str(&field).unwrap());
            let cc = CacheControl::from_headers(&h);
            proptest::prop_assert!(!cc.is_malformed(), "{}", field);
            let want: Vec<_> = directives.iter().map(|(n, v, _)| (n.to_ascii_lowercase(), v.clone())).collect();
            proptest::prop_assert_eq!(cc.directives, want);
        }
    }
}
