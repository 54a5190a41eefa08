//! Metrics and traces: what the cache reports, and under which names.
//!
//! The engine and the stores record through the [`metrics`] facade: nothing
//! is exported until the application installs a recorder (such as
//! `metrics-exporter-prometheus`), and recording costs next to nothing
//! until then. Call [`describe`] once after installing it, for the help
//! text and units; with the feature `prometheus`, [`prometheus::recorder`]
//! does both.
//!
//! | metric | type | labels | what |
//! |--------|------|--------|------|
//! | [`http_cache_requests_total`](REQUESTS_TOTAL) | counter | `route`, `outcome` | requests served through a policy, by [`Outcome`] |
//! | [`http_cache_not_stored_total`](NOT_STORED_TOTAL) | counter | `route`, `reason` | responses fetched for a cacheable request and not stored, by [`NotStored`] reason |
//! | [`http_cache_store_operation_seconds`](STORE_OPERATION_SECONDS) | histogram | `store`, `operation` | time of each store operation |
//! | [`http_cache_store_errors_total`](STORE_ERRORS_TOTAL) | counter | `store`, `operation`, `error` | failed store operations |
//! | [`http_cache_store_bytes`](STORE_BYTES) | gauge | `store` | bytes held by an in-process store |
//! | [`http_cache_store_entries`](STORE_ENTRIES) | gauge | `store` | entries held by an in-process store |
//! | [`http_cache_breaker_state`](BREAKER_STATE) | gauge | `store` | the Redis circuit breaker: 0 closed, 1 half-open, 2 open |
//! | [`http_cache_breaker_transitions_total`](BREAKER_TRANSITIONS_TOTAL) | counter | `store`, `state` | times the breaker moved to `state` |
//! | [`http_cache_invalidations_total`](INVALIDATIONS_TOTAL) | counter | `kind` | tags, keys and prefixes invalidated |
//! | [`http_cache_invalidated_entries_total`](INVALIDATED_ENTRIES_TOTAL) | counter | `kind` | entries those invalidations dropped |
//!
//! Every label has a bounded set of values, so that the number of time
//! series stays small whatever the traffic:
//!
//! - `route`: the policy's label ([`CachePolicyBuilder::label`]), such as
//!   the route pattern `/api/v1/products/{id}`; `default` unless set. Never
//!   a path, a query or a tenant.
//! - `outcome`: `hit`, `miss`, `stale`, `bypass`, `coalesced`, `error`
//!   ([`Outcome`]).
//! - `reason`: the [`NotStored`] labels (`status`, `set_cookie`,
//!   `cache_control`, `too_large`, `invalidated`, ...).
//! - `store`: `moka`, `redis`, `tiered`. A [`TieredStore`](crate::TieredStore)
//!   reports its own operations as `tiered` and those of its levels as
//!   `moka` and `redis`.
//! - `operation`: `get`, `put`, `delete`, `invalidate_tags`,
//!   `invalidate_prefix`, `lease`, `release_lease`, `publish`.
//! - `error`: `timeout`, `circuit_open`, `unavailable`, `backend`.
//! - `state`: `closed`, `half_open`, `open`.
//! - `kind`: `tag`, `key`, `prefix`.
//!
//! The gauges of a [`MokaStore`](crate::MokaStore) are sampled when it
//! writes or drops entries, and by [`Cache::record_metrics`](crate::Cache::record_metrics),
//! which an exporter calls before each scrape for exact values.
//!
//! # Traces
//!
//! Each request served through a policy runs in a `DEBUG` span
//! `http_cache` with the fields `route` (the policy's label), `key` (a
//! 16-hex-digit hash of the cache key, to tell requests for one entry from
//! others without showing the key, which can name the tenant) and
//! `outcome`, recorded when known. A background refresh runs in a span
//! `http_cache_refresh` with `route` and `key`. The engine's events (why a
//! response was not stored, a store that failed) are emitted inside them.
//!
//! # Example
//!
//! Any recorder will do; here the one of `metrics-util` that tests use. An
//! application exporting to Prometheus uses [`prometheus::recorder`]
//! (feature `prometheus`: the recorder with [`STORE_SECONDS_BUCKETS`] for
//! [`STORE_OPERATION_SECONDS`], and [`describe`]) and answers
//! `GET /metrics` with [`prometheus::render`], outside the cache: see the
//! storefront example.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use cache_core::{Cache, CachePolicy, MokaStore, RouteMatch};
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//!
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! let cache = Cache::new(MokaStore::new());
//! let policy = CachePolicy::builder().ttl("5m").label("/greeting").build().unwrap();
//! let origin = |_req: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! };
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! metrics::with_local_recorder(&recorder, || {
//!     runtime.block_on(async {
//!         for _ in 0..3 {
//!             let get = Request::get("/greeting").body(()).unwrap();
//!             cache.serve(&policy, &RouteMatch::default(), get, origin).await.unwrap();
//!         }
//!     })
//! });
//!
//! let snapshot = snapshotter.snapshot().into_vec();
//! let mut counts: Vec<(String, u64)> = snapshot
//!     .into_iter()
//!     .filter(|(key, ..)| key.key().name() == "http_cache_requests_total")
//!     .map(|(key, _, _, value)| {
//!         let outcome = key.key().labels().find(|l| l.key() == "outcome").unwrap().value().to_owned();
//!         let DebugValue::Counter(n) = value else { unreachable!("a counter") };
//!         (outcome, n)
//!     })
//!     .collect();
//! counts.sort();
//! assert_eq!(counts, [("hit".to_owned(), 2), ("miss".to_owned(), 1)]);
//! ```
//!
//! [`CachePolicyBuilder::label`]: crate::CachePolicyBuilder::label

use std::{
    fmt,
    future::Future,
    sync::{Arc, LazyLock},
    time::Instant,
};

use metrics::{Key, Label, Level, Metadata, SharedString, Unit, describe_counter, describe_gauge, describe_histogram};

use crate::{CacheKey, error::StoreError};

#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub mod prometheus;

/// Requests served through a policy: counter, labels `route` and `outcome`.
pub const REQUESTS_TOTAL: &str = "http_cache_requests_total";

/// Responses fetched for a cacheable request and not stored: counter,
/// labels `route` and `reason` ([`NotStored`]).
pub const NOT_STORED_TOTAL: &str = "http_cache_not_stored_total";
/// Time of each store operation, in seconds: histogram, labels `store` and
/// `operation`.
pub const STORE_OPERATION_SECONDS: &str = "http_cache_store_operation_seconds";
/// Failed store operations: counter, labels `store`, `operation` and `error`.
pub const STORE_ERRORS_TOTAL: &str = "http_cache_store_errors_total";
/// Bytes held by an in-process store: gauge, label `store`.
pub const STORE_BYTES: &str = "http_cache_store_bytes";
/// Entries held by an in-process store: gauge, label `store`.
pub const STORE_ENTRIES: &str = "http_cache_store_entries";
/// Where the Redis circuit breaker stands (0 closed, 1 half-open, 2 open):
/// gauge, label `store`.
pub const BREAKER_STATE: &str = "http_cache_breaker_state";
/// Moves of the Redis circuit breaker: counter, labels `store` and `state`
/// (the state moved to).
pub const BREAKER_TRANSITIONS_TOTAL: &str = "http_cache_breaker_transitions_total";
/// Tags, keys and prefixes invalidated: counter, label `kind`.
pub const INVALIDATIONS_TOTAL: &str = "http_cache_invalidations_total";
/// Entries dropped by invalidations, where the store can tell: counter,
/// label `kind`.
pub const INVALIDATED_ENTRIES_TOTAL: &str = "http_cache_invalidated_entries_total";

/// The route label of a policy that was given none.
pub const DEFAULT_ROUTE_LABEL: &str = "default";

/// Histogram buckets (seconds) suited to
/// [`STORE_OPERATION_SECONDS`]: from 10 µs (an in-process read) to 2.5 s
/// (past a Redis timeout).
pub const STORE_SECONDS_BUCKETS: [f64; 16] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

/// Registers the unit and help text of every metric with the installed
/// recorder. Call it once, after installing the recorder.
pub fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Requests served through a cache policy, by route label and outcome (hit, miss, stale, bypass, coalesced, error)."
    );
    describe_counter!(
        NOT_STORED_TOTAL,
        Unit::Count,
        "Responses fetched for a cacheable request and not stored, by route label and reason."
    );
    describe_histogram!(
        STORE_OPERATION_SECONDS,
        Unit::Seconds,
        "Time of cache store operations, by store and operation."
    );
    describe_counter!(
        STORE_ERRORS_TOTAL,
        Unit::Count,
        "Failed cache store operations, by store, operation and error."
    );
    describe_gauge!(STORE_BYTES, Unit::Bytes, "Bytes held by an in-process cache store.");
    describe_gauge!(STORE_ENTRIES, Unit::Count, "Entries held by an in-process cache store.");
    describe_gauge!(BREAKER_STATE, "State of the Redis circuit breaker: 0 closed, 1 half-open, 2 open.");
    describe_counter!(
        BREAKER_TRANSITIONS_TOTAL,
        Unit::Count,
        "Moves of the Redis circuit breaker, by the state moved to."
    );
    describe_counter!(INVALIDATIONS_TOTAL, Unit::Count, "Tags, keys and prefixes invalidated, by kind.");
    describe_counter!(
        INVALIDATED_ENTRIES_TOTAL,
        Unit::Count,
        "Entries dropped by invalidations, by kind, where the store can tell."
    );
}

