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

use cache_core::{Cache, CachePolicyBuilder, Clock, MokaStore, Store};

use crate::{
    Adapter, Server,
    origin::{Origin, OriginRequest, OriginResponse, Route},
};

/// The routes of one test's app.
#[derive(Default)]
pub struct App {
    routes: Vec<Route>,
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

    fn mount<F, Fut>(mut self, pattern: &'static str, policy: Option<cache_core::CachePolicy>, handler: F) -> Self
    where
        F: Fn(OriginRequest, Origin) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = OriginResponse> + Send + 'static,
    {
        let handler = Arc::new(move |req, origin| Box::pin(handler(req, origin)) as _);
        self.routes.push(Route {
            pattern,
            policy,
            handler: Some(handler),
        });
        self
    }

    /// The origin serving these routes.
    pub fn origin(self) -> Origin {
        Origin::with_routes(self.routes)
    }

    /// Starts the app on adapter `A`, with a moka store and a manual clock.
    pub async fn start<A: Adapter>(self) -> Server {
        self.start_on::<A>(MokaStore::new()).await
    }

    /// Starts the app on adapter `A`, with `store` and a manual clock.
    pub async fn start_on<A: Adapter>(self, store: impl Store) -> Server {
        let cache = Cache::builder().store(store).clock(Clock::manual()).build().expect("a valid cache");
        A::start(cache, self.origin()).await
    }
}
