//! TTL tables from TOML: a file of route policies, loaded into
//! [`Policies`] (feature `config`).
//!
//! ```toml
//! # Every route starts from the defaults.
//! [defaults]
//! namespace = "storefront"
//! tenant_header = "x-tenant-id"
//! stale_while_revalidate = "30s"
//!
//! [[route]]
//! path = "/api/v1/products/{id}"
//! ttl = "1h"
//! ignore_query = true
//! status_ttl = { 404 = "1m" }
//! tags = ["product:{tenant}:{id}"]
//! downstream_cache_control = "public, max-age=60"
//! # A successful PUT on the product drops its entries (tags default to the
//! # route's own).
//! invalidated_by = [{ method = "PUT", path = "/api/v1/products/{id}" }]
//!
//! [[route]]
//! path = "/api/v1/products"
//! ttl = "5m"
//! query_allow = ["category", "page", "limit", "search", "sort"]
//! tags = ["products:{tenant}"]
//! invalidated_by = [{ methods = ["PUT", "DELETE"], path = "/api/v1/products/{id}" }]
//!
//! [[route]]
//! path = "/admin/*"
//! cache = false
//! ```
//!
//! # Routes
//!
//! A request takes the policy of the first route, in file order, whose
//! `path` ([`PathPattern`]: literal segments, `{param}`, a last `*` or
//! `{*rest}`) matches its path; a request no route matches passes through
//! uncached. A route with `cache = false` leaves its requests uncached. A
//! route also registers under its `path` as a framework route pattern, so
//! axum's and actix's matched route (`/api/v1/products/{id}`) selects it
//! directly.
//!
//! # Fields
//!
//! `[defaults]` and every `[[route]]` take the same fields as
//! [`CachePolicyBuilder`](crate::CachePolicyBuilder)'s methods, by the same names; a route's fields
//! replace the defaults' (`status_ttl` tables are merged):
//!
//! | field | value |
//! |---|---|
//! | `mode` | `"policy"` or `"rfc9111"` |
//! | `ttl`, `stale_while_revalidate`, `stale_if_error`, `jitter`, `coalesce_timeout`, `hit_for_miss` | durations: `"90s"`, `"10m"`, `"1h"`, `"7d"`, `"1h30m"` |
//! | `status_ttl` | a table of status → duration: `{ 404 = "1m" }` |
//! | `cacheable_statuses` | status codes: `[200, 404]` |
//! | `early_refresh` | XFetch β, a positive number |
//! | `max_body_size` | bytes, an integer |
//! | `namespace`, `tenant_header` | strings |
//! | `key_version` | an integer |
//! | `query_allow`, `query_deny`, `vary`, `strip_request_headers` | lists of strings |
//! | `ignore_query`, `key_by_principal` | booleans |
//! | `tags` | tag templates: `"product:{tenant}:{id}"` |
//! | `downstream_cache_control`, `downstream_cdn_cache_control` | header values |
//! | `surrogate_key_header`, `cache_tag_header`, `cdn_cache_control_target`, `coalesce`, `coalesce_across_instances` | booleans |
//! | `label` | the `route` label of metrics and traces; default: the route's `path` |
//!
//! Only routes take `path` (required), `cache` and `invalidated_by`: a list
//! of `{ method = "PUT" | methods = [...], path = "...", tags = [...] }`,
//! each an [`InvalidationRule`]: a successful unsafe request with one of
//! those methods (any unsafe method when none is given) on a path matching
//! the rule's drops its tags (the route's own `tags` when none are given),
//! filled from the rule path's parameters, the request's headers and the
//! tenant as the route reads it.
//!
//! # Other formats
//!
//! [`Policies`], [`CachePolicy`] (the fields of one route, without `path`,
//! `cache` and `invalidated_by`) and [`Ttl`](crate::Ttl) implement
//! [`serde::Deserialize`] with the same fields and values, so the table can
//! live in YAML or JSON, or inside an application's own configuration read
//! with figment or config-rs; unknown fields are refused there too:
//!
//! ```
//! # fn main() -> Result<(), serde_json::Error> {
//! use cache_core::Policies;
//!
//! #[derive(serde::Deserialize)]
//! struct Settings {
//!     port: u16,
//!     cache: Policies,
//! }
//!
//! let settings: Settings = serde_json::from_str(r#"{
//!     "port": 8080,
//!     "cache": { "route": [{ "path": "/api/v1/products/{id}", "ttl": "1h" }] }
//! }"#)?;
//! # let _ = settings.port;
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! Loading stops at the first mistake, and [`ConfigFileError`] names the
//! file, the route (its number and path) and the field:
//! `cache.toml: route 2 (/api/v1/products/{id}): ttl: invalid duration "1x"`.
//! Through serde, the same message without the file's name.