/// What the cache did for a request: the `outcome` label of
/// [`REQUESTS_TOTAL`].
///
/// The outcome is what the response's `X-Cache` says (`HIT`, `MISS`,
/// `STALE`, `BYPASS`), except that a response shared from another
/// request's fetch (`collapsed` in `Cache-Status`) is [`Coalesced`](Outcome::Coalesced),
/// and a request whose origin failed, with nothing stored to answer
/// instead, is an [`Error`](Outcome::Error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Answered from a fresh stored entry (a `304` included).
    Hit,
    /// Fetched from the origin (and stored, when allowed).
    Miss,
    /// Answered from a stale entry: stale-while-revalidate, stale-if-error.
    Stale,
    /// Passed to the origin without a lookup: an unsafe method, a range or
    /// precondition, credentials the key does not include.
    Bypass,
    /// Answered with the response another request fetched for the same key.
    Coalesced,
    /// The origin failed and nothing stored could answer instead.
    Error,
}

impl Outcome {
    /// Every outcome, in the order of their label values.
    pub const ALL: [Outcome; 6] = [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Stale,
        Outcome::Bypass,
        Outcome::Coalesced,
        Outcome::Error,
    ];

    /// The label value: `hit`, `miss`, `stale`, `bypass`, `coalesced` or
    /// `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Stale => "stale",
            Outcome::Bypass => "bypass",
            Outcome::Coalesced => "coalesced",
            Outcome::Error => "error",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Why a response fetched for a cacheable request was not stored: the
/// `reason` label of [`NOT_STORED_TOTAL`] and the `reason` field of the
/// engine's `DEBUG` event "response not stored".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotStored {
    /// The status is not among the policy's cacheable statuses.
    Status,
    /// The handler asked not to store it ([`CacheHints::no_store`](crate::CacheHints::no_store)).
    Handler,
    /// The response sets a cookie.
    SetCookie,
    /// The response's `Cache-Control` forbids storing (`no-store`,
    /// `private`; `no-cache` outside RFC 9111 mode).
    CacheControl,
    /// The response's `Cache-Control` or `CDN-Cache-Control` cannot be
    /// parsed: what could not be read might forbid storing.
    UnreadableCacheControl,
    /// The response's `Vary` is not a list of header names.
    UnreadableVary,
    /// `Vary: *`.
    VaryStar,
    /// No freshness and no validator (RFC 9111 mode): it could never be
    /// reused.
    NeverReusable,
    /// A zero TTL.
    ZeroTtl,
    /// The body is larger than the policy's `max_body_size` (streamed
    /// through).
    TooLarge,
    /// The body has trailers (streamed through).
    Trailers,
    /// The body failed while it was read.
    BodyError,
    /// The request said `Cache-Control: no-store`.
    RequestNoStore,
    /// The request carries credentials the key does not include, and the
    /// response is not marked shareable.
    Authorization,
    /// An invalidation that concerns it overlapped its fetch.
    Invalidated,
    /// The store failed, or was skipped while it is failing (the waiting
    /// requests still got the response).
    StoreFailed,
}

