//! Route policies: how long, under which key, with which tags.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use http::{HeaderName, HeaderValue, StatusCode, request::Parts};

use crate::{
    Ttl,
    error::ConfigError,
    key::{KeySpec, QueryFilter, TenantSource},
    metrics::RouteMetrics,
    tags::TagTemplate,
};

/// Statuses cached by default: those RFC 9110 §15.1 calls heuristically
/// cacheable, except `206 Partial Content` (ranges are passed through).
pub const DEFAULT_CACHEABLE_STATUSES: [u16; 11] = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];
/// Bodies larger than this are passed through uncached, by default.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;
/// The largest [`max_body_size`](CachePolicyBuilder::max_body_size) a
/// policy accepts: 1 GiB. Every stored entry can then be encoded for a
/// shared store ([`codec`](crate::store::codec)), whose layout describes bodies
/// below 4 GiB.
pub const MAX_BODY_SIZE_LIMIT: usize = 1 << 30;
/// How long requests wait for another request fetching the same key, by default.
pub const DEFAULT_COALESCE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a key whose response was not storable skips coalescing, by default.
pub const DEFAULT_HIT_FOR_MISS: Duration = Duration::from_secs(10);

/// How a policy decides what to store and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CacheMode {
    /// The route's TTL decides freshness; the origin's `no-store`,
    /// `private`, `no-cache` and `Set-Cookie` still prevent storage. The
    /// default: the application owns the origin and says how long its
    /// answers stay good.
    #[default]
    Policy,
    /// Shared-cache semantics of RFC 9111: freshness from the response
    /// (`s-maxage`, `max-age`, `Expires`, heuristics where §4.2.2 allows
    /// them, never the policy's TTL), request directives (`no-cache`,
    /// `max-age`, `max-stale`, `min-fresh`, `only-if-cached`), `no-cache`
    /// responses stored and revalidated before reuse, `must-revalidate` /
    /// `proxy-revalidate` / `s-maxage` forbidding stale answers. For a
    /// cache in front of an origin that speaks HTTP caching, such as a
    /// caching proxy.
    Rfc9111,
}

/// The caching policy of a route. Cheap to clone.
///
/// Built with [`CachePolicy::builder`]; see [`CachePolicyBuilder`] for every
/// setting and its default.
///
/// # Example
///
/// ```
/// use cache_core::CachePolicy;
///
/// let policy = CachePolicy::builder()
///     .ttl("1h")
///     .stale_while_revalidate("30s")
///     .tenant_header("x-tenant-id")
///     .query_allow(["page", "limit"])
///     .tag("product:{tenant}:{id}")
///     .build()
///     .unwrap();
/// assert_eq!(policy.ttl().as_secs(), 3600);
/// ```
#[derive(Debug, Clone)]
pub struct CachePolicy {
    inner: Arc<PolicyInner>,
}

#[derive(Debug, Clone)]
pub(crate) struct PolicyInner {
    pub(crate) mode: CacheMode,
    pub(crate) ttl: Duration,
    pub(crate) stale_while_revalidate: Duration,
    pub(crate) stale_if_error: Duration,
    /// XFetch's β; 0 when early refresh is off.
    pub(crate) early_refresh_beta: f64,
    pub(crate) jitter: Duration,
    pub(crate) status_ttls: Vec<(StatusCode, Duration)>,
    pub(crate) cacheable: BTreeSet<u16>,
    pub(crate) max_body_size: usize,
    pub(crate) key: KeySpec,
    pub(crate) tags: Vec<TagTemplate>,
    pub(crate) downstream_cache_control: Option<HeaderValue>,
    pub(crate) downstream_cdn_cache_control: Option<HeaderValue>,
    pub(crate) tag_headers: Vec<HeaderName>,
    pub(crate) cdn_cache_control_target: bool,
    pub(crate) coalesce: bool,
    pub(crate) coalesce_across_instances: bool,
    pub(crate) coalesce_timeout: Duration,
    pub(crate) hit_for_miss: Duration,
    /// The keyed request headers, as the names to add to `Vary`.
    pub(crate) keyed_headers: Vec<HeaderName>,
    /// Request headers removed before the origin sees a request whose
    /// response may be stored.
    pub(crate) strip: Vec<HeaderName>,
    /// The route label of metrics and traces, and its request counters.
    pub(crate) metrics: RouteMetrics,
}

