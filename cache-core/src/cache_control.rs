//! `Cache-Control` directives (RFC 9111 §5.2).

use http::{HeaderMap, header};

/// The directives of every `Cache-Control` field of a message, names
/// lower-cased, values unquoted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    directives: Vec<(String, Option<String>)>,
}

impl CacheControl {
    /// Parses every `Cache-Control` field in `headers`. Malformed elements
    /// are skipped; parsing never fails.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::from_field(headers, &header::CACHE_CONTROL)
    }

    /// Parses every field `name` in `headers` with the `Cache-Control`
    /// syntax, such as `CDN-Cache-Control` (RFC 9213).
    pub fn from_field(headers: &HeaderMap, name: &http::HeaderName) -> Self {
        let mut directives = Vec::new();
        for value in headers.get_all(name) {
            let Ok(text) = value.to_str() else { continue };
            parse_into(text, &mut directives);
        }
        CacheControl { directives }
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
}

fn parse_into(text: &str, out: &mut Vec<(String, Option<String>)>) {
    let mut rest = text;
    while !rest.is_empty() {
        let (element, tail) = split_element(rest);
        rest = tail;
        let element = element.trim();
        if element.is_empty() {
            continue;
        }
        let (name, value) = match element.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
            None => (element, None),
        };
        if !name.is_empty() {
            out.push((name.to_ascii_lowercase(), value));
        }
    }
}

/// Splits at the first comma outside a quoted string.
fn split_element(text: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => return (&text[..i], &text[i + 1..]),
            _ => {}
        }
    }
    (text, "")
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_owned(),
    }
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
    fn tolerates_junk() {
        let cc = parse(&[",,no-store,, =x, max-age=abc"]);
        assert!(cc.has("no-store"));
        assert_eq!(cc.seconds("max-age"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "[ -~]{0,60}") {
            if let Ok(v) = HeaderValue::from_str(&s) {
                let mut h = HeaderMap::new();
                h.insert(header::CACHE_CONTROL, v);
                let _ = CacheControl::from_headers(&h);
            }
        }
    }
}
