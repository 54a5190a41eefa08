//! Path patterns matched against request paths: `/api/v1/products/{id}`,
//! `/static/*`, `/files/{*rest}`.

use std::{fmt, str::FromStr};

use crate::ConfigError;

/// A pattern over request paths, segment by segment.
///
/// - a literal segment (`products`) matches itself;
/// - `{name}` matches any one non-empty segment and captures it as `name`,
///   for tag templates (`product:{id}`);
/// - a last segment `*` matches the rest of the path (one segment or more),
///   `{*name}` does the same and captures it as `name`.
///
/// Patterns start with `/`; a trailing `/` is significant (`/a/` does not
/// match `/a`). The query string is not part of the path.
///
/// ```
/// use cache_core::PathPattern;
///
/// let pattern: PathPattern = "/api/v1/products/{id}".parse().unwrap();
/// assert_eq!(pattern.captures("/api/v1/products/42"), Some(vec![("id".to_owned(), "42".to_owned())]));
/// assert!(!pattern.matches("/api/v1/products"));
/// assert!("/static/*".parse::<PathPattern>().unwrap().matches("/static/css/site.css"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
    rest: Option<Rest>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rest {
    Anonymous,
    Named(String),
}

impl PathPattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `path` matches. Allocates nothing.
    pub fn matches(&self, path: &str) -> bool {
        self.walk(path, |_, _| ())
    }

    /// The captured segments when `path` matches, by name, in pattern order.
    pub fn captures(&self, path: &str) -> Option<Vec<(String, String)>> {
        let mut captured = Vec::new();
        self.walk(path, |name, value| captured.push((name.to_owned(), value.to_owned())))
            .then_some(captured)
    }

    fn walk<'p>(&'p self, path: &'p str, mut capture: impl FnMut(&'p str, &'p str)) -> bool {
        let Some(mut rest) = path.strip_prefix('/') else {
            return false;
        };
        for (i, segment) in self.segments.iter().enumerate() {
            let last = i + 1 == self.segments.len() && self.rest.is_none();
            let (head, tail) = match rest.split_once('/') {
                Some((head, tail)) => (head, Some(tail)),
                None => (rest, None),
            };
            match segment {
                Segment::Literal(literal) if literal == head => {}
                Segment::Param(name) if !head.is_empty() => capture(name, head),
                _ => return false,
            }
            match tail {
                Some(tail) => rest = tail,
                // The path ends here: a match only on the pattern's last
                // segment.
                None => return last,
            }
            if last {
                // The pattern ends but the path goes on.
                return false;
            }
        }
        match &self.rest {
            None => self.segments.is_empty() && rest.is_empty(),
            Some(_) if rest.is_empty() => false,
            Some(Rest::Anonymous) => true,
            Some(Rest::Named(name)) => {
                capture(name, rest);
                true
            }
        }
    }
}

impl FromStr for PathPattern {
    type Err = ConfigError;

    fn from_str(source: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| ConfigError::invalid("path", format!("`{source}`: {reason}"));
        let Some(body) = source.strip_prefix('/') else {
            return Err(invalid("must start with `/`"));
        };
        let mut segments = Vec::new();
        let mut rest = None;
        if !body.is_empty() {
            let parts: Vec<&str> = body.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let last = i + 1 == parts.len();
                if *part == "*" || part.starts_with("{*") {
                    if !last {
                        return Err(invalid("a wildcard must be the last segment"));
                    }
                    rest = Some(match part.strip_prefix("{*").and_then(|p| p.strip_suffix('}')) {
                        Some(name) => Rest::Named(param_name(name).map_err(invalid)?.to_owned()),
                        None if *part == "*" => Rest::Anonymous,
                        None => return Err(invalid("unclosed `{*`")),
                    });
                } else if let Some(name) = part.strip_prefix('{') {
                    let name = name
                        .strip_suffix('}')
                        .ok_or_else(|| invalid("a `{param}` must be a whole segment"))?;
                    segments.push(Segment::Param(param_name(name).map_err(invalid)?.to_owned()));
                } else if part.contains(['{', '}', '*']) {
                    return Err(invalid("`{`, `}` and `*` only in a whole `{param}`, `{*param}` or `*` segment"));
                } else {
                    segments.push(Segment::Literal((*part).to_owned()));
                }
            }
        }
        let mut names: Vec<&str> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(name) => Some(name.as_str()),
                Segment::Literal(_) => None,
            })
            .chain(match &rest {
                Some(Rest::Named(name)) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid("a parameter name appears twice"));
        }
        Ok(PathPattern {
            source: source.to_owned(),
            segments,
            rest,
        })
    }
}