impl CachePolicy {
    /// A builder with every default.
    pub fn builder() -> CachePolicyBuilder {
        CachePolicyBuilder::default()
    }

    /// A policy that keeps responses for `ttl` with every other default.
    ///
    /// # Panics
    ///
    /// Never: a policy with only a TTL is always valid.
    pub fn with_ttl(ttl: impl Into<Ttl>) -> Self {
        CachePolicy::builder()
            .ttl(ttl.into())
            .build()
            .expect("a policy with only a TTL is valid")
    }

    /// How the policy decides freshness and storage.
    pub fn mode(&self) -> CacheMode {
        self.inner.mode
    }

    /// The freshness lifetime of entries.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The key spec.
    pub fn key(&self) -> &KeySpec {
        &self.inner.key
    }

    /// The tenant of a request, according to the key spec.
    pub fn tenant(&self, parts: &Parts) -> Option<String> {
        self.inner.key.tenant(parts)
    }

    /// The route label of the policy's metrics and traces (see
    /// [`CachePolicyBuilder::label`]). Default: `default`.
    pub fn label(&self) -> &str {
        self.inner.metrics.label()
    }

    /// This policy with another route label (see
    /// [`CachePolicyBuilder::label`]), every other setting the same: for
    /// code that assigns built policies to routes and labels each by its
    /// route pattern. Cheap: the settings are cloned once, not per request.
    #[must_use]
    pub fn with_label(&self, label: &str) -> CachePolicy {
        if label == self.label() {
            return self.clone();
        }
        let mut inner = self.inner.as_ref().clone();
        inner.metrics = RouteMetrics::new(label);
        CachePolicy { inner: Arc::new(inner) }
    }

    /// This policy keyed by these request headers too (see
    /// [`CachePolicyBuilder::vary`]), every other setting the same: for a
    /// layer that must key every policy it is given, from code or from a
    /// TOML table, by a header it knows the origin reads (a reverse proxy
    /// keys by `Host`). Cheap: the settings are cloned once.
    #[must_use]
    pub fn keyed_by(&self, headers: &[HeaderName]) -> CachePolicy {
        if headers.iter().all(|h| self.inner.key.vary.contains(h)) {
            return self.clone();
        }
        let mut inner = self.inner.as_ref().clone();
        for h in headers {
            if !inner.key.vary.contains(h) {
                inner.key.vary.push(h.clone());
            }
        }
        inner.key.vary.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        inner.keyed_headers = inner.key.keyed_headers();
        CachePolicy { inner: Arc::new(inner) }
    }

    pub(crate) fn inner(&self) -> &PolicyInner {
        &self.inner
    }

    pub(crate) fn shared(&self) -> &Arc<PolicyInner> {
        &self.inner
    }
}

impl PolicyInner {
    /// The freshness lifetime for a response status, with jitter applied.
    pub(crate) fn ttl_for(&self, status: StatusCode) -> Duration {
        let base = self
            .status_ttls
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(self.ttl, |(_, ttl)| *ttl);
        if self.jitter.is_zero() || base.is_zero() {
            return base;
        }
        let jitter_ms = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        base + Duration::from_millis(fastrand::u64(0..=jitter_ms))
    }

    pub(crate) fn is_cacheable_status(&self, status: StatusCode) -> bool {
        self.cacheable.contains(&status.as_u16())
    }
}

/// Accepts a [`Duration`], a [`Ttl`] or a string such as `"10m"`; a string
/// that does not parse is reported by `build()`.
pub trait IntoTtl: sealed::Sealed {
    #[doc(hidden)]
    fn into_ttl(self) -> Result<Ttl, String>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::time::Duration {}
    impl Sealed for crate::Ttl {}
    impl Sealed for &str {}
    impl Sealed for String {}
}

impl IntoTtl for Duration {
    fn into_ttl(self) -> Result<Ttl, String> {
        Ok(Ttl::from(self))
    }
}
impl IntoTtl for Ttl {
    fn into_ttl(self) -> Result<Ttl, String> {
        Ok(self)
    }
}
impl IntoTtl for &str {
    fn into_ttl(self) -> Result<Ttl, String> {
        self.parse().map_err(|e: crate::error::ParseTtlError| e.to_string())
    }
}
impl IntoTtl for String {
    fn into_ttl(self) -> Result<Ttl, String> {
        self.as_str().into_ttl()
    }
}

