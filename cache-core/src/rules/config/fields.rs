//! The fields of a policy table: each TOML value checked and handed to
//! the policy builder, with errors that name the field.

use std::{collections::BTreeMap, fmt, str::FromStr};

use http::StatusCode;
use toml::{Table, Value};

use super::ROUTE_FIELDS;
use crate::{CacheMode, CachePolicy, CachePolicyBuilder, ConfigError, TagTemplate, Ttl};

/// Every policy field, in the order errors list them.
pub(super) const POLICY_FIELDS: [&str; 29] = [
    "mode",
    "ttl",
    "stale_while_revalidate",
    "stale_if_error",
    "early_refresh",
    "jitter",
    "status_ttl",
    "cacheable_statuses",
    "max_body_size",
    "namespace",
    "key_version",
    "tenant_header",
    "key_by_principal",
    "query_allow",
    "query_deny",
    "ignore_query",
    "vary",
    "strip_request_headers",
    "tags",
    "downstream_cache_control",
    "downstream_cdn_cache_control",
    "surrogate_key_header",
    "cache_tag_header",
    "cdn_cache_control_target",
    "coalesce",
    "coalesce_across_instances",
    "coalesce_timeout",
    "hit_for_miss",
    "label",
];

/// A mistake in one field.
#[derive(Debug)]
pub(super) struct FieldError {
    pub(super) field: Option<String>,
    pub(super) message: String,
}

impl FieldError {
    pub(super) fn at(field: &str, message: impl fmt::Display) -> Self {
        FieldError {
            field: Some(field.to_owned()),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl From<ConfigError> for FieldError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Invalid { field, reason } => FieldError::at(field, reason),
            ConfigError::TagTemplate { template, reason } => FieldError::at("tags", format!("`{template}`: {reason}")),
        }
    }
}

pub(super) fn templates(value: Option<&Value>) -> Result<Vec<TagTemplate>, FieldError> {
    strings("tags", value)?
        .iter()
        .map(|t| t.parse::<TagTemplate>().map_err(FieldError::from))
        .collect()
}

pub(super) fn policy_builder(table: &Table) -> Result<CachePolicyBuilder, FieldError> {
    let mut b = CachePolicy::builder();
    for (key, value) in table {
        let field = key.as_str();
        b = match field {
            "mode" => b.mode(mode(field, value)?),
            "ttl" => b.ttl(duration(field, value)?),
            "stale_while_revalidate" => b.stale_while_revalidate(duration(field, value)?),
            "stale_if_error" => b.stale_if_error(duration(field, value)?),
            "jitter" => b.jitter(duration(field, value)?),
            "coalesce_timeout" => b.coalesce_timeout(duration(field, value)?),
            "hit_for_miss" => b.hit_for_miss(duration(field, value)?),
            "early_refresh" => b.early_refresh(number(field, value)?),
            "status_ttl" => status_ttls(field, value)?
                .into_iter()
                .fold(b, |b, (status, ttl)| b.status_ttl(status, ttl)),
            "cacheable_statuses" => b.cacheable_statuses(status_codes(field, value)?),
            "max_body_size" => b.max_body_size(integer(field, value)?),
            "key_version" => b.key_version(integer(field, value)?),
            "namespace" => b.namespace(string(field, value)?),
            "tenant_header" => b.tenant_header(string(field, value)?),
            "label" => b.label(string(field, value)?),
            "key_by_principal" if boolean(field, value)? => b.key_by_principal(),
            "ignore_query" if boolean(field, value)? => b.ignore_query(),
            "key_by_principal" | "ignore_query" => b,
            "query_allow" => b.query_allow(strings(field, Some(value))?),
            "query_deny" => b.query_deny(strings(field, Some(value))?),
            "vary" => b.vary(strings(field, Some(value))?),
            "strip_request_headers" => b.strip_request_headers(strings(field, Some(value))?),
            "tags" => strings(field, Some(value))?.iter().fold(b, |b, t| b.tag(t)),
            "downstream_cache_control" => b.downstream_cache_control(string(field, value)?),
            "downstream_cdn_cache_control" => b.downstream_cdn_cache_control(string(field, value)?),
            "surrogate_key_header" if boolean(field, value)? => b.surrogate_key_header(),
            "cache_tag_header" if boolean(field, value)? => b.cache_tag_header(),
            "surrogate_key_header" | "cache_tag_header" => b,
            "cdn_cache_control_target" => b.cdn_cache_control_target(boolean(field, value)?),
            "coalesce" => b.coalesce(boolean(field, value)?),
            "coalesce_across_instances" => b.coalesce_across_instances(boolean(field, value)?),
            other if ROUTE_FIELDS.contains(&other) => return Err(FieldError::at(other, "only a [[route]] takes this field")),
            other => {
                return Err(FieldError::at(
                    other,
                    format!("unknown field; expected one of {}", POLICY_FIELDS.join(", ")),
                ));
            }
        };
    }
    Ok(b)
}