impl NotStored {
    /// The label value: `status`, `handler`, `set_cookie`, `cache_control`,
    /// `unreadable_cache_control`, `unreadable_vary`, `vary_star`,
    /// `never_reusable`, `zero_ttl`, `too_large`, `trailers`, `body_error`,
    /// `request_no_store`, `authorization`, `invalidated` or `store_failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotStored::Status => "status",
            NotStored::Handler => "handler",
            NotStored::SetCookie => "set_cookie",
            NotStored::CacheControl => "cache_control",
            NotStored::UnreadableCacheControl => "unreadable_cache_control",
            NotStored::UnreadableVary => "unreadable_vary",
            NotStored::VaryStar => "vary_star",
            NotStored::NeverReusable => "never_reusable",
            NotStored::ZeroTtl => "zero_ttl",
            NotStored::TooLarge => "too_large",
            NotStored::Trailers => "trailers",
            NotStored::BodyError => "body_error",
            NotStored::RequestNoStore => "request_no_store",
            NotStored::Authorization => "authorization",
            NotStored::Invalidated => "invalidated",
            NotStored::StoreFailed => "store_failed",
        }
    }

    /// Whether the request, not the response, forbids storing: other
    /// requests for the key may still get a storable response.
    pub const fn by_request(self) -> bool {
        matches!(self, NotStored::RequestNoStore | NotStored::Authorization)
    }
}

