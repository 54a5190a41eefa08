//! One request while the engine serves it: its head, policy, route, key and
//! class, built once by [`Cache::begin`](super::Cache::begin).

use std::{fmt, sync::Arc};

use http::request::Parts;
use tracing::{Span, field};

use super::{Cache, classify::Class};
use crate::{CachePolicy, RouteMatch, key::CacheKey, metrics::KeyHash, policy::PolicyInner};

/// A request the cache could not answer at once, classified and keyed: the
/// second step of serving it is [`Exchange::serve`].
///
/// Made by [`Cache::begin`](super::Cache::begin). Adapters give it the
/// route it matched ([`with_route`](Exchange::with_route)) when the route
/// is known after the request's head, and say whether they can run a
/// stale entry's refresh in the background
/// ([`refresh_in_background`](Exchange::refresh_in_background)).
pub struct Exchange {
    pub(crate) cache: Cache,
    pub(crate) policy: Arc<PolicyInner>,
    pub(crate) route: RouteMatch,
    /// The request head as the client sent it.
    pub(crate) parts: Parts,
    pub(crate) key: CacheKey,
    pub(crate) class: Class,
    /// Whether the responses to this request can be shared with other
    /// requests for the key (not so for a request with credentials the key
    /// does not include).
    pub(crate) shared: bool,
    /// Whether a stale entry is answered at once and refreshed by a
    /// [`Refresh`](super::Refresh) the caller runs, rather than refreshed
    /// before answering.
    pub(crate) background_refresh: bool,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("method", &self.parts.method)
            .field("uri", &self.parts.uri)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    pub(crate) fn new(cache: Cache, policy: CachePolicy, parts: Parts, class: Class, key: CacheKey) -> Self {
        Exchange {
            cache,
            policy: Arc::clone(policy.shared()),
            route: RouteMatch::default(),
            shared: !matches!(class, Class::StoreOnly),
            parts,
            key,
            class,
            background_refresh: false,
        }
    }

    /// The request head.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// The route given with [`with_route`](Exchange::with_route).
    pub fn route(&self) -> &RouteMatch {
        &self.route
    }

    /// The route the request matched: its pattern and path parameters, for
    /// tag templates, and the invalidation rules it triggers. Default: none
    /// — an adapter that knows the route must give it
    /// ([`Selection::route_match`](crate::adapter::Selection::route_match)),
    /// or tags with path parameters and the rules' invalidations are lost.
    #[must_use]
    pub fn with_route(mut self, route: RouteMatch) -> Self {
        self.route = route;
        self
    }

    /// Answers a stale entry within its `stale-while-revalidate` window at
    /// once and hands the refresh back in [`Served::refresh`](super::Served)
    /// for the caller to run in the background (`tokio::spawn`, or a local
    /// task). One refresh per key runs at a time, and at most
    /// [`MAX_REFRESHES`](crate::adapter::MAX_REFRESHES) across keys; past
    /// that the stale entry is still answered and a later request refreshes
    /// it. Off by default: the request that finds the entry stale refreshes
    /// it before answering (concurrent requests for the key answer stale at
    /// once).
    #[must_use]
    pub fn refresh_in_background(mut self, background: bool) -> Self {
        self.background_refresh = background;
        self
    }

    /// What responses are built for.
    pub(crate) fn head(&self) -> Head<'_> {
        Head {
            parts: &self.parts,
            policy: &self.policy,
        }
    }

    /// Records a short hash of the key in `span` (never the key: it can
    /// name the tenant).
    pub(crate) fn record_key(&self, span: &Span) {
        record_key(span, &self.key);
    }
}

/// What responses are built for: the request head and the route's policy.
#[derive(Clone, Copy)]
pub(crate) struct Head<'a> {
    pub(crate) parts: &'a Parts,
    pub(crate) policy: &'a PolicyInner,
}

/// Records a short hash of the request's key in its span, when the span is
/// enabled.
pub(crate) fn record_key(span: &Span, key: &CacheKey) {
    if !span.is_disabled() {
        span.record("key", field::display(KeyHash(key)));
    }
}
