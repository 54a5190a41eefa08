//! Cache keys: which requests share a stored response.
//!
//! A key is built from the policy's [`KeySpec`] and the request:
//!
//! ```text
//! namespace : version : tenant : path ? query : principal : varied headers
//! '--------------- URI part -------------'
//! ```
//!
//! Every component is percent-escaped so that the separators (`:`, `=`,
//! `&`, `#`, `%`) never appear inside one, and optional components are empty
//! when absent and start with `=` when present. The layout is therefore
//! injective: two requests that differ in any keyed component never share a
//! key, whatever bytes a tenant id, path, query or header holds.
//!
//! The path and query are keyed by what an application can see of them,
//! byte for byte, with three normalisations that no decoder can tell apart
//! or that the key is documented to ignore:
//!
//! - escapes of unreserved characters are decoded (RFC 3986 §6.2.2.2:
//!   `/products/%34%32` is `/products/42`); every other escape keeps its
//!   bytes (`%2F` is not `/`, `%FF` is not `%FE`, `+` is not `%20`), and a
//!   `%` that starts no escape (not a valid URI) is keyed apart from every
//!   escape, `%25` included;
//! - query parameters are sorted by name (as a form decoder reads it), so
//!   `?b=2&a=1` and `?a=1&b=2` share a key (the values of one name keep
//!   their order: `?a=1&a=2` is not `?a=2&a=1`, nor `?x+y=1&x%20y=2`
//!   `?x%20y=2&x+y=1`); an application whose answer depends on the order
//!   of different names must not share its responses this way;
//! - empty parameters (`?a=1&&b=2`) are dropped, as every query parser
//!   drops them. `?a` and `?a=` stay different.
//!
//! [`QueryFilter`] names are compared with the parameter names decoded as
//! forms decode them (`+` is a space). Keys longer than [`MAX_KEY_LEN`]
//! keep a readable prefix and end in `#` and a 128-bit BLAKE3 hash of the
//! whole key.
//!
//! The URI part (namespace to query) is what [`CacheKey::uri`] returns; every
//! variant stored for one URI can be invalidated through it.

use std::{borrow::Cow, collections::BTreeSet, fmt, sync::Arc};

use http::{HeaderMap, HeaderName, request::Parts};

/// Keys never exceed this many bytes.
pub const MAX_KEY_LEN: usize = 250;
const HASHED_PREFIX_LEN: usize = 200;

/// The tenant of a request, as a request extension.
///
/// Insert it from your own middleware (after authentication, for instance)
/// and select it with [`TenantSource::Extension`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant(pub String);

/// A function that reads the tenant from a request head.
pub type TenantFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// Where a policy reads the tenant of a request from.
#[derive(Clone)]
#[non_exhaustive]
pub enum TenantSource {
    /// A request header, such as `x-tenant-id`.
    Header(HeaderName),
    /// A [`Tenant`] request extension.
    Extension,
    /// A function of the request head.
    Function(TenantFn),
}

impl fmt::Debug for TenantSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantSource::Header(h) => f.debug_tuple("Header").field(h).finish(),
            TenantSource::Extension => f.write_str("Extension"),
            TenantSource::Function(_) => f.write_str("Function(..)"),
        }
    }
}

impl TenantSource {
    /// The tenant of the request, if it has one.
    pub fn tenant(&self, parts: &Parts) -> Option<String> {
        match self {
            TenantSource::Header(name) => {
                let value = parts.headers.get(name)?;
                Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
            }
            TenantSource::Extension => parts.extensions.get::<Tenant>().map(|t| t.0.clone()),
            TenantSource::Function(f) => f(parts),
        }
    }
}

/// Which query parameters are part of the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryFilter {
    /// Every parameter (the default).
    #[default]
    All,
    /// No parameter: the query string is ignored.
    None,
    /// Only these parameters.
    Allow(BTreeSet<String>),
    /// Every parameter but these (tracking parameters, for instance).
    Deny(BTreeSet<String>),
}

impl QueryFilter {
    fn keeps(&self, name: &str) -> bool {
        match self {
            QueryFilter::All => true,
            QueryFilter::None => false,
            QueryFilter::Allow(names) => names.contains(name),
            QueryFilter::Deny(names) => !names.contains(name),
        }
    }
}

/// What a policy's keys are made of. Built through
/// [`CachePolicyBuilder`](crate::CachePolicyBuilder).
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub(crate) namespace: String,
    pub(crate) version: u32,
    pub(crate) tenant: Option<TenantSource>,
    pub(crate) by_principal: bool,
    pub(crate) query: QueryFilter,
    pub(crate) vary: Vec<HeaderName>,
    /// `namespace:version:`, escaped: the start of every key, written once.
    head: String,
}

