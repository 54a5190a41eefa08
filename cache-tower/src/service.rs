use std::{
    mem,
    task::{Context, Poll},
};

use bytes::Bytes;
use cache_core::{BoxError, CacheBody, Invalidator, RouteMatch};
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::{CacheLayer, ResponseFuture};

/// Marks a request already taken by a cache layer further out.
#[derive(Clone, Copy, Debug)]
struct Served;

/// The service made by [`CacheLayer`].
///
/// Requests whose route has a policy are answered by
/// [`Cache::serve_now`](cache_core::Cache::serve_now) on a hit in an
/// in-process store, without cloning the inner service or boxing a future,
/// and otherwise go through [`Cache::serve`](cache_core::Cache::serve). The
/// others reach the inner service untouched. Every request that reaches the
/// inner service gets an [`Invalidator`] extension, so handlers
/// behind the layer can extract it. The inner service's errors pass through
/// unchanged.
#[derive(Clone, Debug)]
pub struct CacheService<S> {
    inner: S,
    layer: CacheLayer,
}

impl<S> CacheService<S> {
    pub(crate) fn new(inner: S, layer: CacheLayer) -> Self {
        CacheService { inner, layer }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for CacheService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<CacheBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        if req.extensions().get::<Served>().is_some() {
            return self.passthrough(req);
        }
        let pattern = (self.layer.route_info.pattern)(req.extensions());
        let Some(selection) = self.layer.policies.select(pattern, req.method(), req.uri().path()) else {
            return self.passthrough(req);
        };
        let (parts, body) = req.into_parts();
        if let Some(hit) = self.layer.cache.serve_now(selection.policy(), &parts) {
            return ResponseFuture::ready(hit);
        }
        let policy = selection.policy().clone();
        let route = selection.route_match(&parts, RouteMatch::deferred(self.layer.route_info.params));
        let req = Request::from_parts(parts, body);
        // The service that was polled ready serves this request; a clone
        // takes its place for the next one.
        let clone = self.inner.clone();
        let mut inner = mem::replace(&mut self.inner, clone);
        let cache = self.layer.cache.clone();
        ResponseFuture::cached(Box::pin(async move {
            let handlers_cache = cache.clone();
            let origin = move |mut req: Request<ReqB>| {
                req.extensions_mut().insert(Served);
                insert_invalidator(&mut req, &handlers_cache);
                inner.call(req)
            };
            let (response, refresh) = cache.serve_with_refresh(&policy, &route, req, origin).await?;
            // Stale-while-revalidate: the stale entry answers now, the
            // refresh runs on its own task (outside a runtime it is skipped).
            if let Some(refresh) = refresh
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                runtime.spawn(refresh.run());
            }
            Ok(response)
        }))
    }
}

impl<S> CacheService<S> {
    fn passthrough<ReqB, ResB>(&mut self, mut req: Request<ReqB>) -> ResponseFuture<S::Future, ResB, S::Error>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
    {
        insert_invalidator(&mut req, &self.layer.cache);
        ResponseFuture::passthrough(self.inner.call(req))
    }
}

/// Gives handlers an [`Invalidator`], unless a layer further out already did.
fn insert_invalidator<B>(req: &mut Request<B>, cache: &cache_core::Cache) {
    if req.extensions().get::<Invalidator>().is_none() {
        req.extensions_mut().insert(cache.invalidator());
    }
}
