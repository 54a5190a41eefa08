//! A test's own app: the routes it needs, each with the policy of its cache
//! layer and its handler, declared where the test asserts on them.
//!
//! ```ignore
//! let s = App::new()
//!     .route("/items/{id}", p().ttl("60s").tag("item:{id}"), |req, origin| async move {
//!         text(format!("{} v{}", req.path, origin.version()))
//!     })
//!     .start::<A>()
//!     .await;
//! ```

use std::{future::Future, sync::Arc};

use cache_core::{Cache, CachePolicyBuilder, Clock, MokaStore, Policies, Store};

use crate::{
    Adapter, Server,
    origin::{Handler, Origin, OriginRequest, OriginResponse, Route},
};

/// The routes of one test's app.
#[derive(Default)]
pub struct App {
    routes: Vec<Route>,
    fallback: Option<Handler>,
}

impl App {
    /// An app with no routes.
    pub fn new() -> Self {
        App::default()
    }

    /// Mounts `handler` at `pattern` behind a cache layer with `policy`.
    pub fn route<F, Fut>(self, pattern: &'static str, policy: CachePolicyBuilder, handler: F) -> Self
    where
        F: Fn(OriginRequest, Origin) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = OriginResponse> + Send + 'static,
    {
        let policy = policy.build().expect("test policies are valid");
        self.mount(pattern, Some(policy), handler)
    }

    /// Mounts `handler` at `pattern` with no cache layer.
    pub fn uncached<F, Fut>(self, pattern: &'static str, handler: F) -> Self
    where
        F: Fn(OriginRequest, Origin) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = OriginResponse> + Send + 'static,
    {
        self.mount(pattern, None, handler)
    }

    /// Answers with `handler` every request that reaches the origin with no
    /// route pattern: behind a policy table (see [`App::start_with_table`]),
    /// which mounts no framework routes.
    pub fn fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(OriginRequest, Origin) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = OriginResponse> + Send + 'static,
    {
        self.fallback = Some(handler_of(handler));
        self
    }

    fn mount<F, Fut>(mut self, pattern: &'static str, policy: Option<cache_core::CachePolicy>, handler: F) -> Self
    where
        F: Fn(OriginRequest, Origin) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = OriginResponse> + Send + 'static,
    {
        self.routes.push(Route {
            pattern,
            policy,
            handler: Some(handler_of(handler)),
        });
        self
    }

    /// The origin serving these routes.
    pub fn origin(self) -> Origin {
        Origin::serving(self.routes, self.fallback)
    }

    /// Starts the app on adapter `A`, with a moka store and a manual clock.
    pub async fn start<A: Adapter>(self) -> Server {
        self.start_on::<A>(MokaStore::new()).await
    }

    /// Starts the app on adapter `A`, with `store` and a manual clock.
    pub async fn start_on<A: Adapter>(self, store: impl Store) -> Server {
        self.start_with::<A>(manual_cache(store)).await
    }

    /// Starts the app on adapter `A`, in front of `cache`.
    pub async fn start_with<A: Adapter>(self, cache: Cache) -> Server {
        A::start(cache, self.origin()).await
    }

    /// Starts the app on adapter `A` behind one cache layer holding
    /// `policies` (path patterns choose the policies), with a moka store and
    /// a manual clock: the [fallback](App::fallback) answers every request.
    pub async fn start_with_table<A: Adapter>(self, policies: Policies) -> Server {
        assert!(
            self.routes.is_empty(),
            "behind a policy table no framework routes are mounted: declare the app's behaviour as its fallback"
        );
        A::start_with_table(manual_cache(MokaStore::new()), self.origin(), policies).await
    }
}

fn handler_of<F, Fut>(handler: F) -> Handler
where
    F: Fn(OriginRequest, Origin) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = OriginResponse> + Send + 'static,
{
    Arc::new(move |req, origin| Box::pin(handler(req, origin)) as _)
}

/// A cache on `store` with a manual clock.
fn manual_cache(store: impl Store) -> Cache {
    Cache::builder().store(store).clock(Clock::manual()).build().expect("a valid cache")
}
