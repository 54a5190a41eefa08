//! Tag templates such as `product:{tenant}:{id}`, filled per request.

use std::fmt;

use http::HeaderName;

use crate::error::ConfigError;

/// A tag with placeholders, rendered for each request.
///
/// Placeholders:
/// - `{tenant}`: the request's tenant (from the policy's key spec);
/// - `{header.NAME}`: the value of request header `NAME`;
/// - `{NAME}`: the path parameter `NAME` of the matched route, as the
///   framework's `Path` extractor gives it to the handler (percent-decoded)
///   (`/products/%34%32` fills `{id}` with `42`). A handler that reads the
///   parameter as a number also accepts spellings the tag keeps apart
///   (`042`, `+42`): tag such responses from the parsed value with
///   [`CacheHints::tag`](crate::CacheHints::tag), or redirect them to the
///   canonical URL.
///
/// A tag whose placeholder has no value for a request is not attached to
/// that request's entry. Values are inserted as they are: the tags
/// `a:{x}:{y}` for `x = "1:2", y = "3"` and `x = "1", y = "2:3"` are the same
/// tag, which can only make an invalidation drop more entries, never fewer.
///
/// # Example
///
/// ```
/// use cache_core::TagTemplate;
///
/// let t: TagTemplate = "product:{tenant}:{id}".parse().unwrap();
/// assert_eq!(t.to_string(), "product:{tenant}:{id}");
/// assert!("product:{".parse::<TagTemplate>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Tenant,
    Header(HeaderName),
    Param(String),
}

/// What a template is filled from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TagContext<'a> {
    pub(crate) tenant: Option<&'a str>,
    pub(crate) headers: &'a http::HeaderMap,
    pub(crate) params: &'a [(String, String)],
}

impl TagTemplate {
    /// Renders the tag, or `None` when a placeholder has no value.
    pub(crate) fn render(&self, ctx: &TagContext<'_>) -> Option<String> {
        let mut out = String::with_capacity(self.source.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Tenant => out.push_str(ctx.tenant?),
                Part::Header(name) => out.push_str(ctx.headers.get(name)?.to_str().ok()?),
                Part::Param(name) => out.push_str(param(ctx.params, name)?),
            }
        }
        Some(out)
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

impl TagTemplate {
    /// Whether the template reads path parameters.
    pub(crate) fn needs_params(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Param(_)))
    }
}

impl std::str::FromStr for TagTemplate {
    type Err = ConfigError;

    fn from_str(source: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ConfigError::TagTemplate {
            template: source.to_owned(),
            reason: reason.to_owned(),
        };
        if source.is_empty() {
            return Err(err("a tag cannot be empty"));
        }
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err(err("`}` without `{`"));
            }
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or_else(|| err("`{` without `}`"))? + open;
            parts.push(placeholder(&rest[open + 1..close]).map_err(err)?);
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(TagTemplate {
            source: source.to_owned(),
            parts,
        })
    }
}

fn placeholder(name: &str) -> Result<Part, &'static str> {
    if name.is_empty() || name.contains('{') {
        return Err("empty or nested placeholder");
    }
    if name == "tenant" {
        return Ok(Part::Tenant);
    }
    if let Some(header) = name.strip_prefix("header.") {
        return HeaderName::from_bytes(header.as_bytes())
            .map(Part::Header)
            .map_err(|_| "invalid header name in placeholder");
    }
    if name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        return Ok(Part::Param(name.to_owned()));
    }
    Err("a placeholder is `tenant`, `header.NAME` or a path parameter name")
}

impl fmt::Display for TagTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl TryFrom<&str> for TagTemplate {
    type Error = ConfigError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A tag as the stores hold it.
///
/// The cache tags every entry with its URI, so that an unsafe request or
/// [`Invalidator::request`](crate::Invalidator::request) drops every variant
/// of it. Those tags and the app's live apart: the cache's begin with `@`
/// and a letter (`@uri:...`); an app's tag that begins with `@` is held with
/// one more `@` in front. No tag an app gives, from a policy, a handler's
/// hints, a data policy or an invalidation, can name a URI.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tag(String);

impl Tag {
    /// An app's tag.
    pub(crate) fn app(tag: impl Into<String>) -> Tag {
        let tag = tag.into();
        if tag.starts_with('@') {
            return Tag(format!("@{tag}"));
        }
        Tag(tag)
    }

    /// The tag every variant of a URI (a [`CacheKey::uri`](crate::key::CacheKey::uri)) carries.
    pub(crate) fn uri(uri: &str) -> Tag {
        let mut tag = String::with_capacity(uri.len() + 5);
        tag.push_str("@uri:");
        tag.push_str(uri);
        Tag(tag)
    }

    /// The form the stores hold.
    pub(crate) fn into_stored(self) -> String {
        self.0
    }

    /// The stored forms of `tags`.
    pub(crate) fn stored(tags: Vec<Tag>) -> Vec<String> {
        tags.into_iter().map(Tag::into_stored).collect()
    }

    /// The app's tag a stored tag holds; `None` for the cache's own.
    pub(crate) fn app_tag(stored: &str) -> Option<&str> {
        match stored.strip_prefix('@') {
            None => Some(stored),
            Some(rest) if rest.starts_with('@') => Some(rest),
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn ctx<'a>(headers: &'a HeaderMap, params: &'a [(String, String)], tenant: Option<&'a str>) -> TagContext<'a> {
        TagContext { tenant, headers, params }
    }

    #[test]
    fn renders_tenant_params_and_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-region", HeaderValue::from_static("eu"));
        let route = [("id".to_owned(), "42".to_owned())];
        let t: TagTemplate = "product:{tenant}:{id}:{header.x-region}".parse().unwrap();
        assert_eq!(
            t.render(&ctx(&headers, &route, Some("acme"))).as_deref(),
            Some("product:acme:42:eu")
        );
        assert_eq!(t.render(&ctx(&headers, &route, None)), None);
        let literal: TagTemplate = "catalog".parse().unwrap();
        assert_eq!(literal.render(&ctx(&headers, &route, None)).as_deref(), Some("catalog"));
    }

    #[test]
    fn rejects_malformed_templates() {
        for bad in ["", "a{", "a}", "{}", "{a{b}}", "{header.bad name}", "{a b}"] {
            assert!(bad.parse::<TagTemplate>().is_err(), "{bad:?} accepted");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in ".{0,40}") {
            let _ = s.parse::<TagTemplate>();
        }
    }

    #[test]
    fn app_tags_and_uri_tags_never_meet() {
        for app in ["@uri:/a", "@@uri:/a", "@", "uri:/a", "plain", ""] {
            let stored = Tag::app(app).into_stored();
            assert_ne!(stored, Tag::uri("/a").into_stored(), "{app:?}");
            assert_eq!(Tag::app_tag(&stored), Some(app), "{app:?} reads back");
        }
        assert_eq!(Tag::app_tag(&Tag::uri("/a").into_stored()), None);
    }

    proptest::proptest! {
        #[test]
        fn no_app_tag_is_a_uri_tag(app in ".{0,12}", uri in ".{0,12}") {
            let stored = Tag::app(app.clone()).into_stored();
            proptest::prop_assert_ne!(&stored, &Tag::uri(&uri).into_stored());
            proptest::prop_assert_eq!(Tag::app_tag(&stored), Some(app.as_str()));
        }
    }
}
