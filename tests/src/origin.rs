//! A scripted origin, independent of any web framework, that counts what
//! reaches it. Adapters translate their requests into [`OriginRequest`] and
//! [`OriginResponse`] back.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use cache_core::{CacheHints, CachePolicy, Invalidator};
use futures_util::Stream;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use tokio::sync::{Notify, watch};

use crate::handlers;

/// A body from the origin.
pub enum OriginBody {
    /// Bytes in memory.
    Full(Bytes),
    /// Chunks produced over time.
    Stream(Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>),
}

/// What the origin answers.
pub struct OriginResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: OriginBody,
    /// Refinements for the cache.
    pub hints: Option<CacheHints>,
}

/// A request as the origin sees it.
pub struct OriginRequest {
    /// The method.
    pub method: Method,
    /// The path.
    pub path: String,
    /// The raw query string.
    pub query: Option<String>,
    /// The headers.
    pub headers: HeaderMap,
    /// The invalidation handle the adapter gives handlers.
    pub invalidator: Option<Invalidator>,
}

/// The shared table: routes and policies of the app that the purge,
/// adapter-specific and Redis tests start with [`Origin::default`]. Every
/// adapter mounts each pattern behind a cache layer with its policy (`None`:
/// no layer policy), answered by the path (see [`Origin::respond`]). The
/// behaviour tests declare their own routes instead (see
/// [`App`](crate::App)).
pub fn routes() -> Vec<(&'static str, Option<CachePolicy>)> {
    let p = CachePolicy::builder;
    let ok = |b: cache_core::CachePolicyBuilder| Some(b.build().expect("test policies are valid"));
    vec![
        ("/plain/{id}", ok(p().ttl("60s").tag("plain:{id}"))),
        (
            "/tenant/{id}",
            ok(p().ttl("60s").tenant_header("x-tenant-id").tag("t:{tenant}:{id}")),
        ),
        ("/etag", ok(p().ttl("60s"))),
        ("/principal", ok(p().ttl("60s").key_by_principal())),
        ("/vary-policy", ok(p().ttl("60s").vary(["accept-language"]))),
        ("/shared-slow", ok(p().ttl("60s").coalesce_across_instances(true))),
        ("/uncached", None),
    ]
}

/// A handler a test declares with its route (see [`App`](crate::App)).
pub type Handler = Arc<dyn Fn(OriginRequest, Origin) -> Pin<Box<dyn Future<Output = OriginResponse> + Send>> + Send + Sync>;

/// A route of the test app: its pattern, the policy of the cache layer in
/// front of it (`None`: no layer), and its handler (`None`: the shared
/// table's behaviour for the path).
#[derive(Clone)]
pub struct Route {
    /// The framework route pattern, such as `/items/{id}`.
    pub pattern: &'static str,
    /// The policy of its cache layer.
    pub policy: Option<CachePolicy>,
    pub(crate) handler: Option<Handler>,
}

/// The scripted origin. Cheap to clone.
#[derive(Clone)]
pub struct Origin {
    state: Arc<State>,
    routes: Arc<Vec<Route>>,
    fallback: Option<Handler>,
}

impl Default for Origin {
    /// The shared table of [`routes`], answered by the path.
    fn default() -> Self {
        let routes = routes()
            .into_iter()
            .map(|(pattern, policy)| Route {
                pattern,
                policy,
                handler: None,
            })
            .collect();
        Origin::with_routes(routes)
    }
}

#[derive(Default)]
struct State {
    calls: Mutex<HashMap<String, usize>>,
    version: AtomicU64,
    /// Open when true: handlers that wait for the gate answer.
    gate: GateState,
    /// Wakes a handler waiting in [`Origin::stream_released`].
    stream_release: Notify,
    /// When true, handlers that ask [`Origin::failing`] fail.
    failing: AtomicBool,
    /// Calls currently inside [`Origin::join_crowd`] (or past it).
    inside: AtomicUsize,
    inside_changed: Notify,
    /// [`Origin::join_crowd`] holds calls until this many are inside at once.
    crowd: AtomicUsize,
}

struct GateState(watch::Sender<bool>);

impl Default for GateState {
    fn default() -> Self {
        GateState(watch::Sender::new(true))
    }
}

/// A request header that makes the adapter's outermost middleware drop the
/// request's future after that many milliseconds (answering `504`), as a
/// request timeout does: the way a test cancels a request in flight.
pub const DEADLINE_HEADER: &str = "x-test-deadline-ms";

impl Origin {
    /// An origin serving `routes`.
    pub fn with_routes(routes: Vec<Route>) -> Self {
        Origin::serving(routes, None)
    }