fn param_name(name: &str) -> Result<&str, &'static str> {
    match !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        true => Ok(name),
        false => Err("parameter names are made of letters, digits, `_` and `-`"),
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PathPattern").field(&self.source).finish()
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn p(s: &str) -> PathPattern {
        s.parse().unwrap()
    }

    fn caps(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        p(pattern).captures(path)
    }

    #[test]
    fn literals_params_and_wildcards() {
        assert_eq!(caps("/", "/"), Some(vec![]));
        assert_eq!(caps("/", "/a"), None);
        assert_eq!(caps("/a", "/a"), Some(vec![]));
        assert_eq!(caps("/a", "/a/"), None);
        assert_eq!(caps("/a/", "/a/"), Some(vec![]));
        assert_eq!(caps("/a/", "/a"), None);
        assert_eq!(caps("/a", "/b"), None);
        assert_eq!(caps("/a", ""), None);
        assert_eq!(caps("/a/b", "/a"), None);
        assert_eq!(caps("/a", "/a/b"), None);
        assert_eq!(caps("/p/{id}", "/p/42"), Some(vec![("id".into(), "42".into())]));
        assert_eq!(caps("/p/{id}", "/p/"), None);
        assert_eq!(caps("/p/{id}", "/p/42/x"), None);
        assert_eq!(
            caps("/t/{tenant}/p/{id}", "/t/acme/p/7"),
            Some(vec![("tenant".into(), "acme".into()), ("id".into(), "7".into())])
        );
        assert_eq!(caps("/s/*", "/s/a/b.css"), Some(vec![]));
        assert_eq!(caps("/s/*", "/s/"), None);
        assert_eq!(caps("/s/*", "/s"), None);
        assert_eq!(caps("/f/{*rest}", "/f/a/b"), Some(vec![("rest".into(), "a/b".into())]));
        assert_eq!(caps("/*", "/anything/at/all"), Some(vec![]));
        assert_eq!(caps("/*", "/"), None);
    }

    #[test]
    fn malformed_patterns_are_errors() {
        for bad in [
            "",
            "a",
            "/a/{id",
            "/a/{}",
            "/a/x{id}",
            "/*/a",
            "/{*rest}/a",
            "/a/{id}/{id}",
            "/a/{i d}",
            "/a*",
        ] {
            let err = bad.parse::<PathPattern>().unwrap_err();
            assert!(err.to_string().starts_with("invalid `path`"), "{bad}: {err}");
        }
    }

    proptest! {
        #[test]
        fn parsing_and_matching_never_panic(pattern in "[/a-z{}*]{0,16}", path in "[/a-z]{0,16}") {
            if let Ok(pattern) = pattern.parse::<PathPattern>() {
                let _ = pattern.captures(&path);
            }
        }

        #[test]
        fn a_pattern_of_literals_matches_exactly_itself(segments in proptest::collection::vec("[a-z]{1,4}", 0..5), other in "[/a-z]{0,12}") {
            let path = format!("/{}", segments.join("/"));
            let pattern: PathPattern = path.parse().unwrap();
            prop_assert!(pattern.matches(&path));
            prop_assert_eq!(pattern.matches(&other), other == path);
        }
    }
}
