//! The matched route of a request and per-route policies.

use std::{borrow::Cow, collections::HashMap, sync::Arc};

use http::request::Parts;

use crate::CachePolicy;

/// Reads the path parameters of the matched route from a request head.
pub type ParamsFn = fn(&mut Parts) -> Vec<(String, String)>;

/// The route a request matched, as the web framework reports it: the route
/// pattern (`/api/v1/products/{id}`) and the values of its path parameters.
///
/// Adapters fill it in; the engine uses the parameters to fill tag
/// templates. They can be given at once ([`RouteMatch::param`]) or read
/// from the request only when a tag needs them ([`RouteMatch::deferred`]),
/// which keeps them off the hit path. A framework that knows the parameters
/// only once the request has reached its handler puts a `RouteMatch` in the
/// extensions of the origin's response; the engine prefers it and removes
/// it before the client sees the response.
#[derive(Debug, Clone, Default)]
pub struct RouteMatch {
    pattern: Option<Arc<str>>,
    params: Vec<(String, String)>,
    deferred: Option<ParamsFn>,
}

impl RouteMatch {
    /// A match for `pattern` with no parameters yet.
    pub fn new(pattern: impl Into<Arc<str>>) -> Self {
        RouteMatch {
            pattern: Some(pattern.into()),
            params: Vec::new(),
            deferred: None,
        }
    }

    /// A match whose parameters `params` reads from the request head when
    /// a tag template needs them.
    pub fn deferred(params: ParamsFn) -> Self {
        RouteMatch {
            pattern: None,
            params: Vec::new(),
            deferred: Some(params),
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

    /// The value of path parameter `name`, among those given at once.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every path parameter: those given at once, or those read from
    /// `parts` for a deferred match.
    pub(crate) fn params(&self, parts: &Parts) -> Cow<'_, [(String, String)]> {
        match self.deferred {
            Some(read) => Cow::Owned(read(&mut parts.clone())),
            None => Cow::Borrowed(&self.params),
        }
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

    /// Whether some route has its own policy, so that resolving needs the
    /// request's route pattern (adapters skip computing it otherwise).
    pub fn by_route(&self) -> bool {
        !self.routes.is_empty()
    }

    /// The policy for a request that matched `pattern`.
    pub fn resolve(&self, pattern: Option<&str>) -> Option<&CachePolicy> {
        if !self.by_route() {
            return self.default.as_ref();
        }
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
