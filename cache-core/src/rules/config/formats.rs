//! The policy table from any serde format: `Deserialize` for [`Policies`]
//! and [`CachePolicy`], through the same field walker as TOML files.

use toml::{Table, Value};

use super::{
    ConfigFileError,
    fields::{FieldError, policy_builder},
};
use crate::{CachePolicy, Policies};

/// Reads a table of route policies (`defaults` and a list of `route`s, as
/// in the [module docs](crate::config)) from any serde format: YAML, JSON, or a
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
/// [module docs](crate::config)' fields and values. Unknown fields are refused.
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