/// Builds a [`CachePolicy`]; every setting is checked at [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct CachePolicyBuilder {
    inner: PolicyInner,
    errors: Vec<ConfigError>,
}

impl Default for CachePolicyBuilder {
    fn default() -> Self {
        CachePolicyBuilder {
            inner: PolicyInner {
                mode: CacheMode::Policy,
                ttl: Duration::from_secs(60),
                stale_while_revalidate: Duration::ZERO,
                stale_if_error: Duration::ZERO,
                early_refresh_beta: 0.0,
                jitter: Duration::ZERO,
                status_ttls: Vec::new(),
                cacheable: DEFAULT_CACHEABLE_STATUSES.into_iter().collect(),
                max_body_size: DEFAULT_MAX_BODY_SIZE,
                key: KeySpec::default(),
                tags: Vec::new(),
                downstream_cache_control: None,
                downstream_cdn_cache_control: None,
                tag_headers: Vec::new(),
                cdn_cache_control_target: false,
                coalesce: true,
                coalesce_across_instances: false,
                coalesce_timeout: DEFAULT_COALESCE_TIMEOUT,
                hit_for_miss: DEFAULT_HIT_FOR_MISS,
                keyed_headers: Vec::new(),
                strip: Vec::new(),
                metrics: RouteMetrics::new(crate::metrics::DEFAULT_ROUTE_LABEL),
            },
            errors: Vec::new(),
        }
    }
}

impl CachePolicyBuilder {
    fn duration(&mut self, field: &'static str, value: impl IntoTtl) -> Duration {
        match value.into_ttl() {
            Ok(ttl) => ttl.as_duration(),
            Err(reason) => {
                self.errors.push(ConfigError::invalid(field, reason));
                Duration::ZERO
            }
        }
    }

    /// How the policy decides freshness and storage. Default:
    /// [`CacheMode::Policy`].
    pub fn mode(mut self, mode: CacheMode) -> Self {
        self.inner.mode = mode;
        self
    }

    /// How long a response stays fresh. Default: 60 seconds. In
    /// [`CacheMode::Rfc9111`] the response decides instead, and this is how
    /// long a response that cannot be reused without revalidation (no
    /// freshness, or `no-cache`) is kept for revalidation when it carries a
    /// validator.
    pub fn ttl(mut self, ttl: impl IntoTtl) -> Self {
        self.inner.ttl = self.duration("ttl", ttl);
        self
    }

    /// How long after expiry a stale response may be served while it is
    /// refreshed in the background. Default: none. A response's own
    /// `Cache-Control: stale-while-revalidate=N` (RFC 5861) wins.
    ///
    /// Adapters that run background tasks (`cache-tower`, `cache-axum`:
    /// [`Exchange::refresh_in_background`](crate::adapter::Exchange::refresh_in_background))
    /// answer with the stale entry at once and refresh it on a task, one
    /// refresh per key. Without it
    /// (`cache-actix`, whose requests cannot be replayed on another task)
    /// the request that starts the refresh waits for it, and every request
    /// for the key meanwhile answers with the stale entry at once.
    pub fn stale_while_revalidate(mut self, window: impl IntoTtl) -> Self {
        self.inner.stale_while_revalidate = self.duration("stale_while_revalidate", window);
        self
    }

    /// How long after expiry a stale response may be served when the origin
    /// fails (an error, or a 5xx status). Default: none. A response's own
    /// `Cache-Control: stale-if-error=N` (RFC 5861) wins.
    pub fn stale_if_error(mut self, window: impl IntoTtl) -> Self {
        self.inner.stale_if_error = self.duration("stale_if_error", window);
        self
    }

    /// Probabilistic early refresh (XFetch: Vattani, Chierichetti and
    /// Lowenstein, "Optimal Probabilistic Cache Stampede Prevention", VLDB
    /// 2015): a fresh hit starts a background refresh with a probability
    /// that grows as expiry nears, weighted by how long the origin took to
    /// produce the entry and by `beta` (1.0 is the paper's default; larger
    /// refreshes earlier). A refresh is due when
    /// `now − fetch_time · beta · ln(rand) ≥ expiry`. The hit is answered
    /// as usual; the refresh runs like a stale-while-revalidate one, so only
    /// with adapters that run background refreshes. Default: off.
    pub fn early_refresh(mut self, beta: f64) -> Self {
        if beta.is_finite() && beta > 0.0 {
            self.inner.early_refresh_beta = beta;
        } else {
            self.errors
                .push(ConfigError::invalid("early_refresh", "beta must be a positive number"));
        }
        self
    }