impl Default for KeySpec {
    fn default() -> Self {
        let mut spec = KeySpec {
            namespace: String::new(),
            version: 0,
            tenant: None,
            by_principal: false,
            query: QueryFilter::All,
            vary: Vec::new(),
            head: String::new(),
        };
        spec.set_namespace("http".to_owned(), 1);
        spec
    }
}

/// A built cache key and the URI part that all of its variants share.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    key: String,
    uri: Uri,
}

/// The URI part: a prefix of the key, or its own bounded string when the
/// key had to be hashed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Uri {
    Prefix(usize),
    Own(String),
}

impl CacheKey {
    /// The key of a request that is never looked up (passed through).
    pub(crate) const fn empty() -> Self {
        CacheKey {
            key: String::new(),
            uri: Uri::Prefix(0),
        }
    }
}

impl CacheKey {
    /// The full key, under which one response is stored.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The URI part: namespace, version, tenant, path and query.
    pub fn uri(&self) -> &str {
        match &self.uri {
            Uri::Prefix(len) => &self.key[..*len],
            Uri::Own(uri) => uri,
        }
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl KeySpec {
    /// Whether the key includes the request's credentials, so that
    /// responses to authenticated requests may be stored per principal.
    pub fn keys_by_principal(&self) -> bool {
        self.by_principal
    }

    /// The request headers whose values are part of the key: the tenant
    /// header, the varied headers, and `Authorization` when keyed by
    /// principal. Responses say so in `Vary`, so that caches further down
    /// do not share them across those values.
    pub fn keyed_headers(&self) -> Vec<HeaderName> {
        let mut names = Vec::new();
        if let Some(TenantSource::Header(h)) = &self.tenant {
            names.push(h.clone());
        }
        names.extend(self.vary.iter().cloned());
        if self.by_principal {
            names.push(http::header::AUTHORIZATION);
        }
        names.dedup();
        names
    }

    /// The tenant of a request according to this spec.
    pub fn tenant(&self, parts: &Parts) -> Option<String> {
        self.tenant.as_ref()?.tenant(parts)
    }

    /// Builds the key of a request.
    pub fn build(&self, parts: &Parts) -> CacheKey {
        let mut key = String::with_capacity(96);
        self.write_uri_part(parts, &mut key);
        let uri_len = key.len();
        key.push(':');
        if self.by_principal {
            write_principal(&parts.headers, &mut key);
        }
        key.push(':');
        self.write_vary(&parts.headers, &mut key);
        if key.len() <= MAX_KEY_LEN {
            return CacheKey {
                key,
                uri: Uri::Prefix(uri_len),
            };
        }
        let uri = Uri::Own(bounded(key[..uri_len].to_owned()));
        CacheKey { key: bounded(key), uri }
    }

    /// The key prefix shared by every entry of this spec for `tenant` whose
    /// path starts with `path_prefix`. Use it with
    /// [`Invalidator::prefix`](crate::Invalidator::prefix).
    pub fn prefix(&self, tenant: Option<&str>, path_prefix: &str) -> String {
        let mut out = String::new();
        self.write_head(tenant.map(str::as_bytes), &mut out);
        escape_target_into(path_prefix, &mut out);
        out
    }

    /// Sets the namespace and the key version.
    pub(crate) fn set_namespace(&mut self, namespace: String, version: u32) {
        let mut head = String::with_capacity(namespace.len() + 12);
        escape_str_into(&namespace, &mut head);
        head.push(':');
        head.push_str(itoa::Buffer::new().format(version));
        head.push(':');
        self.namespace = namespace;
        self.version = version;
        self.head = head;
    }

    fn write_head(&self, tenant: Option<&[u8]>, out: &mut String) {
        out.push_str(&self.head);
        if let Some(t) = tenant {
            out.push('=');
            escape_into(t, out);
        }
        out.push(':');
    }

    fn write_uri_part(&self, parts: &Parts, out: &mut String) {
        match &self.tenant {
            // The raw bytes, so that distinct non-UTF-8 ids stay distinct.
            Some(TenantSource::Header(name)) => {
                self.write_head(parts.headers.get(name).map(|v| v.as_bytes()), out);
            }
            _ => self.write_head(self.tenant(parts).as_deref().map(str::as_bytes), out),
        }
        escape_target_into(parts.uri.path(), out);
        out.push('?');
        if let Some(query) = parts.uri.query() {
            self.write_query(query, out);
        }
    }

    fn write_query(&self, query: &str, out: &mut String) {
        if matches!(self.query, QueryFilter::None) {
            return;
        }
        let mut pairs: Vec<QueryParam<'_>> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (form_decoded(name), name, Some(value)),
                None => (form_decoded(pair), pair, None),
            })
            .filter(|(decoded, _, _)| self.query.keeps(decoded))
            .collect();
        // By the name an application reads, stable: the values of one name
        // keep their order, whichever way each spells the name.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (_, name, value)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            escape_target_into(name, out);
            if let Some(value) = value {
                out.push('=');
                escape_target_into(value, out);
            }
        }
    }

    fn write_vary(&self, headers: &HeaderMap, out: &mut String) {
        for (i, name) in self.vary.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(name.as_str());
            if let Some(value) = crate::entry::combined_value(headers, name) {
                out.push('=');
                escape_into(value.as_bytes(), out);
            }
        }
    }
}

