use std::fmt;

use cache_core::{Cache, CachePolicy, Policies};
use http::{Extensions, request::Parts};
use tower_layer::Layer;

use crate::CacheService;

/// How a layer learns which route a request matched, from what the web
/// framework leaves in the request: the route pattern, to pick the route's
/// policy, and the path parameters, to fill tag templates.
///
/// The parameters are read only when a tag needs them (after a miss), so a
/// hit never pays for them. [`RouteInfo::NONE`], the default, reports no
/// route: the default policy applies and templates can use only the tenant
/// and headers.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo {
    /// The pattern of the matched route, such as `/products/{id}`.
    pub pattern: for<'a> fn(&'a Extensions) -> Option<&'a str>,
    /// The path parameters of the matched route, by name.
    pub params: fn(&mut Parts) -> Vec<(String, String)>,
}

impl RouteInfo {
    /// No route information.
    pub const NONE: RouteInfo = RouteInfo {
        pattern: |_| None,
        params: |_| Vec::new(),
    };
}

/// Applies the cache to a service. Cheap to clone.
///
/// Holds the [`Cache`] (shared by every service this layer wraps) and the
/// [`Policies`] of the routes behind it. A request whose route has no policy
/// passes through untouched.
///
/// When two cache layers wrap one another, the outer one serves the request
/// and the inner one passes it through.
#[derive(Clone)]
pub struct CacheLayer {
    pub(crate) cache: Cache,
    pub(crate) policies: Policies,
    pub(crate) route_info: RouteInfo,
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("cache", &self.cache)
            .field("policies", &self.policies)
            .finish()
    }
}

impl CacheLayer {
    /// A layer serving every request with `policies` (a [`CachePolicy`] or
    /// a [`Policies`] table).
    pub fn new(cache: &Cache, policies: impl Into<Policies>) -> Self {
        CacheLayer {
            cache: cache.clone(),
            policies: policies.into(),
            route_info: RouteInfo::NONE,
        }
    }

    /// Sets the policy of one route pattern (`None`: not cached).
    #[must_use]
    pub fn route(mut self, pattern: impl Into<String>, policy: impl Into<Option<CachePolicy>>) -> Self {
        self.policies = self.policies.route(pattern, policy);
        self
    }

    /// Sets how the matched route is read from a request.
    #[must_use]
    pub fn route_info(mut self, route_info: RouteInfo) -> Self {
        self.route_info = route_info;
        self
    }

    /// The cache this layer serves from.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService::new(inner, self.clone())
    }
}