impl fmt::Display for NotStored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every registration says of where it comes from.
static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// A policy's route label and the keys of its request counters, made once
/// per policy so that counting a request neither allocates nor hashes.
#[derive(Clone)]
pub(crate) struct RouteMetrics {
    label: Arc<str>,
    requests: Arc<[Key; Outcome::ALL.len()]>,
}

impl RouteMetrics {
    pub(crate) fn new(label: &str) -> Self {
        let label: Arc<str> = Arc::from(label);
        let requests = Outcome::ALL.map(|outcome| {
            let labels = vec![
                Label::new("route", SharedString::from(Arc::clone(&label))),
                Label::from_static_parts("outcome", outcome.as_str()),
            ];
            Key::from_parts(REQUESTS_TOTAL, labels)
        });
        RouteMetrics {
            label,
            requests: Arc::new(requests),
        }
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Counts one request with `outcome`.
    pub(crate) fn request(&self, outcome: Outcome) {
        let key = &self.requests[outcome.index()];
        metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA).increment(1));
    }

    /// Counts a response not stored, and says why in a `DEBUG` event.
    pub(crate) fn not_stored(&self, reason: NotStored) {
        tracing::debug!(reason = reason.as_str(), "response not stored");
        let labels = vec![
            Label::new("route", SharedString::from(Arc::clone(&self.label))),
            Label::from_static_parts("reason", reason.as_str()),
        ];
        let key = Key::from_parts(NOT_STORED_TOTAL, labels);
        metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA).increment(1));
    }
}

impl fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RouteMetrics").field(&self.label).finish()
    }
}

/// The `store` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(all(feature = "moka", feature = "redis")), allow(dead_code))]
pub(crate) enum StoreLabel {
    Moka,
    Redis,
    Tiered,
}

impl StoreLabel {
    const ALL: [StoreLabel; 3] = [StoreLabel::Moka, StoreLabel::Redis, StoreLabel::Tiered];

    const fn as_str(self) -> &'static str {
        match self {
            StoreLabel::Moka => "moka",
            StoreLabel::Redis => "redis",
            StoreLabel::Tiered => "tiered",
        }
    }
}

/// The `operation` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Op {
    Get,
    Put,
    Delete,
    InvalidateTags,
    InvalidatePrefix,
    Lease,
    ReleaseLease,
    Publish,
}

impl Op {
    const ALL: [Op; 8] = [
        Op::Get,
        Op::Put,
        Op::Delete,
        Op::InvalidateTags,
        Op::InvalidatePrefix,
        Op::Lease,
        Op::ReleaseLease,
        Op::Publish,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Delete => "delete",
            Op::InvalidateTags => "invalidate_tags",
            Op::InvalidatePrefix => "invalidate_prefix",
            Op::Lease => "lease",
            Op::ReleaseLease => "release_lease",
            Op::Publish => "publish",
        }
    }
}

/// The histogram key of every (store, operation), made once.
static OPERATION_KEYS: LazyLock<Vec<Key>> = LazyLock::new(|| {
    StoreLabel::ALL
        .iter()
        .flat_map(|store| {
            Op::ALL.iter().map(move |op| {
                let labels = vec![
                    Label::from_static_parts("store", store.as_str()),
                    Label::from_static_parts("operation", op.as_str()),
                ];
                Key::from_parts(STORE_OPERATION_SECONDS, labels)
            })
        })
        .collect()
});

/// Records the time of a store operation that started at `started`.
#[cfg_attr(not(feature = "moka"), allow(dead_code))]
pub(crate) fn operation(store: StoreLabel, op: Op, started: Instant) {
    let key = &OPERATION_KEYS[store as usize * Op::ALL.len() + op as usize];
    let elapsed = started.elapsed();
    metrics::with_recorder(|recorder| recorder.register_histogram(key, &METADATA).record(elapsed));
}

