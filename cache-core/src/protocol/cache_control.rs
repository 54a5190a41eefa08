//! `Cache-Control` directives (RFC 9111 §5.2), parsed into typed fields.

use http::{HeaderMap, header};

/// The directives of every `Cache-Control` field of a message.
///
/// Names are matched without regard to case. The directives RFC 9111 (and
/// RFC 5861, RFC 8246) define are read into typed fields; any other is kept,
/// name lower-cased and value unquoted, in [`extensions`](Self::extensions).
/// When a directive appears more than once, the first occurrence counts
/// (RFC 9111 §4.2.1). A directive that takes delta-seconds but carries no
/// valid number is present without a value: [`max_age`](Self::max_age) is
/// `None` for `max-age=abc`, and [`has_s_maxage`](Self::has_s_maxage) is
/// still true for `s-maxage=abc`.
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
    no_store: bool,
    no_cache: Option<Fields>,
    private: Option<Fields>,
    public: bool,
    must_revalidate: bool,
    proxy_revalidate: bool,
    must_understand: bool,
    no_transform: bool,
    only_if_cached: bool,
    immutable: bool,
    max_age: Option<Delta>,
    s_maxage: Option<Delta>,
    max_stale: Option<Delta>,
    min_fresh: Option<Delta>,
    stale_while_revalidate: Option<Delta>,
    stale_if_error: Option<Delta>,
    extensions: Vec<(String, Option<String>)>,
    /// Whether any directive was read.
    any: bool,
    malformed: bool,
}

/// The argument of a directive that takes delta-seconds: `None` when it is
/// missing or not a number.
type Delta = Option<u64>;

/// The field names a qualified `no-cache="a, b"` or `private="a"` lists;
/// empty when the directive is unqualified.
type Fields = Option<Box<str>>;

/// The directives read into typed fields.
#[derive(Clone, Copy)]
enum Known {
    NoStore,
    NoCache,
    Private,
    Public,
    MustRevalidate,
    ProxyRevalidate,
    MustUnderstand,
    NoTransform,
    OnlyIfCached,
    Immutable,
    MaxAge,
    SMaxage,
    MaxStale,
    MinFresh,
    StaleWhileRevalidate,
    StaleIfError,
}

impl Known {
    const ALL: [(&'static [u8], Known); 16] = [
        (b"no-store", Known::NoStore),
        (b"no-cache", Known::NoCache),
        (b"private", Known::Private),
        (b"public", Known::Public),
        (b"must-revalidate", Known::MustRevalidate),
        (b"proxy-revalidate", Known::ProxyRevalidate),
        (b"must-understand", Known::MustUnderstand),
        (b"no-transform", Known::NoTransform),
        (b"only-if-cached", Known::OnlyIfCached),
        (b"immutable", Known::Immutable),
        (b"max-age", Known::MaxAge),
        (b"s-maxage", Known::SMaxage),
        (b"max-stale", Known::MaxStale),
        (b"min-fresh", Known::MinFresh),
        (b"stale-while-revalidate", Known::StaleWhileRevalidate),
        (b"stale-if-error", Known::StaleIfError),
    ];

    fn of(name: &[u8]) -> Option<Known> {
        Known::ALL.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, k)| k)
    }
}

