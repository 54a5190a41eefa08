//! The matched route of a request and per-route policies.

use std::{borrow::Cow, collections::HashMap, sync::Arc};

use http::{Method, request::Parts};

use crate::{CachePolicy, PathPattern, TagTemplate, tags::TagContext};

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
    invalidates: Vec<String>,
}

impl RouteMatch {
    /// A match for `pattern` with no parameters yet.
    pub fn new(pattern: impl Into<Arc<str>>) -> Self {
        RouteMatch {
            pattern: Some(pattern.into()),
            ..RouteMatch::default()
        }
    }

    /// A match whose parameters `params` reads from the request head when
    /// a tag template needs them.
    pub fn deferred(params: ParamsFn) -> Self {
        RouteMatch {
            deferred: Some(params),
            ..RouteMatch::default()
        }
    }

    /// Adds a path parameter, percent-decoded as the framework's `Path`
    /// extractor gives it to the handler (what tag templates are filled
    /// with).
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Adds a path parameter as it appears in the request's path
    /// (percent-encoded): it is decoded as [`param`](Self::param) expects.
    #[must_use]
    pub fn param_encoded(self, name: impl Into<String>, value: &str) -> Self {
        let value = crate::percent::decode(value).into_owned();
        self.param(name, value)
    }

    /// Adds a tag to drop when the request is an unsafe one (`POST`, `PUT`,
    /// `DELETE`, ...) that succeeds, besides the tags of its policy: what an
    /// [`InvalidationRule`] asks for.
    #[must_use]
    pub fn invalidate(mut self, tag: impl Into<String>) -> Self {
        self.invalidates.push(tag.into());
        self
    }

    /// The tags added with [`RouteMatch::invalidate`].
    pub fn invalidations(&self) -> &[String] {
        &self.invalidates
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

/// Policies for the routes behind one layer: a default, overrides by the
/// route pattern the framework matched, overrides by request path, and
/// invalidation rules.
///
/// A request's policy is, in this order: the one registered with
/// [`Policies::route`] for the pattern the framework matched, exactly as
/// registered (`/api/v1/products/{id}`); the one of the first
/// [`Policies::path`] pattern, in the order they were added, that matches
/// the request's path; the default. Any of them may be `None`, which leaves
/// the request uncached. A TOML table
/// ([`Policies::from_toml_file`](crate::config)) fills the path patterns.
///
/// An unsafe request (`POST`, `PUT`, `PATCH`, `DELETE`, ...) that succeeds
/// drops its policy's tags and its URI's entries; every
/// [`InvalidationRule`] that matches it drops its tags too, even where no
/// policy applies.
///
/// Cheap to clone: clones share the table until one of them is changed.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    table: Arc<Table>,
}

#[derive(Debug, Clone, Default)]
struct Table {
    default: Option<CachePolicy>,
    routes: HashMap<String, Option<CachePolicy>>,
    paths: Vec<(PathPattern, Option<CachePolicy>)>,
    rules: Vec<InvalidationRule>,
}

impl Policies {
    /// Policies with `default` for every route without an override.
    pub fn new(default: impl Into<Option<CachePolicy>>) -> Self {
        Policies::default().fallback(default)
    }

    /// The table, to change (copied first if another clone shares it).
    fn table(&mut self) -> &mut Table {
        Arc::make_mut(&mut self.table)
    }

    /// Every policy replaced by `f(policy)`: the default, those of routes
    /// and path patterns (a layer that must key every policy by some
    /// header uses it with [`CachePolicy::keyed_by`]).
    #[must_use]
    pub fn map(mut self, f: impl Fn(&CachePolicy) -> CachePolicy) -> Self {
        let apply = |policy: &mut Option<CachePolicy>| {
            if let Some(p) = policy {
                *p = f(p);
            }
        };
        let table = self.table();
        apply(&mut table.default);
        table.routes.values_mut().for_each(apply);
        table.paths.iter_mut().for_each(|(_, policy)| apply(policy));
        self
    }

    /// Sets the policy of the requests no route or path pattern matches
    /// (`None`: they pass through uncached).
    #[must_use]
    pub fn fallback(mut self, policy: impl Into<Option<CachePolicy>>) -> Self {
        self.table().default = policy.into();
        self
    }

    /// Sets the policy of one route pattern; `None` leaves the route uncached.
    /// A policy without a [label](crate::CachePolicyBuilder::label) is
    /// labelled with `pattern` in metrics and traces.
    #[must_use]
    pub fn route(mut self, pattern: impl Into<String>, policy: impl Into<Option<CachePolicy>>) -> Self {
        let pattern = pattern.into();
        let policy = labelled(policy.into(), &pattern);
        self.table().routes.insert(pattern, policy);
        self
    }

    /// Sets the policy of the requests whose path matches `pattern`, unless
    /// a pattern added before matches too; `None` leaves them uncached. A
    /// policy without a label is labelled with `pattern`.
    #[must_use]
    pub fn path(mut self, pattern: PathPattern, policy: impl Into<Option<CachePolicy>>) -> Self {
        let policy = labelled(policy.into(), pattern.as_str());
        self.table().paths.push((pattern, policy));
        self
    }

