use std::{
    mem,
    task::{Context, Poll},
};

use bytes::Bytes;
use cache_core::{BoxError, CacheBody, Invalidator, RouteMatch, adapter::Begun};
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::{CacheLayer, ResponseFuture};

/// Marks a request already taken by a cache layer further out.
#[derive(Clone, Copy, Debug)]
struct Served;

/// The service made by [`CacheLayer`].
///
/// Requests whose route has a policy start with
/// [`Cache::begin`](cache_core::Cache::begin): a hit in an in-process store
/// is answered without cloning the inner service or boxing a future; the
/// others go through [`Exchange::serve`](cache_core::adapter::Exchange::serve),
/// with stale-while-revalidate refreshes spawned on the runtime. Requests
/// without a policy reach the inner service untouched. Every request that reaches the
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
        let missed = match self.layer.cache.begin(selection.policy(), &parts) {
            Begun::Ready(hit) => return ResponseFuture::ready(hit.response()),
            Begun::Missed(missed) => missed,
        };
        let route = selection.route_match(&parts, RouteMatch::deferred(self.layer.route_info.params));
        let exchange = missed.exchange(parts).with_route(route).refresh_in_background(true);
        // The service that was polled ready serves this request; a clone
        // takes its place for the next one.
        let clone = self.inner.clone();
        let mut inner = mem::replace(&mut self.inner, clone);
        let handlers_cache = self.layer.cache.clone();
        ResponseFuture::cached(Box::pin(async move {
            let origin = move |mut req: Request<ReqB>| {
                req.extensions_mut().insert(Served);
                insert_invalidator(&mut req, &handlers_cache);
                inner.call(req)
            };
            let served = exchange.serve(body, origin).await?;
            // Stale-while-revalidate: the stale entry answers now, the
            // refresh runs on its own task (outside a runtime it is skipped).
            if let Some(refresh) = served.refresh
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                runtime.spawn(refresh.run());
            }
            Ok(served.response)
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