/// Runs a store operation and records its time.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) async fn timed<T>(store: StoreLabel, op: Op, future: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let output = future.await;
    operation(store, op, started);
    output
}

/// Counts a failed store operation.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn store_error(store: StoreLabel, op: Op, error: &StoreError) {
    let kind = match error {
        StoreError::Timeout { .. } => "timeout",
        StoreError::CircuitOpen => "circuit_open",
        StoreError::Unavailable => "unavailable",
        _ => "backend",
    };
    metrics::counter!(STORE_ERRORS_TOTAL, "store" => store.as_str(), "operation" => op.as_str(), "error" => kind).increment(1);
}

/// Sets the size gauges of the moka store.
#[cfg_attr(not(feature = "moka"), allow(dead_code))]
pub(crate) fn moka_size(bytes: u64, entries: u64) {
    metrics::gauge!(STORE_BYTES, "store" => "moka").set(bytes as f64);
    metrics::gauge!(STORE_ENTRIES, "store" => "moka").set(entries as f64);
}

/// Sets the circuit breaker gauge: 0 closed, 1 half-open, 2 open.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn breaker_state(value: u8) {
    metrics::gauge!(BREAKER_STATE, "store" => "redis").set(f64::from(value));
}

/// Counts a move of the circuit breaker to `state` and sets its gauge.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn breaker_transition(state: &'static str, value: u8) {
    metrics::counter!(BREAKER_TRANSITIONS_TOTAL, "store" => "redis", "state" => state).increment(1);
    breaker_state(value);
}

/// The `kind` label of invalidations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidationKind {
    Tag,
    Key,
    Prefix,
}

/// Counts `count` invalidations of `kind` that dropped `dropped` entries
/// (`None` when the store failed).
pub(crate) fn invalidation(kind: InvalidationKind, count: u64, dropped: Option<u64>) {
    let (invalidations, entries) = match kind {
        InvalidationKind::Tag => (
            metrics::counter!(INVALIDATIONS_TOTAL, "kind" => "tag"),
            metrics::counter!(INVALIDATED_ENTRIES_TOTAL, "kind" => "tag"),
        ),
        InvalidationKind::Key => (
            metrics::counter!(INVALIDATIONS_TOTAL, "kind" => "key"),
            metrics::counter!(INVALIDATED_ENTRIES_TOTAL, "kind" => "key"),
        ),
        InvalidationKind::Prefix => (
            metrics::counter!(INVALIDATIONS_TOTAL, "kind" => "prefix"),
            metrics::counter!(INVALIDATED_ENTRIES_TOTAL, "kind" => "prefix"),
        ),
    };
    invalidations.increment(count);
    if let Some(dropped) = dropped {
        entries.increment(dropped);
    }
}

/// A short hash of a cache key for traces: the first 8 bytes of its BLAKE3
/// hash, in hex. Computed only when a subscriber formats it.
pub(crate) struct KeyHash<'a>(pub(crate) &'a CacheKey);

impl KeyHash<'_> {
    fn of(key: &str) -> impl fmt::Display + '_ {
        struct Hex<'a>(&'a str);
        impl fmt::Display for Hex<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let hash = blake3::hash(self.0.as_bytes());
                hash.as_bytes()[..8].iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
        }
        Hex(key)
    }
}

impl fmt::Display for KeyHash<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        KeyHash::of(self.0.as_str()).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    #[test]
    fn outcomes_are_listed_in_label_order() {
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome.index(), i);
        }
    }

    #[test]
    fn request_counters_carry_the_route_label() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let route = RouteMetrics::new("/p/{id}");
        metrics::with_local_recorder(&recorder, || {
            route.request(Outcome::Hit);
            route.request(Outcome::Hit);
            route.request(Outcome::Coalesced);
        });
        let mut counts: Vec<(String, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let labels: Vec<String> = key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
                let DebugValue::Counter(n) = value else { panic!("a counter") };
                (labels.join(","), n)
            })
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            [
                ("route=/p/{id},outcome=coalesced".to_owned(), 1),
                ("route=/p/{id},outcome=hit".to_owned(), 2)
            ]
        );
    }

    #[test]
    fn key_hashes_are_short_and_stable() {
        let hash = KeyHash::of("http:1:acme:/p/1").to_string();
        assert_eq!(hash.len(), 16);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hash, KeyHash::of("http:1:acme:/p/1").to_string());
        assert_ne!(hash, KeyHash::of("http:1:globex:/p/1").to_string());
    }
}