    /// Adds an invalidation rule.
    #[must_use]
    pub fn invalidate_on(mut self, rule: InvalidationRule) -> Self {
        self.table().rules.push(rule);
        self
    }

    /// Whether some route has its own policy by framework pattern, so that
    /// resolving needs the request's route pattern (adapters skip computing
    /// it otherwise).
    pub fn by_route(&self) -> bool {
        !self.table.routes.is_empty()
    }

    /// What applies to a request with `method` and `path` that matched the
    /// framework route `pattern` (when the framework tells), or `None` to
    /// pass it through untouched.
    pub fn select(&self, pattern: Option<&str>, method: &Method, path: &str) -> Option<Selection<'_>> {
        let by_path = || self.table.paths.iter().find(|(p, _)| p.matches(path));
        let framework = match self.table.routes.is_empty() {
            true => None,
            false => pattern.and_then(|p| self.table.routes.get(p)),
        };
        let (policy, path_route) = match framework {
            Some(route) => (route.as_ref(), None),
            None => match by_path() {
                Some((pattern, policy)) => (policy.as_ref(), Some(pattern)),
                None => (self.table.default.as_ref(), None),
            },
        };
        if let Some(policy) = policy {
            return Some(Selection {
                policies: self,
                policy,
                path_route,
            });
        }
        // No policy: an unsafe request that a rule covers still invalidates.
        if is_unsafe(method) {
            let rule = self.table.rules.iter().find(|rule| rule.applies(method, path))?;
            return Some(Selection {
                policies: self,
                policy: &rule.policy,
                path_route: None,
            });
        }
        None
    }
}

/// `policy`, labelled `pattern` unless it has a label of its own.
fn labelled(policy: Option<CachePolicy>, pattern: &str) -> Option<CachePolicy> {
    policy.map(|p| match p.label() == crate::metrics::DEFAULT_ROUTE_LABEL {
        true => p.with_label(pattern),
        false => p,
    })
}

fn is_unsafe(method: &Method) -> bool {
    crate::method::invalidates(method)
}

/// What [`Policies::select`] chose for a request.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    policies: &'a Policies,
    policy: &'a CachePolicy,
    path_route: Option<&'a PathPattern>,
}

impl<'a> Selection<'a> {
    /// The request's policy.
    pub fn policy(&self) -> &'a CachePolicy {
        self.policy
    }

    /// The route match to serve the request with: `framework` (what the
    /// adapter knows of the framework's route), or, when a path pattern
    /// chose the policy, that pattern and its captures; for an unsafe
    /// request, with the tags of every invalidation rule it matches.
    /// Called off the hit path.
    pub fn route_match(&self, parts: &Parts, framework: RouteMatch) -> RouteMatch {
        let path = parts.uri.path();
        let mut route = match self.path_route {
            Some(pattern) => pattern
                .captures(path)
                .unwrap_or_default()
                .into_iter()
                .fold(RouteMatch::new(pattern.as_str()), |route, (name, value)| {
                    route.param_encoded(name, &value)
                }),
            None => framework,
        };
        if is_unsafe(&parts.method) {
            for rule in self.policies.table.rules.iter() {
                if let Some(mut captures) = rule.captures(&parts.method, path) {
                    for (_, value) in &mut captures {
                        *value = crate::percent::decode(value).into_owned();
                    }
                    let tenant = rule.policy.tenant(parts);
                    let ctx = TagContext {
                        tenant: tenant.as_deref(),
                        headers: &parts.headers,
                        params: &captures,
                    };
                    route.invalidates.extend(rule.tags.iter().filter_map(|t| t.render(&ctx)));
                }
            }
        }
        route
    }
}

/// Tags to drop when an unsafe request matching a method and a path
/// pattern succeeds: `PUT /api/v1/products/{id}` drops
/// `product:{tenant}:{id}` and `products:{tenant}`.
///
/// Templates are filled from the pattern's captures, the request's headers
/// and the tenant, read as `tenant_policy` reads it (the policy of the route
/// whose entries the rule drops).
#[derive(Debug, Clone)]
pub struct InvalidationRule {
    methods: Vec<Method>,
    path: PathPattern,
    tags: Vec<TagTemplate>,
    policy: CachePolicy,
}

impl InvalidationRule {
    /// A rule for `methods` (every unsafe method when empty) on `path`.
    pub fn new(methods: Vec<Method>, path: PathPattern, tags: Vec<TagTemplate>, tenant_policy: CachePolicy) -> Self {
        InvalidationRule {
            methods,
            path,
            tags,
            policy: tenant_policy,
        }
    }

    fn applies(&self, method: &Method, path: &str) -> bool {
        self.method_applies(method) && self.path.matches(path)
    }

    fn method_applies(&self, method: &Method) -> bool {
        is_unsafe(method) && (self.methods.is_empty() || self.methods.contains(method))
    }

    fn captures(&self, method: &Method, path: &str) -> Option<Vec<(String, String)>> {
        match self.method_applies(method) {
            true => self.path.captures(path),
            false => None,
        }
    }
}

impl From<CachePolicy> for Policies {
    fn from(policy: CachePolicy) -> Self {
        Policies::new(policy)
    }
}