use std::{fmt, path::Path};

use http::Method;
use toml::{Table, Value};

use crate::{CachePolicy, InvalidationRule, PathPattern, Policies, TagTemplate};

mod fields;

use fields::{FieldError, boolean, policy_builder, templates};

/// A configuration file that cannot be used: which file, route and field,
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileError {
    file: String,
    route: Option<String>,
    field: Option<String>,
    message: String,
}

impl ConfigFileError {
    /// The file, as given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The route: `route N (/path)`, `defaults`, or `None` for the file as
    /// a whole.
    pub fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }

    /// The field, when one is at fault.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(route) = &self.route {
            write!(f, "{route}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigFileError {}

/// Fields only a route takes.
pub(super) const ROUTE_FIELDS: [&str; 3] = ["path", "cache", "invalidated_by"];

impl Policies {
    /// Loads a TTL table from a TOML file; see the [`config`](crate::config)
    /// module for the format.
    ///
    /// # Errors
    ///
    /// The file cannot be read, is not TOML, or holds a field that is
    /// unknown or invalid: the error names the file, route and field.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Policies, ConfigFileError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| ConfigFileError {
            file: name.clone(),
            route: None,
            field: None,
            message: format!("cannot read: {e}"),
        })?;
        Policies::from_toml_str(&source, &name)
    }

    /// Loads a TTL table from TOML text; `file` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`Policies::from_toml_file`].
    pub fn from_toml_str(source: &str, file: &str) -> Result<Policies, ConfigFileError> {
        let document: Table = source.parse().map_err(|e: toml::de::Error| ConfigFileError {
            file: file.to_owned(),
            route: None,
            field: None,
            message: syntax_message(&e, source),
        })?;
        Policies::from_table(document, file)
    }

    /// Loads a table already parsed (from TOML, or through serde from any
    /// format); `file` names it in errors.
    fn from_table(mut document: Table, file: &str) -> Result<Policies, ConfigFileError> {
        let error = |route: Option<String>, field: Option<&str>, message: String| ConfigFileError {
            file: file.to_owned(),
            route,
            field: field.map(str::to_owned),
            message,
        };
        let defaults = match document.remove("defaults") {
            None => Table::new(),
            Some(Value::Table(table)) => table,
            Some(other) => {
                return Err(error(
                    None,
                    Some("defaults"),
                    format!("expected a table, found {}", other.type_str()),
                ));
            }
        };
        let routes = match document.remove("route") {
            None => Vec::new(),
            Some(Value::Array(routes)) => routes,
            Some(other) => {
                return Err(error(
                    None,
                    Some("route"),
                    format!("expected an array of tables ([[route]]), found {}", other.type_str()),
                ));
            }
        };
        if let Some(key) = document.keys().next() {
            return Err(error(
                None,
                Some(key),
                "unknown top-level key (expected `defaults` or `route`)".to_owned(),
            ));
        }
        if let Some(key) = defaults.keys().find(|k| ROUTE_FIELDS.contains(&k.as_str())) {
            return Err(error(
                Some("defaults".to_owned()),
                Some(key),
                "only a [[route]] takes this field".to_owned(),
            ));
        }
        // The defaults alone must make a valid policy.
        policy_builder(&defaults)
            .and_then(|b| b.build().map_err(FieldError::from))
            .map_err(|e| error(Some("defaults".to_owned()), e.field.as_deref(), e.message))?;

        let mut policies = Policies::new(None);
        for (i, route) in routes.into_iter().enumerate() {
            let Value::Table(route) = route else {
                return Err(error(None, Some("route"), format!("route {}: expected a table", i + 1)));
            };
            let path = route.get("path").and_then(Value::as_str).map(str::to_owned);
            let at = Some(match &path {
                Some(path) => format!("route {} ({path})", i + 1),
                None => format!("route {}", i + 1),
            });
            let route = load_route(&defaults, route).map_err(|e| error(at.clone(), e.field.as_deref(), e.message))?;
            policies = route.register(policies);
        }
        Ok(policies)
    }
}