impl CacheControl {
    /// Parses every `Cache-Control` field in `headers`.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::from_field(headers, &header::CACHE_CONTROL)
    }

    /// Parses every field `name` in `headers` with the `Cache-Control`
    /// syntax, such as `CDN-Cache-Control` (RFC 9213).
    pub fn from_field(headers: &HeaderMap, name: &http::HeaderName) -> Self {
        Self::from_values(headers.get_all(name))
    }

    /// Parses field values with the `Cache-Control` syntax, as the lines of
    /// one field.
    pub fn from_values<V: AsRef<[u8]>>(values: impl IntoIterator<Item = V>) -> Self {
        let mut cc = CacheControl::default();
        for value in values {
            if parse_into(value.as_ref(), &mut cc).is_err() {
                cc.malformed = true;
            }
        }
        cc
    }

    /// Records one directive; a repeated one keeps its first value.
    fn set(&mut self, name: &[u8], value: Option<&[u8]>) {
        self.any = true;
        let Some(known) = Known::of(name) else {
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            self.extensions.push((name, value.map(|v| String::from_utf8_lossy(v).into_owned())));
            return;
        };
        let delta = |slot: &mut Option<Delta>| {
            if slot.is_none() {
                *slot = Some(value.and_then(delta_seconds));
            }
        };
        let fields = |slot: &mut Option<Fields>| {
            if slot.is_none() {
                *slot = Some(value.map(|v| String::from_utf8_lossy(v).into()));
            }
        };
        match known {
            Known::NoStore => self.no_store = true,
            Known::NoCache => fields(&mut self.no_cache),
            Known::Private => fields(&mut self.private),
            Known::Public => self.public = true,
            Known::MustRevalidate => self.must_revalidate = true,
            Known::ProxyRevalidate => self.proxy_revalidate = true,
            Known::MustUnderstand => self.must_understand = true,
            Known::NoTransform => self.no_transform = true,
            Known::OnlyIfCached => self.only_if_cached = true,
            Known::Immutable => self.immutable = true,
            Known::MaxAge => delta(&mut self.max_age),
            Known::SMaxage => delta(&mut self.s_maxage),
            // A limit that is not delta-seconds allows no staleness, where
            // no limit at all allows any.
            Known::MaxStale if self.max_stale.is_none() => {
                self.max_stale = Some(value.map(|v| delta_seconds(v).unwrap_or(0)));
            }
            Known::MaxStale => {}
            Known::MinFresh => delta(&mut self.min_fresh),
            Known::StaleWhileRevalidate => delta(&mut self.stale_while_revalidate),
            Known::StaleIfError => delta(&mut self.stale_if_error),
        }
    }

    /// `no-store`.
    pub fn no_store(&self) -> bool {
        self.no_store
    }

    /// `no-cache`, qualified with field names or not.
    pub fn no_cache(&self) -> bool {
        self.no_cache.is_some()
    }

    /// The field names of a qualified `no-cache="..."`, as written.
    pub fn no_cache_fields(&self) -> Option<&str> {
        self.no_cache.as_ref()?.as_deref()
    }

    /// `private`, qualified with field names or not.
    pub fn private(&self) -> bool {
        self.private.is_some()
    }

    /// The field names of a qualified `private="..."`, as written.
    pub fn private_fields(&self) -> Option<&str> {
        self.private.as_ref()?.as_deref()
    }

    /// `public`.
    pub fn public(&self) -> bool {
        self.public
    }

    /// `must-revalidate`.
    pub fn must_revalidate(&self) -> bool {
        self.must_revalidate
    }

    /// `proxy-revalidate`.
    pub fn proxy_revalidate(&self) -> bool {
        self.proxy_revalidate
    }

    /// `must-understand`.
    pub fn must_understand(&self) -> bool {
        self.must_understand
    }

    /// `no-transform`.
    pub fn no_transform(&self) -> bool {
        self.no_transform
    }

    /// `only-if-cached` (a request directive).
    pub fn only_if_cached(&self) -> bool {
        self.only_if_cached
    }

    /// `immutable` (RFC 8246).
    pub fn immutable(&self) -> bool {
        self.immutable
    }

    /// `max-age`, in seconds, when present with a valid value.
    pub fn max_age(&self) -> Option<u64> {
        self.max_age.flatten()
    }

    /// `s-maxage`, in seconds, when present with a valid value.
    pub fn s_maxage(&self) -> Option<u64> {
        self.s_maxage.flatten()
    }

    /// Whether `s-maxage` is present, with a valid value or not.
    pub fn has_s_maxage(&self) -> bool {
        self.s_maxage.is_some()
    }

    /// `max-stale` (a request directive): `Some(None)` when present without
    /// a limit, which accepts any staleness; `Some(Some(0))` when its limit
    /// is not delta-seconds.
    pub fn max_stale(&self) -> Option<Option<u64>> {
        self.max_stale
    }

    /// `min-fresh` (a request directive), in seconds.
    pub fn min_fresh(&self) -> Option<u64> {
        self.min_fresh.flatten()
    }

    /// `stale-while-revalidate` (RFC 5861), in seconds.
    pub fn stale_while_revalidate(&self) -> Option<u64> {
        self.stale_while_revalidate.flatten()
    }

    /// `stale-if-error` (RFC 5861), in seconds.
    pub fn stale_if_error(&self) -> Option<u64> {
        self.stale_if_error.flatten()
    }

    /// The directives this type has no field for, in order: names
    /// lower-cased, values unquoted.
    pub fn extensions(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.extensions.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// Whether no directive is present.
    pub fn is_empty(&self) -> bool {
        !self.any
    }

    /// Whether some field could not be parsed as a list of directives. The
    /// directives read before the fault in that field, and those of the
    /// other fields, are still there.
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }
}

