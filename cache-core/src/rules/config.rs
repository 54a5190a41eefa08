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
mod formats;

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
    fn from_table(document: Table, file: &str) -> Result<Policies, ConfigFileError> {
        let error = |route: Option<String>, field: Option<&str>, message: String| ConfigFileError {
            file: file.to_owned(),
            route,
            field: field.map(str::to_owned),
            message,
        };
        let (defaults, routes) = split_document(document).map_err(|e| error(None, e.field.as_deref(), e.message))?;
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

/// The `defaults` table and the `[[route]]` array of a policy table, which
/// holds nothing else.
fn split_document(mut document: Table) -> Result<(Table, Vec<Value>), FieldError> {
    let defaults = match document.remove("defaults") {
        None => Table::new(),
        Some(Value::Table(table)) => table,
        Some(other) => return Err(FieldError::at("defaults", format!("expected a table, found {}", other.type_str()))),
    };
    let routes = match document.remove("route") {
        None => Vec::new(),
        Some(Value::Array(routes)) => routes,
        Some(other) => {
            return Err(FieldError::at(
                "route",
                format!("expected an array of tables ([[route]]), found {}", other.type_str()),
            ));
        }
    };
    if let Some(key) = document.keys().next() {
        return Err(FieldError::at(key, "unknown top-level key (expected `defaults` or `route`)"));
    }
    Ok((defaults, routes))
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
mod tests;