fn mode(field: &str, value: &Value) -> Result<CacheMode, FieldError> {
    match string(field, value)? {
        "policy" => Ok(CacheMode::Policy),
        "rfc9111" => Ok(CacheMode::Rfc9111),
        other => Err(FieldError::at(field, format!("`{other}`: expected \"policy\" or \"rfc9111\""))),
    }
}

fn number(field: &str, value: &Value) -> Result<f64, FieldError> {
    match value {
        Value::Float(f) => Ok(*f),
        Value::Integer(i) => Ok(*i as f64),
        other => Err(FieldError::at(field, format!("expected a number, found {}", other.type_str()))),
    }
}

/// A table of TTLs by status code (`{ 404 = "1m" }`), in status order.
fn status_ttls(field: &str, value: &Value) -> Result<Vec<(StatusCode, Ttl)>, FieldError> {
    let Value::Table(statuses) = value else {
        return Err(FieldError::at(
            field,
            format!("expected a table such as {{ 404 = \"1m\" }}, found {}", value.type_str()),
        ));
    };
    let sorted: BTreeMap<&String, &Value> = statuses.iter().collect();
    sorted
        .into_iter()
        .map(|(status, ttl)| Ok((status_code(field, status)?, duration(field, ttl)?)))
        .collect()
}

fn status_codes(field: &str, value: &Value) -> Result<Vec<StatusCode>, FieldError> {
    let Value::Array(list) = value else {
        return Err(FieldError::at(
            field,
            format!("expected a list of status codes, found {}", value.type_str()),
        ));
    };
    list.iter()
        .map(|v| match v {
            Value::Integer(code) => status_code(field, &code.to_string()),
            other => Err(FieldError::at(field, format!("expected a status code, found {}", other.type_str()))),
        })
        .collect()
}

fn string<'a>(field: &str, value: &'a Value) -> Result<&'a str, FieldError> {
    value
        .as_str()
        .ok_or_else(|| FieldError::at(field, format!("expected a string, found {}", value.type_str())))
}

fn strings(field: &str, value: Option<&Value>) -> Result<Vec<String>, FieldError> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let Value::Array(list) = value else {
        return Err(FieldError::at(
            field,
            format!("expected a list of strings, found {}", value.type_str()),
        ));
    };
    list.iter().map(|v| string(field, v).map(str::to_owned)).collect()
}

pub(super) fn boolean(field: &str, value: &Value) -> Result<bool, FieldError> {
    value
        .as_bool()
        .ok_or_else(|| FieldError::at(field, format!("expected true or false, found {}", value.type_str())))
}

fn integer<T: TryFrom<i64>>(field: &str, value: &Value) -> Result<T, FieldError> {
    let Value::Integer(i) = value else {
        return Err(FieldError::at(field, format!("expected an integer, found {}", value.type_str())));
    };
    T::try_from(*i).map_err(|_| FieldError::at(field, format!("{i} is out of range")))
}

fn duration(field: &str, value: &Value) -> Result<Ttl, FieldError> {
    let Value::String(text) = value else {
        return Err(FieldError::at(
            field,
            format!(
                "expected a duration such as \"90s\", \"10m\", \"1h\" or \"7d\", found {}",
                value.type_str()
            ),
        ));
    };
    Ttl::from_str(text).map_err(|e| FieldError::at(field, e))
}

fn status_code(field: &str, text: &str) -> Result<StatusCode, FieldError> {
    text.parse::<u16>()
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .filter(|code| code.as_u16() >= 100)
        .ok_or_else(|| FieldError::at(field, format!("`{text}` is not an HTTP status code")))
}