    /// An origin serving `routes`, and answering requests that no route's
    /// handler answers (as behind a policy table, where a request carries
    /// no route pattern) with `fallback`.
    pub(crate) fn serving(routes: Vec<Route>, fallback: Option<Handler>) -> Self {
        Origin {
            state: Arc::default(),
            routes: Arc::new(routes),
            fallback,
        }
    }

    /// The routes the adapters mount: pattern and policy.
    pub fn routes(&self) -> impl Iterator<Item = (&'static str, Option<CachePolicy>)> + '_ {
        self.routes.iter().map(|r| (r.pattern, r.policy.clone()))
    }

    /// Number of requests that reached the origin for paths starting with
    /// `prefix`.
    pub fn calls(&self, prefix: &str) -> usize {
        let calls = self.state.calls.lock().expect("origin call counts");
        calls.iter().filter(|(p, _)| p.starts_with(prefix)).map(|(_, n)| n).sum()
    }

    /// Closes the gate: handlers that wait for it (see
    /// [`Origin::wait_for_gate`]) wait until [`Origin::open`].
    pub fn close(&self) {
        self.state.gate.0.send_replace(false);
    }

    /// Changes the data: [`Origin::version`] goes up by one.
    pub fn bump(&self) -> u64 {
        self.state.version.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Opens the gate: handlers waiting for it answer.
    pub fn open(&self) {
        self.state.gate.0.send_replace(true);
    }

    /// Makes handlers that ask [`Origin::failing`] fail (`true`) or answer.
    pub fn fail(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Whether handlers should fail, as [`Origin::fail`] last said.
    pub fn failing(&self) -> bool {
        self.state.failing.load(Ordering::SeqCst)
    }

    /// Lets a handler waiting in [`Origin::stream_released`] go on (one
    /// waiter; a release with no waiter is kept for the next).
    pub fn release_stream(&self) {
        self.state.stream_release.notify_one();
    }

    /// Waits for [`Origin::release_stream`].
    pub async fn stream_released(&self) {
        self.state.stream_release.notified().await;
    }

    /// Makes [`Origin::join_crowd`] hold calls until `n` are inside at once.
    pub fn require_crowd(&self, n: usize) {
        self.state.crowd.store(n, Ordering::SeqCst);
    }

    /// Counts the caller as inside the origin (for good), then waits until
    /// as many callers are inside as [`Origin::require_crowd`] asks for (at
    /// once when it asked for none).
    pub async fn join_crowd(&self) {
        let crowd = self.state.crowd.load(Ordering::SeqCst);
        self.state.inside.fetch_add(1, Ordering::SeqCst);
        self.state.inside_changed.notify_waiters();
        loop {
            let notified = self.state.inside_changed.notified();
            if self.state.inside.load(Ordering::SeqCst) >= crowd {
                break;
            }
            notified.await;
        }
    }

    /// Answers a request that the framework routed to `pattern` (`None`:
    /// no route pattern, as behind a policy table).
    pub async fn respond(&self, pattern: Option<&str>, req: OriginRequest) -> OriginResponse {
        *self
            .state
            .calls
            .lock()
            .expect("origin call counts")
            .entry(req.path.clone())
            .or_default() += 1;
        let declared = pattern
            .and_then(|p| self.routes.iter().find(|r| r.pattern == p)?.handler.clone())
            .or_else(|| self.fallback.clone());
        if let Some(handler) = declared {
            return handler(req, self.clone()).await;
        }
        // The shared table's behaviour, by the path's first segment.
        let first = req.path.split('/').nth(1).unwrap_or("");
        match first {
            "plain" => handlers::plain(req, self.clone()).await,
            "tenant" => handlers::tenant(req, self.clone()).await,
            "etag" => handlers::etag(req, self.clone()).await,
            "principal" => handlers::for_authorization(req, self.clone()).await,
            "vary-policy" => handlers::language(req, self.clone()).await,
            "shared-slow" => handlers::slow(req, self.clone()).await,
            _ => handlers::echo(req, self.clone()).await,
        }
    }

    /// The data's version: what handlers that read "the database" show.
    pub fn version(&self) -> u64 {
        self.state.version.load(Ordering::SeqCst)
    }

    /// Waits until the gate is open (see [`Origin::close`]).
    pub async fn wait_for_gate(&self) {
        let mut gate = self.state.gate.0.subscribe();
        let _ = gate.wait_for(|open| *open).await;
    }
}

/// A `200` with a `text/plain` body.
pub fn text(body: impl Into<String>) -> OriginResponse {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    OriginResponse {
        status: StatusCode::OK,
        headers,
        body: OriginBody::Full(Bytes::from(body.into())),
        hints: None,
    }
}

impl OriginResponse {
    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.headers.append(name, HeaderValue::from_static(value));
        self
    }
}