    /// A random extra lifetime between zero and `jitter` added to each entry,
    /// so that entries stored together do not expire together. Default: none.
    pub fn jitter(mut self, jitter: impl IntoTtl) -> Self {
        self.inner.jitter = self.duration("jitter", jitter);
        self
    }

    /// A different TTL for one status, such as a short one for `404`. The
    /// status also becomes cacheable.
    pub fn status_ttl(mut self, status: StatusCode, ttl: impl IntoTtl) -> Self {
        let ttl = self.duration("status_ttl", ttl);
        self.inner.status_ttls.retain(|(s, _)| *s != status);
        self.inner.status_ttls.push((status, ttl));
        self.inner.cacheable.insert(status.as_u16());
        self
    }

    /// Replaces the set of cacheable statuses. Default:
    /// [`DEFAULT_CACHEABLE_STATUSES`].
    pub fn cacheable_statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.inner.cacheable = statuses.into_iter().map(|s| s.as_u16()).collect();
        self
    }

    /// The largest body stored, in bytes; larger bodies stream through
    /// uncached and are never buffered past this size. Default: 1 MiB; at
    /// most [`MAX_BODY_SIZE_LIMIT`] (larger is an error at `build()`).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.inner.max_body_size = bytes;
        self
    }

    /// The first key component, separating applications or route groups
    /// that share a store. Default: `http`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        let version = self.inner.key.version;
        self.inner.key.set_namespace(namespace.into(), version);
        self
    }

    /// A version in every key; bump it to orphan every entry of the policy
    /// at once. Default: 1.
    pub fn key_version(mut self, version: u32) -> Self {
        let namespace = std::mem::take(&mut self.inner.key.namespace);
        self.inner.key.set_namespace(namespace, version);
        self
    }

    /// Reads the tenant from a request header; responses are never shared
    /// between tenants.
    pub fn tenant_header(mut self, name: &str) -> Self {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => self.inner.key.tenant = Some(TenantSource::Header(h)),
            Err(e) => self.errors.push(ConfigError::invalid("tenant_header", e)),
        }
        self
    }

    /// Reads the tenant from any [`TenantSource`].
    pub fn tenant(mut self, source: TenantSource) -> Self {
        self.inner.key.tenant = Some(source);
        self
    }

    /// Keys by the request's `Authorization` header (hashed), so that
    /// responses to authenticated requests are stored, each for its own
    /// principal only.
    pub fn key_by_principal(mut self) -> Self {
        self.inner.key.by_principal = true;
        self
    }

    /// Keys only by these query parameters; others are ignored.
    pub fn query_allow<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.key.query = QueryFilter::Allow(names.into_iter().map(Into::into).collect());
        self
    }

    /// Keys by every query parameter except these.
    pub fn query_deny<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.key.query = QueryFilter::Deny(names.into_iter().map(Into::into).collect());
        self
    }

    /// Removes these request headers before the origin sees a request
    /// whose response may be stored (a miss, a revalidation, a background
    /// refresh): for headers the application might read but the key should
    /// not split on, so that no stored response depends on them. Requests
    /// that pass through uncached keep them.
    ///
    /// Every request header reaches the handler unless stripped, but only
    /// the keyed ones ([`vary`](Self::vary), the tenant header,
    /// `Authorization` with [`key_by_principal`](Self::key_by_principal))
    /// and those the response's `Vary` names choose the stored response. A
    /// handler that reads another header (`X-Forwarded-Host`, `Cookie`,
    /// `User-Agent`...) to build a shared response must have the policy key
    /// by it, strip it, or answer `Vary` or `Cache-Control: private`.
    pub fn strip_request_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        add_header_names(&mut self.inner.strip, headers, "strip_request_headers", &mut self.errors);
        self
    }

    /// Ignores the query string entirely.
    pub fn ignore_query(mut self) -> Self {
        self.inner.key.query = QueryFilter::None;
        self
    }

    /// Keys by the values of these request headers (one stored variant per
    /// combination of values). Headers not named here, or in the response's
    /// `Vary`, never change which response is served.
    pub fn vary<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        add_header_names(&mut self.inner.key.vary, headers, "vary", &mut self.errors);
        self.inner.key.vary.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        self
    }

    /// Adds a tag template, such as `product:{tenant}:{id}`; see
    /// [`TagTemplate`].
    pub fn tag(mut self, template: &str) -> Self {
        match template.parse() {
            Ok(t) => self.inner.tags.push(t),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// The `Cache-Control` sent to clients and CDNs with responses the cache
    /// stores or serves, replacing the origin's. Default: the origin's.
    pub fn downstream_cache_control(mut self, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(v) => self.inner.downstream_cache_control = Some(v),
            Err(e) => self.errors.push(ConfigError::invalid("downstream_cache_control", e)),
        }
        self
    }

    /// The `CDN-Cache-Control` (RFC 9213) sent with responses the cache
    /// stores or serves, for a CDN in front: for instance a longer lifetime
    /// at the CDN than in browsers. Default: none added.
    pub fn downstream_cdn_cache_control(mut self, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(v) => self.inner.downstream_cdn_cache_control = Some(v),
            Err(e) => self.errors.push(ConfigError::invalid("downstream_cdn_cache_control", e)),
        }
        self
    }

    /// Sends the entry's tags with responses the cache stores or serves, in
    /// `Surrogate-Key` (space-separated, as Fastly reads it), so that a CDN
    /// in front can purge by the same tags. Tags with whitespace or commas,
    /// and the cache's internal URI tags, are left out. Default: off.
    pub fn surrogate_key_header(mut self) -> Self {
        self.inner.tag_headers.push(HeaderName::from_static("surrogate-key"));
        self
    }

    /// As [`surrogate_key_header`](Self::surrogate_key_header), in
    /// `Cache-Tag` (comma-separated, as Cloudflare reads it).
    pub fn cache_tag_header(mut self) -> Self {
        self.inner.tag_headers.push(HeaderName::from_static("cache-tag"));
        self
    }

    /// In [`CacheMode::Rfc9111`], makes this cache a target of
    /// `CDN-Cache-Control` (RFC 9213): when a response carries it, its
    /// directives decide freshness and storage instead of `Cache-Control`'s
    /// (which still reach the client). Default: off.
    pub fn cdn_cache_control_target(mut self, enabled: bool) -> Self {
        self.inner.cdn_cache_control_target = enabled;
        self
    }

    /// Whether concurrent misses on one key share one origin request.
    /// Default: on.
    pub fn coalesce(mut self, enabled: bool) -> Self {
        self.inner.coalesce = enabled;
        self
    }

    /// Whether concurrent misses on one key share one origin request across
    /// every instance of the application, not only within this process.
    /// Default: off.
    ///
    /// Takes effect with a store that has leases (`RedisStore` and
    /// `TieredStore`, feature `redis`): the first instance to miss takes a short lease on
    /// the key in the store (as long as
    /// [`coalesce_timeout`](CachePolicyBuilder::coalesce_timeout)) and
    /// fetches; the others poll the store for its response for up to the
    /// coalescing timeout, then go to the origin. A holder that dies
    /// releases by expiry. Costs the first miss per key a store round trip.
    /// Implies [`coalesce`](CachePolicyBuilder::coalesce).
    pub fn coalesce_across_instances(mut self, enabled: bool) -> Self {
        self.inner.coalesce_across_instances = enabled;
        if enabled {
            self.inner.coalesce = true;
        }
        self
    }

    /// The longest a request waits for another request's origin fetch before
    /// going to the origin itself. Default: 10 seconds.
    pub fn coalesce_timeout(mut self, timeout: impl IntoTtl) -> Self {
        self.inner.coalesce_timeout = self.duration("coalesce_timeout", timeout);
        self
    }

    /// How long a key whose response could not be stored skips coalescing,
    /// so that requests for it do not queue behind each other. Default: 10
    /// seconds.
    pub fn hit_for_miss(mut self, duration: impl IntoTtl) -> Self {
        self.inner.hit_for_miss = self.duration("hit_for_miss", duration);
        self
    }

    /// The route label of the policy's request metrics
    /// (`http_cache_requests_total{route="..."}`) and traces: the route
    /// pattern, such as `/api/v1/products/{id}`, or any name for a group of
    /// routes. Default: `default`.
    ///
    /// Give a bounded set of labels: never a raw path, a query or a tenant,
    /// or every distinct value becomes a time series of its own.
    pub fn label(mut self, label: &str) -> Self {
        self.inner.metrics = RouteMetrics::new(label);
        self
    }

    /// Checks the settings and builds the policy.
    ///
    /// # Errors
    ///
    /// The first invalid setting: an unparsable duration, header name, header
    /// value or tag template, or an empty namespace.
    pub fn build(mut self) -> Result<CachePolicy, ConfigError> {
        if let Some(e) = self.errors.drain(..).next() {
            return Err(e);
        }
        if self.inner.key.namespace.is_empty() {
            return Err(ConfigError::invalid("namespace", "must not be empty"));
        }
        if self.inner.max_body_size > MAX_BODY_SIZE_LIMIT {
            return Err(ConfigError::invalid(
                "max_body_size",
                format!("must be at most {MAX_BODY_SIZE_LIMIT} bytes (1 GiB)"),
            ));
        }
        if self.inner.coalesce_timeout.is_zero() && self.inner.coalesce {
            return Err(ConfigError::invalid("coalesce_timeout", "must be positive while coalescing is on"));
        }
        self.inner.keyed_headers = self.inner.key.keyed_headers();
        Ok(CachePolicy {
            inner: Arc::new(self.inner),
        })
    }
}