/// One query parameter: its name as a form decoder reads it, then its name
/// and value as written.
type QueryParam<'a> = (Cow<'a, str>, &'a str, Option<&'a str>);

/// A query parameter name as `application/x-www-form-urlencoded` decodes
/// it, to compare with a [`QueryFilter`]'s names.
fn form_decoded(name: &str) -> Cow<'_, str> {
    match name.contains('+') {
        true => Cow::Owned(crate::percent::decode(&name.replace('+', " ")).into_owned()),
        false => crate::percent::decode(name),
    }
}

fn write_principal(headers: &HeaderMap, out: &mut String) {
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        out.push('=');
        let hash = blake3::hash(auth.as_bytes());
        out.push_str(&hash.to_hex()[..32]);
    }
}

/// `key`, or its first bytes, `#` and a 128-bit BLAKE3 hash of it when it
/// is longer than [`MAX_KEY_LEN`]. Escaped keys hold no `#`, so a hashed
/// key is never an unhashed one.
pub(crate) fn bounded(key: String) -> String {
    if key.len() <= MAX_KEY_LEN {
        return key;
    }
    let hash = blake3::hash(key.as_bytes());
    let mut out = String::with_capacity(HASHED_PREFIX_LEN + 33);
    out.push_str(&key[..HASHED_PREFIX_LEN]);
    out.push('#');
    out.push_str(&hash.to_hex()[..32]);
    out
}

/// Bytes that stand for themselves in a key; everything else is `%XX`.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'_' | b'~' | b'/' | b'@' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';'
        )
}

/// Percent-escapes `bytes` into `out`. The output is ASCII, so a key can be
/// cut at any byte.
pub(crate) fn escape_into(bytes: &[u8], out: &mut String) {
    match std::str::from_utf8(bytes) {
        Ok(text) => escape_str_into(text, out),
        Err(_) => {
            for &b in bytes {
                push_byte(b, out);
            }
        }
    }
}

/// [`escape_into`] for text: runs of plain bytes are copied at once (keys
/// are built on every request, and paths are mostly plain).
pub(crate) fn escape_str_into(text: &str, out: &mut String) {
    out.reserve(text.len());
    let mut run = 0;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if is_plain(b) {
            continue;
        }
        // A run of plain bytes is ASCII, so it starts and ends on character
        // boundaries.
        out.push_str(text.get(run..i).unwrap_or_default());
        push_byte(b, out);
        run = i + 1;
    }
    out.push_str(text.get(run..).unwrap_or_default());
}

/// A piece of a request target escaped as [`escape_str_into`] does, in its
/// normal form (RFC 3986 §6.2.2.2: escapes of unreserved characters
/// decoded, other escapes kept, a `%` that starts no escape keyed apart as
/// `%00`, a byte no target holds), in one pass: a target without `%` (the
/// path of nearly every request) costs what [`escape_str_into`] costs.
pub(crate) fn escape_target_into(text: &str, out: &mut String) {
    out.reserve(text.len());
    let bytes = text.as_bytes();
    let (mut run, mut i) = (0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if is_plain(b) {
            i += 1;
            continue;
        }
        out.push_str(text.get(run..i).unwrap_or_default());
        i += 1;
        if b != b'%' {
            push_byte(b, out);
        } else {
            match crate::percent::escaped(&bytes[i - 1..]) {
                // Unreserved characters are plain.
                Some(decoded) if crate::percent::is_unreserved(decoded) => out.push(char::from(decoded)),
                // Kept as written: the `%`, escaped, then two hex digits.
                Some(_) => {
                    push_byte(b'%', out);
                    out.push_str(text.get(i..i + 2).unwrap_or_default());
                }
                None => {
                    push_byte(crate::percent::LONE_PERCENT as u8, out);
                    run = i;
                    continue;
                }
            }
            i += 2;
        }
        run = i;
    }
    out.push_str(text.get(run..).unwrap_or_default());
}

fn push_byte(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if is_plain(b) {
        out.push(char::from(b));
    } else {
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xF)]));
    }
}

#[cfg(test)]
mod tests;
