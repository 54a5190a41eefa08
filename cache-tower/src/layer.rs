use std::{fmt, sync::Arc};

use cache_core::{Cache, CachePolicy, Policies, RouteMatch};
use http::request::Parts;
use tower_layer::Layer;

use crate::CacheService;

/// How a layer learns which route a request matched: the framework's route
/// pattern and path parameters. The default reports no route, so the
/// default policy applies and templates can use only the tenant and headers.
pub type RouteInfo = fn(&mut Parts) -> RouteMatch;

fn no_route(_: &mut Parts) -> RouteMatch {
    RouteMatch::default()
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
    pub(crate) policies: Arc<Policies>,
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
            policies: Arc::new(policies.into()),
            route_info: no_route,
        }
    }

    /// Sets the policy of one route pattern (`None`: not cached).
    #[must_use]
    pub fn route(mut self, pattern: impl Into<String>, policy: impl Into<Option<CachePolicy>>) -> Self {
        let policies = Arc::unwrap_or_clone(self.policies).route(pattern, policy);
        self.policies = Arc::new(policies);
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