/// Adds the header names `names` to `list` once each; an invalid name is an
/// error of `field`, reported at `build()`.
fn add_header_names<I, S>(list: &mut Vec<HeaderName>, names: I, field: &'static str, errors: &mut Vec<ConfigError>)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    for name in names {
        match HeaderName::from_bytes(name.as_ref().as_bytes()) {
            Ok(h) if !list.contains(&h) => list.push(h),
            Ok(_) => {}
            Err(e) => errors.push(ConfigError::invalid(field, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let p = CachePolicy::builder()
            .ttl("5m")
            .status_ttl(StatusCode::NOT_FOUND, "30s")
            .status_ttl(StatusCode::IM_A_TEAPOT, Duration::from_secs(1))
            .build()
            .unwrap();
        let inner = p.inner();
        assert_eq!(inner.ttl_for(StatusCode::OK), Duration::from_secs(300));
        assert_eq!(inner.ttl_for(StatusCode::NOT_FOUND), Duration::from_secs(30));
        assert!(inner.is_cacheable_status(StatusCode::IM_A_TEAPOT));
        assert!(!inner.is_cacheable_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!inner.is_cacheable_status(StatusCode::PARTIAL_CONTENT));
    }

    #[test]
    fn jitter_stays_in_range() {
        let p = CachePolicy::builder().ttl("60s").jitter("10s").build().unwrap();
        for _ in 0..200 {
            let ttl = p.inner().ttl_for(StatusCode::OK);
            assert!((Duration::from_secs(60)..=Duration::from_secs(70)).contains(&ttl));
        }
    }

    #[test]
    fn labels_default_and_relabel() {
        let p = CachePolicy::builder().ttl("5m").build().unwrap();
        assert_eq!(p.label(), "default");
        let labelled = CachePolicy::builder().label("/p/{id}").build().unwrap();
        assert_eq!(labelled.label(), "/p/{id}");
        let relabelled = p.with_label("/q");
        assert_eq!((relabelled.label(), relabelled.ttl()), ("/q", Duration::from_secs(300)));
        assert_eq!(p.label(), "default", "the original keeps its label");
        assert!(
            Arc::ptr_eq(&p.with_label("default").inner, &p.inner),
            "the same label shares the policy"
        );
    }

    #[test]
    fn build_reports_the_bad_field() {
        let err = CachePolicy::builder().ttl("forever").build().unwrap_err();
        assert!(err.to_string().contains("`ttl`"), "{err}");
        let err = CachePolicy::builder().tag("p:{").build().unwrap_err();
        assert!(err.to_string().contains("p:{"), "{err}");
        assert!(CachePolicy::builder().vary(["bad header"]).build().is_err());
        assert!(CachePolicy::builder().namespace("").build().is_err());
        let err = CachePolicy::builder().max_body_size(MAX_BODY_SIZE_LIMIT + 1).build().unwrap_err();
        assert!(err.to_string().contains("`max_body_size`"), "{err}");
        assert!(CachePolicy::builder().max_body_size(MAX_BODY_SIZE_LIMIT).build().is_ok());
    }
}
