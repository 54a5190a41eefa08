use std::{
    mem,
    task::{Context, Poll},
};

use bytes::Bytes;
use cache_core::{BoxError, CacheBody, Invalidator};
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::{CacheLayer, ResponseFuture};

/// Marks a request already taken by a cache layer further out.
#[derive(Clone, Copy, Debug)]
struct Served;

/// The service made by [`CacheLayer`].
///
/// Requests whose route has a policy go through [`Cache::serve`]
/// (`cache_core::Cache::serve`); the others reach the inner service
/// untouched. Every request gets an [`Invalidator`] extension, so handlers
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
        let (mut parts, body) = req.into_parts();
        if parts.extensions.get::<Invalidator>().is_none() {
            parts.extensions.insert(self.layer.cache.invalidator());
        }
        if parts.extensions.get::<Served>().is_some() {
            return ResponseFuture::passthrough(self.inner.call(Request::from_parts(parts, body)));
        }
        let route = (self.layer.route_info)(&mut parts);
        let Some(policy) = self.layer.policies.resolve(route.pattern()).cloned() else {
            return ResponseFuture::passthrough(self.inner.call(Request::from_parts(parts, body)));
        };
        parts.extensions.insert(Served);
        // The service that was polled ready serves this request; a clone
        // takes its place for the next one.
        let clone = self.inner.clone();
        let mut inner = mem::replace(&mut self.inner, clone);
        let cache = self.layer.cache.clone();
        let request = Request::from_parts(parts, body);
        ResponseFuture::cached(Box::pin(async move {
            cache.serve(&policy, &route, request, move |req| inner.call(req)).await
        }))
    }
}