/// `delta-seconds` (RFC 9111 §1.2.2): digits only.
fn delta_seconds(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses one field value: `#cache-directive`, empty elements allowed
/// (RFC 9110 §5.6.1). `Err` at the first byte that does not fit.
fn parse_into(field: &[u8], out: &mut CacheControl) -> Result<(), ()> {
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
        let name = &rest[..name_len];
        rest = skip_ows(&rest[name_len..]);
        if let Some(after) = rest.strip_prefix(b"=") {
            let after = skip_ows(after);
            let tail = match after.first() {
                Some(b'"') => {
                    let (v, tail) = quoted(&after[1..])?;
                    out.set(name, Some(&v));
                    tail
                }
                _ => {
                    let len = after.iter().take_while(|&&b| is_tchar(b)).count();
                    if len == 0 {
                        return Err(());
                    }
                    out.set(name, Some(&after[..len]));
                    &after[len..]
                }
            };
            rest = skip_ows(tail);
        } else {
            out.set(name, None);
        }
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
        assert!(cc.public());
        assert_eq!(cc.max_age(), Some(60));
        assert_eq!(cc.s_maxage(), Some(120));
        assert!(cc.private());
        assert_eq!(cc.private_fields(), Some("set-cookie, x-a"));
        assert!(!cc.no_store() && !cc.no_cache());
        assert_eq!(cc.extensions().count(), 0);
        assert!(!cc.is_empty());
        assert!(parse(&[]).is_empty() && parse(&[" , "]).is_empty());
        assert!(CacheControl::default().is_empty());
        assert_eq!(CacheControl::default(), parse(&[]));
    }

    #[test]
    fn unknown_directives_are_kept_in_order() {
        let cc = parse(&["X-Foo, no-cache, Community=\"UCI\", bar=1"]);
        assert!(cc.no_cache() && cc.no_cache_fields().is_none());
        assert_eq!(
            cc.extensions().collect::<Vec<_>>(),
            [("x-foo", None), ("community", Some("UCI")), ("bar", Some("1"))]
        );
    }

    #[test]
    fn empty_elements_and_bad_values_are_tolerated() {
        let cc = parse(&[",,no-store,, max-age=abc ,"]);
        assert!(cc.no_store());
        assert_eq!(cc.max_age(), None);
        assert!(!cc.is_malformed());
    }

    #[test]
    fn delta_seconds_are_digits_and_the_first_occurrence_counts() {
        for (field, want) in [
            ("max-age=+5", None),
            ("max-age=-1", None),
            ("max-age=5", Some(5)),
            ("max-age=\"7\"", Some(7)),
        ] {
            assert_eq!(parse(&[field]).max_age(), want, "{field}");
        }
        assert_eq!(parse(&["max-age=5, max-age=9"]).max_age(), Some(5));
        assert_eq!(
            parse(&["max-age=x, max-age=9"]).max_age(),
            None,
            "the first occurrence, even invalid"
        );
        let cc = parse(&["s-maxage=soon"]);
        assert!(cc.has_s_maxage() && cc.s_maxage().is_none());
        assert_eq!(parse(&["max-stale"]).max_stale(), Some(None));
        assert_eq!(parse(&["max-stale=30"]).max_stale(), Some(Some(30)));
        assert_eq!(
            parse(&["max-stale=+5"]).max_stale(),
            Some(Some(0)),
            "an invalid limit allows no staleness"
        );
        assert_eq!(parse(&["max-stale=\"\""]).max_stale(), Some(Some(0)));
        assert_eq!(parse(&["min-fresh=3"]).min_fresh(), Some(3));
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
        assert!(cc.private() && !cc.is_malformed(), "obs-text in a quoted string is valid");
        assert_eq!(cc.extensions().collect::<Vec<_>>(), [("x", Some("\u{fc}"))]);
        let mut h = HeaderMap::new();
        h.append(header::CACHE_CONTROL, HeaderValue::from_bytes(b"max-age=60, x=\xc3\xbc").unwrap());
        assert!(CacheControl::from_headers(&h).is_malformed(), "but not in a token");
    }

    /// The names the typed fields read, as the RFCs spell them.
    const KNOWN: [&str; 16] = [
        "no-store",
        "no-cache",
        "private",
        "public",
        "must-revalidate",
        "proxy-revalidate",
        "must-understand",
        "no-transform",
        "only-if-cached",
        "immutable",
        "max-age",
        "s-maxage",
        "max-stale",
        "min-fresh",
        "stale-while-revalidate",
        "stale-if-error",
    ];

    /// What the parsed value says of one directive name, written back as
    /// text: `None` absent, `Some(None)` present without a (valid) value.
    fn read_back(cc: &CacheControl, name: &str) -> Option<Option<String>> {
        let flag = |on: bool| on.then_some(None);
        let secs = |v: Option<Option<u64>>| v.map(|v| v.map(|s| s.to_string()));
        let fields = |on: bool, v: Option<&str>| on.then(|| v.map(str::to_owned));
        match name {
            "no-store" => flag(cc.no_store()),
            "no-cache" => fields(cc.no_cache(), cc.no_cache_fields()),
            "private" => fields(cc.private(), cc.private_fields()),
            "public" => flag(cc.public()),
            "must-revalidate" => flag(cc.must_revalidate()),
            "proxy-revalidate" => flag(cc.proxy_revalidate()),
            "must-understand" => flag(cc.must_understand()),
            "no-transform" => flag(cc.no_transform()),
            "only-if-cached" => flag(cc.only_if_cached()),
            "immutable" => flag(cc.immutable()),
            "max-age" => secs(cc.max_age.map(|_| cc.max_age())),
            "s-maxage" => secs(cc.has_s_maxage().then(|| cc.s_maxage())),
            "max-stale" => secs(cc.max_stale()),
            "min-fresh" => secs(cc.min_fresh.map(|_| cc.min_fresh())),
            "stale-while-revalidate" => secs(cc.stale_while_revalidate.map(|_| cc.stale_while_revalidate())),
            "stale-if-error" => secs(cc.stale_if_error.map(|_| cc.stale_if_error())),
            _ => unreachable!(),
        }
    }

    /// A field made of directives, as written by a generator that does not
    /// share the parser's code: name (a registered one in any case, or
    /// another), optional token or quoted value.
    fn directive() -> impl proptest::strategy::Strategy<Value = (String, Option<String>, bool)> {
        use proptest::strategy::Strategy as _;
        let known = (
            proptest::sample::select(&KNOWN[..]),
            proptest::collection::vec(proptest::bool::ANY, 24),
        )
            .prop_map(|(name, upper)| {
                name.chars()
                    .zip(upper)
                    .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                    .collect::<String>()
            });
        let name = proptest::prop_oneof![known, "[a-zA-Z][a-zA-Z0-9-]{0,8}"];
        (name, proptest::option::of("[0-9]{1,4}|[a-z0-9+]{1,6}|[ a-z,=;\\\\\"]{0,6}")).prop_map(|(name, value)| {
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
            proptest::prop_assert_eq!(cc.is_empty(), directives.is_empty());
            let lower: Vec<_> = directives.iter().map(|(n, v, _)| (n.to_ascii_lowercase(), v.clone())).collect();
            let unknown: Vec<_> = lower.iter().filter(|(n, _)| !KNOWN.contains(&n.as_str())).cloned().collect();
            let got: Vec<_> = cc.extensions().map(|(n, v)| (n.to_owned(), v.map(str::to_owned))).collect();
            proptest::prop_assert_eq!(got, unknown);
            for name in KNOWN {
                let first = lower.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
                let takes_seconds = matches!(name, "max-age" | "s-maxage" | "max-stale" | "min-fresh" | "stale-while-revalidate" | "stale-if-error");
                let takes_fields = matches!(name, "no-cache" | "private");
                let want = first.map(|v| match v {
                    Some(v) if takes_seconds => {
                        let seconds = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                            .then(|| v.parse::<u64>().ok())
                            .flatten();
                        // max-stale's invalid limit is none at all.
                        if name == "max-stale" { Some(seconds.unwrap_or(0).to_string()) } else { seconds.map(|n| n.to_string()) }
                    }
                    Some(v) if takes_fields => Some(v),
                    _ => None,
                });
                proptest::prop_assert_eq!(read_back(&cc, name), want, "{} in {}", name, field);
            }
        }
    }
}
