//! The matched route of a request and per-route policies.

use std::{collections::HashMap, sync::Arc};

use crate::CachePolicy;

/// The route a request matched, as the web framework reports it: the route
/// pattern (`/api/v1/products/{id}`) and the values of its path parameters.
///
/// Adapters fill it in; the engine uses it to pick the route's policy and to
/// fill tag templates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteMatch {
    pattern: Option<Arc<str>>,
    params: Vec<(String, String)>,
}

impl RouteMatch {
    /// A match for `pattern` with no parameters yet.
    pub fn new(pattern: impl Into<Arc<str>>) -> Self {
        RouteMatch {
            pattern: Some(pattern.into()),
            params: Vec::new(),
        }
    }

    /// Adds a path parameter.
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// The route pattern, when the framework knows it.
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_deref()
    }

    /// The value of path parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Policies for the routes behind one layer: a default and overrides by route
/// pattern.
///
/// A route maps to a policy, or to `None` to leave it uncached. Patterns are
/// compared with the pattern the framework matched, exactly as registered
/// (`/api/v1/products/{id}`).
#[derive(Debug, Clone, Default)]
pub struct Policies {
    default: Option<CachePolicy>,
    routes: HashMap<String, Option<CachePolicy>>,
}

impl Policies {
    /// Policies with `default` for every route without an override.
    pub fn new(default: impl Into<Option<CachePolicy>>) -> Self {
        Policies {
            default: default.into(),
            routes: HashMap::new(),
        }
    }

    /// Sets the policy of one route pattern; `None` leaves the route uncached.
    #[must_use]
    pub fn route(mut self, pattern: impl Into<String>, policy: impl Into<Option<CachePolicy>>) -> Self {
        self.routes.insert(pattern.into(), policy.into());
        self
    }

    /// The policy for a request that matched `pattern`.
    pub fn resolve(&self, pattern: Option<&str>) -> Option<&CachePolicy> {
        match pattern.and_then(|p| self.routes.get(p)) {
            Some(route) => route.as_ref(),
            None => self.default.as_ref(),
        }
    }
}

impl From<CachePolicy> for Policies {
    fn from(policy: CachePolicy) -> Self {
        Policies::new(policy)
    }
}