/// Reads a table of route policies (`defaults` and a list of `route`s, as
/// in the [module docs](self)) from any serde format: YAML, JSON, or a
/// team's own configuration through figment or config-rs. Errors name the
/// route and the field, as [`Policies::from_toml_str`]'s do.
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
impl<'de> serde::Deserialize<'de> for Policies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let document = table(deserializer)?;
        Policies::from_table(document, "policies").map_err(|e| serde::de::Error::custom(e.without_file()))
    }
}

/// Reads one policy (the fields of a route, without `path`, `cache` and
/// `invalidated_by`) from any serde format, with the
/// [module docs](self)' fields and values. Unknown fields are refused.
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
impl<'de> serde::Deserialize<'de> for CachePolicy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = table(deserializer)?;
        policy_builder(&table)
            .and_then(|builder| builder.build().map_err(FieldError::from))
            .map_err(serde::de::Error::custom)
    }
}

/// A table read from any serde format, as the TOML walker reads tables.
/// Read through JSON's value model, whose maps take any scalar key (YAML's
/// `404: 1m` as well as `"404": 1m`); a null, or an integer beyond `i64`,
/// is refused.
fn table<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Table, D::Error> {
    match toml_value(<serde_json::Value as serde::Deserialize>::deserialize(deserializer)?).map_err(serde::de::Error::custom)? {
        Value::Table(table) => Ok(table),
        other => Err(serde::de::Error::custom(format!("expected a table, found {}", other.type_str()))),
    }
}

fn toml_value(value: serde_json::Value) -> Result<Value, String> {
    Ok(match value {
        serde_json::Value::Null => return Err("a null value: leave the field out instead".to_owned()),
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Integer(i),
            (None, Some(f)) if !n.is_u64() => Value::Float(f),
            _ => return Err(format!("{n} is out of range")),
        },
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => Value::Array(items.into_iter().map(toml_value).collect::<Result<_, _>>()?),
        serde_json::Value::Object(map) => Value::Table(
            map.into_iter()
                .map(|(key, value)| Ok((key, toml_value(value)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

impl ConfigFileError {
    /// The error without the file's name: `route 2 (/a): ttl: ...`.
    fn without_file(&self) -> String {
        let full = self.to_string();
        full.strip_prefix(&format!("{}: ", self.file)).unwrap_or(&full).to_owned()
    }
}

/// The first line of a TOML parse error, with its position.
fn syntax_message(e: &toml::de::Error, source: &str) -> String {
    let message = e.message().to_owned();
    match e.span() {
        Some(span) => {
            let before = &source[..span.start.min(source.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

struct LoadedRoute {
    path: PathPattern,
    policy: Option<CachePolicy>,
    rules: Vec<InvalidationRule>,
}

impl LoadedRoute {
    fn register(self, policies: Policies) -> Policies {
        let policies = self.rules.into_iter().fold(policies, |policies, rule| policies.invalidate_on(rule));
        policies.route(self.path.as_str(), self.policy.clone()).path(self.path, self.policy)
    }
}

fn load_route(defaults: &Table, mut route: Table) -> Result<LoadedRoute, FieldError> {
    let path = match route.remove("path") {
        Some(Value::String(path)) => path.parse::<PathPattern>().map_err(FieldError::from)?,
        Some(other) => return Err(FieldError::at("path", format!("expected a string, found {}", other.type_str()))),
        None => return Err(FieldError::at("path", "missing: every route needs a path")),
    };
    let cache = match route.remove("cache") {
        None => true,
        Some(value) => boolean("cache", &value)?,
    };
    let invalidated_by = route.remove("invalidated_by");
    let mut merged = merge(defaults, route);
    // Metrics and traces name the route by its path unless told otherwise.
    if !merged.contains_key("label") {
        merged.insert("label".to_owned(), Value::String(path.as_str().to_owned()));
    }
    let builder = policy_builder(&merged)?;
    let tags = templates(merged.get("tags"))?;
    // The tenant is read as the route reads it; the rule's own tags are
    // the only ones it drops.
    let tenant_policy = policy_builder(&without(&merged, "tags"))?.build()?;
    let policy = builder.build()?;
    let rules = match invalidated_by {
        None => Vec::new(),
        Some(Value::Array(rules)) => rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| load_rule(i, rule, &tags, &tenant_policy))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(FieldError::at(
                "invalidated_by",
                format!("expected an array of tables, found {}", other.type_str()),
            ));
        }
    };
    Ok(LoadedRoute {
        path,
        policy: cache.then_some(policy),
        rules,
    })
}

fn load_rule(i: usize, rule: Value, route_tags: &[TagTemplate], tenant_policy: &CachePolicy) -> Result<InvalidationRule, FieldError> {
    let field = format!("invalidated_by[{}]", i + 1);
    let at = |what: &str, message: String| FieldError::at(&format!("{field}.{what}"), message);
    let Value::Table(mut rule) = rule else {
        return Err(FieldError::at(&field, "expected a table: { method = \"PUT\", path = \"...\" }"));
    };
    let mut methods = Vec::new();
    if let Some(method) = rule.remove("method") {
        methods.push(unsafe_method(&method).map_err(|m| at("method", m))?);
    }
    if let Some(list) = rule.remove("methods") {
        let Value::Array(list) = list else {
            return Err(at("methods", format!("expected a list of methods, found {}", list.type_str())));
        };
        for method in &list {
            methods.push(unsafe_method(method).map_err(|m| at("methods", m))?);
        }
    }
    let path = match rule.remove("path") {
        Some(Value::String(path)) => path.parse::<PathPattern>().map_err(|e| at("path", FieldError::from(e).message))?,
        Some(other) => return Err(at("path", format!("expected a string, found {}", other.type_str()))),
        None => {
            return Err(at(
                "path",
                "missing: a rule needs the path of the requests that invalidate".to_owned(),
            ));
        }
    };
    let tags = match rule.remove("tags") {
        Some(tags) => templates(Some(&tags)).map_err(|e| at("tags", e.message))?,
        None => route_tags.to_vec(),
    };
    if tags.is_empty() {
        return Err(at("tags", "no tags to drop: give the rule tags, or the route tags".to_owned()));
    }
    if let Some(key) = rule.keys().next() {
        return Err(at(key, "unknown field (expected method, methods, path, tags)".to_owned()));
    }
    Ok(InvalidationRule::new(methods, path, tags, tenant_policy.clone()))
}

fn unsafe_method(value: &Value) -> Result<Method, String> {
    let Value::String(name) = value else {
        return Err(format!("expected a method name, found {}", value.type_str()));
    };
    let method = Method::from_bytes(name.to_ascii_uppercase().as_bytes()).map_err(|_| format!("`{name}` is not a method"))?;
    match method {
        method if crate::method::invalidates(&method) => Ok(method),
        method if crate::method::is_safe(&method) => Err(format!("`{method}` is a safe method: it never invalidates")),
        method => Err(format!("`{method}` never invalidates")),
    }
}

/// `defaults` with `route`'s fields on top; `status_ttl` tables merge.
fn merge(defaults: &Table, route: Table) -> Table {
    let mut merged = defaults.clone();
    for (key, value) in route {
        match (merged.get_mut(&key), value) {
            (Some(Value::Table(base)), Value::Table(top)) if key == "status_ttl" => base.extend(top),
            (_, value) => {
                merged.insert(key, value);
            }
        }
    }
    merged
}

fn without(table: &Table, key: &str) -> Table {
    let mut table = table.clone();
    table.remove(key);
    table
}

#[cfg(test)]
mod tests {
    use http::{Request, StatusCode};
    use proptest::prelude::*;

    use super::{fields::POLICY_FIELDS, *};
    use crate::CacheMode;

    fn load(source: &str) -> Result<Policies, ConfigFileError> {
        Policies::from_toml_str(source, "cache.toml")
    }

    fn err(source: &str) -> String {
        load(source).unwrap_err().to_string()
    }

    const TABLE: &str = r#"
        [defaults]
        namespace = "shop"
        tenant_header = "x-tenant-id"
        ttl = "10m"
        status_ttl = { 404 = "30s" }

        [[route]]
        path = "/api/v1/products/{id}"
        ttl = "1h"
        status_ttl = { 410 = "5m" }
        tags = ["product:{tenant}:{id}"]
        invalidated_by = [{ method = "PUT", path = "/api/v1/products/{id}" }]

        [[route]]
        path = "/api/v1/products"
        tags = ["products:{tenant}"]
        invalidated_by = [{ methods = ["put", "DELETE"], path = "/api/v1/products/{id}" }, { path = "/api/v1/orders" }]

        [[route]]
        path = "/admin/*"
        cache = false

        [[route]]
        path = "/*"
        mode = "rfc9111"
    "#;

    fn parts(method: &str, uri: &str) -> http::request::Parts {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("x-tenant-id", "acme")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn routes_take_defaults_and_first_match_wins() {
        let policies = load(TABLE).unwrap();
        let get = |path: &str| policies.select(None, &Method::GET, path).map(|s| s.policy().clone());
        let product = get("/api/v1/products/7").unwrap();
        assert_eq!(product.ttl().as_secs(), 3600);
        assert_eq!(product.inner().ttl_for(StatusCode::NOT_FOUND).as_secs(), 30, "merged status_ttl");
        assert_eq!(product.inner().ttl_for(StatusCode::GONE).as_secs(), 300);
        assert_eq!(product.inner().key.namespace, "shop");
        assert_eq!(product.label(), "/api/v1/products/{id}", "labelled by its path");
        assert_eq!(get("/api/v1/products").unwrap().ttl().as_secs(), 600);
        assert!(get("/admin/users").is_none(), "cache = false");
        assert_eq!(get("/other").unwrap().mode(), CacheMode::Rfc9111, "the catch-all");
        // By framework pattern too.
        let framework = policies.select(Some("/api/v1/products/{id}"), &Method::GET, "/x/y").unwrap();
        assert_eq!(framework.policy().ttl().as_secs(), 3600);
    }

    #[test]
    fn unsafe_requests_carry_the_rules_tags() {
        let policies = load(TABLE).unwrap();
        let put = parts("PUT", "/api/v1/products/7");
        let selection = policies.select(None, &put.method, put.uri.path()).unwrap();
        let route = selection.route_match(&put, crate::RouteMatch::default());
        assert_eq!(route.get("id"), Some("7"));
        assert_eq!(route.invalidations(), ["product:acme:7", "products:acme"]);
        // A POST on a path no route caches, covered by a rule.
        let post = parts("POST", "/api/v1/orders");
        let selection = policies.select(None, &post.method, post.uri.path()).unwrap();
        assert_eq!(
            selection.route_match(&post, crate::RouteMatch::default()).invalidations(),
            ["products:acme"]
        );
        let get = parts("GET", "/api/v1/products/7");
        let selection = policies.select(None, &get.method, get.uri.path()).unwrap();
        assert!(selection.route_match(&get, crate::RouteMatch::default()).invalidations().is_empty());
    }

    #[test]
    fn errors_name_the_file_the_route_and_the_field() {
        let cases = [
            (
                "[[route]]\npath = \"/a\"\nttl = \"1x\"",
                "cache.toml: route 1 (/a): ttl: invalid duration `1x`",
            ),
            (
                "[[route]]\npath = \"/a\"\ntll = \"1m\"",
                "cache.toml: route 1 (/a): tll: unknown field; expected one of mode, ttl,",
            ),
            (
                "[[route]]\npath = \"/a\"\nttl = 5",
                "cache.toml: route 1 (/a): ttl: expected a duration such as",
            ),
            ("[[route]]\nttl = \"5m\"", "cache.toml: route 1: path: missing"),
            ("[[route]]\npath = \"a\"", "cache.toml: route 1 (a): path: `a`: must start with `/`"),
            ("[defaults]\nttl = \"zz\"", "cache.toml: defaults: ttl: invalid duration `zz`"),
            (
                "[defaults]\npath = \"/a\"",
                "cache.toml: defaults: path: only a [[route]] takes this field",
            ),
            (
                "[[route]]\npath = \"/a\"\nmode = \"lru\"",
                "cache.toml: route 1 (/a): mode: `lru`: expected",
            ),
            (
                "[[route]]\npath = \"/a\"\nstatus_ttl = { 999x = \"1m\" }",
                "cache.toml: route 1 (/a): status_ttl: `999x` is not an HTTP status code",
            ),
            (
                "[[route]]\npath = \"/a\"\ntags = [\"p:{\"]",
                "cache.toml: route 1 (/a): tags: `p:{`",
            ),
            (
                "[[route]]\npath = \"/a\"\ntenant_header = \"bad header\"",
                "cache.toml: route 1 (/a): tenant_header:",
            ),
            (
                "[[route]]\npath = \"/a\"\ntags = [\"a\"]\ninvalidated_by = [{ method = \"GET\", path = \"/a\" }]",
                "cache.toml: route 1 (/a): invalidated_by[1].method: `GET` is a safe method",
            ),
            (
                "[[route]]\npath = \"/a\"\ninvalidated_by = [{ path = \"/a\" }]",
                "cache.toml: route 1 (/a): invalidated_by[1].tags: no tags to drop",
            ),
            (
                "[[route]]\npath = \"/a\"\ntags = [\"a\"]\ninvalidated_by = [{ path = \"/a\", tag = \"x\" }]",
                "cache.toml: route 1 (/a): invalidated_by[1].tag: unknown field",
            ),
            (
                "[[route]]\npath = \"/a\"\n\n[[route]]\npath = \"/b\"\ncache = 1",
                "cache.toml: route 2 (/b): cache: expected true or false",
            ),
            ("surprise = 1", "cache.toml: surprise: unknown top-level key"),
            ("[[route]\npath = 1", "cache.toml: line 1, column"),
        ];
        for (source, expected) in cases {
            let message = err(source);
            assert!(
                message.starts_with(expected),
                "{source:?}\n  gave {message:?}\n  expected {expected:?}"
            );
        }
    }

    /// The TOML table above, in YAML.
    const YAML: &str = r#"
defaults:
  namespace: shop
  tenant_header: x-tenant-id
  ttl: 10m
  status_ttl: { 404: 30s }
route:
  - path: "/api/v1/products/{id}"
    ttl: 1h
    status_ttl: { "410": 5m }
    tags: ["product:{tenant}:{id}"]
    invalidated_by: [{ method: PUT, path: "/api/v1/products/{id}" }]
  - path: /api/v1/products
    tags: ["products:{tenant}"]
    invalidated_by:
      - { methods: [put, DELETE], path: "/api/v1/products/{id}" }
      - { path: /api/v1/orders }
  - path: /admin/*
    cache: false
  - path: /*
    mode: rfc9111
"#;

    /// A selected policy's TTL, 404 TTL, label and mode, and the tags a
    /// `PUT` of the path drops.
    type Selected = (u64, u64, String, CacheMode, Vec<String>);

    /// What a table selects for a few requests, to compare loaders.
    fn selected(policies: &Policies) -> Vec<Option<Selected>> {
        ["/api/v1/products/7", "/api/v1/products", "/admin/users", "/other"]
            .into_iter()
            .map(|path| {
                let policy = policies.select(None, &Method::GET, path)?.policy().clone();
                let put = parts("PUT", path);
                let route = policies
                    .select(None, &Method::PUT, path)
                    .map(|s| s.route_match(&put, crate::RouteMatch::default()));
                Some((
                    policy.ttl().as_secs(),
                    policy.inner().ttl_for(StatusCode::NOT_FOUND).as_secs(),
                    policy.label().to_owned(),
                    policy.mode(),
                    route.map(|r| r.invalidations().to_vec()).unwrap_or_default(),
                ))
            })
            .collect()
    }

    #[test]
    fn the_table_loads_from_yaml_and_through_figment() {
        use figment::{
            Figment,
            providers::{Format, Toml, Yaml},
        };
        let from_toml = selected(&load(TABLE).unwrap());
        assert_eq!(from_toml[0].as_ref().unwrap().0, 3600, "the fixture selects something");
        let from_yaml: Policies = Figment::from(Yaml::string(YAML)).extract().unwrap();
        assert_eq!(selected(&from_yaml), from_toml);
        let from_yaml: Policies = serde_yaml::from_str(YAML).unwrap();
        assert_eq!(selected(&from_yaml), from_toml, "status codes as YAML integer keys");
        // Nested in an application's own configuration, next to its other
        // settings.
        #[derive(serde::Deserialize)]
        struct AppConfig {
            #[allow(dead_code)]
            port: u16,
            cache: Policies,
        }
        let nested = format!(
            "port = 8080\n{}",
            TABLE
                .replace("[defaults]", "[cache.defaults]")
                .replace("[[route]]", "[[cache.route]]")
        );
        let app: AppConfig = Figment::from(Toml::string(&nested)).extract().unwrap();
        assert_eq!(selected(&app.cache), from_toml);
        // And from JSON: any serde format.
        let json = r#"{"route": [{"path": "/a", "ttl": "90s", "vary": ["accept-language"]}]}"#;
        let policies: Policies = serde_json::from_str(json).unwrap();
        assert_eq!(policies.select(None, &Method::GET, "/a").unwrap().policy().ttl().as_secs(), 90);
    }

    #[test]
    fn serde_errors_name_the_route_and_the_field() {
        use figment::{
            Figment,
            providers::{Format, Yaml},
        };
        let yaml = "route:\n  - path: /a\n  - path: /b\n    ttl: 1x\n";
        let error = Figment::from(Yaml::string(yaml)).extract::<Policies>().unwrap_err().to_string();
        assert!(error.contains("route 2 (/b): ttl: invalid duration `1x`"), "{error}");
        let error = serde_json::from_str::<Policies>(r#"{"route": [{"path": "/a", "tll": "1m"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("route 1 (/a): tll: unknown field"), "{error}");
        let error = serde_json::from_str::<CachePolicy>(r#"{"ttl": 5}"#).unwrap_err().to_string();
        assert!(error.starts_with("ttl: expected a duration such as"), "{error}");
        let policy: CachePolicy = serde_json::from_str(r#"{"ttl": "2m", "stale_while_revalidate": "10s"}"#).unwrap();
        assert_eq!((policy.ttl().as_secs(), policy.inner().stale_while_revalidate.as_secs()), (120, 10));
        let error = serde_json::from_str::<CachePolicy>(r#"{"ttl": null}"#).unwrap_err().to_string();
        assert!(error.starts_with("a null value"), "{error}");
        let error = serde_json::from_str::<CachePolicy>(r#"{"max_body_size": 18446744073709551615}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("out of range"), "{error}");
        let ttl: crate::Ttl = serde_json::from_str(r#""1h30m""#).unwrap();
        assert_eq!(ttl.as_duration().as_secs(), 5400);
        assert!(serde_json::from_str::<crate::Ttl>("90").is_err());
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let e = Policies::from_toml_file("/nonexistent/cache.toml").unwrap_err();
        assert_eq!(e.file(), "/nonexistent/cache.toml");
        assert!(e.to_string().starts_with("/nonexistent/cache.toml: cannot read:"), "{e}");
    }

    proptest! {
        #[test]
        fn any_text_loads_or_fails_cleanly(source in "[\\[\\]a-z_=\"{}/ .0-9\n]{0,80}") {
            let _ = load(&source);
        }

        #[test]
        fn any_field_value_loads_or_fails_cleanly(field in proptest::sample::select(POLICY_FIELDS.to_vec()), value in "(\"[a-z0-9 {}:]{0,6}\"|-?[0-9]{1,4}|true|false|\\[\\]|\\{\\})") {
            let _ = load(&format!("[[route]]\npath = \"/a\"\n{field} = {value}"));
        }
    }
}
