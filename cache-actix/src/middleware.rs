//! The actix-web `Transform` and its service.

use std::{cell::RefCell, future::ready, rc::Rc};

use actix_web::{
    HttpMessage, HttpRequest,
    body::{EitherBody, MessageBody},
    dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready},
};
use cache_core::{
    Cache, CachePolicy, Invalidator, Policies, RouteMatch,
    adapter::{Begun, Exchange, Selection},
};
use futures_util::future::LocalBoxFuture;

use crate::{
    body::CachedBody,
    convert::{actix_response, apply_origin_head, origin_response, request_parts, shared_actix_response},
};

/// Caches the responses of the app, scope or resource it wraps.
///
/// Mount it with `.wrap(...)`. Built from a [`Cache`], whose store every
/// middleware made from it shares; cheap to clone. A request whose route
/// has no policy passes through untouched. When two cache middlewares wrap
/// one another, the outer one serves the request and the inner one passes it
/// through: give one resource of a scope its own policy with
/// [`CacheMiddleware::route`].
#[derive(Clone, Debug)]
pub struct CacheMiddleware {
    cache: Cache,
    policies: Policies,
}

impl CacheMiddleware {
    /// A middleware applying `policies` (one [`CachePolicy`] for every
    /// route, or a [`Policies`] table by route pattern).
    pub fn new(cache: &Cache, policies: impl Into<Policies>) -> Self {
        CacheMiddleware {
            cache: cache.clone(),
            policies: policies.into(),
        }
    }

    /// Gives the resource whose full pattern is `pattern`
    /// (`/api/v1/products/{id}`, scope prefix included) its own policy, or
    /// none to leave it uncached.
    #[must_use]
    pub fn route(mut self, pattern: impl Into<String>, policy: impl Into<Option<CachePolicy>>) -> Self {
        self.policies = self.policies.route(pattern, policy);
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for CacheMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, CachedBody<B>>>;
    type Error = actix_web::Error;
    type Transform = CacheService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CacheService {
            inner: Rc::new(service),
            layer: self.clone(),
        }))
    }
}

/// Marks a request already taken by a cache middleware further out.
#[derive(Clone, Copy, Debug)]
struct Served;

/// The service made by [`CacheMiddleware`].
///
/// Requests with a policy start with
/// [`Cache::begin`](cache_core::Cache::begin): a hit on an in-process
/// store is answered at once, its headers converted to actix's types once
/// per second per entry
/// ([`Ready::shared_response`](cache_core::adapter::Ready::shared_response));
/// the others go through
/// [`Exchange::serve`](cache_core::adapter::Exchange::serve), which calls
/// the wrapped service at most once (a stale entry is refreshed before it
/// answers the request that found it). Every request that reaches the
/// wrapped service gets an [`Invalidator`] request extension
/// (`web::ReqData<Invalidator>` in handlers). Errors of the wrapped service pass through unchanged.
#[derive(Debug)]
pub struct CacheService<S> {
    inner: Rc<S>,
    layer: CacheMiddleware,
}

type Responded<B> = Result<ServiceResponse<EitherBody<B, CachedBody<B>>>, actix_web::Error>;

impl<S, B> Service<ServiceRequest> for CacheService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, CachedBody<B>>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Responded<B>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let (Some(selection), Some(parts)) = (self.selection(&req), request_parts(&req)) else {
            return self.passthrough(req);
        };
        let missed = match self.layer.cache.begin(selection.policy(), &parts) {
            Begun::Ready(hit) => {
                let response = match hit.shared_response() {
                    (response, Some(head)) => shared_actix_response(response, &head),
                    (response, None) => actix_response(response, &parts.method),
                };
                return Box::pin(ready(Ok(req.into_response(response).map_into_right_body())));
            }
            Begun::Missed(missed) => missed,
        };
        let route = selection.route_match(&parts, RouteMatch::default());
        let exchange = missed.exchange(parts).with_route(route);
        req.extensions_mut().insert(Served);
        self.serve(req, exchange)
    }
}

impl<S> CacheService<S> {
    /// The policy that serves `req`, unless a cache layer further out
    /// already serves it.
    fn selection(&self, req: &ServiceRequest) -> Option<Selection<'_>> {
        if req.extensions().get::<Served>().is_some() {
            return None;
        }
        let policies = &self.layer.policies;
        // The pattern costs an allocation: only read it when it matters.
        let pattern = policies.by_route().then(|| req.match_pattern()).flatten();
        let method = http::Method::from_bytes(req.method().as_str().as_bytes()).ok()?;
        policies.select(pattern.as_deref(), &method, req.path())
    }

    fn passthrough<B>(&self, req: ServiceRequest) -> LocalBoxFuture<'static, Responded<B>>
    where
        S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
        B: MessageBody + 'static,
    {
        insert_invalidator(&req, &self.layer.cache);
        let future = self.inner.call(req);
        Box::pin(async move { future.await.map(ServiceResponse::map_into_left_body) })
    }

    /// Serves a request the cache could not answer at once: the engine
    /// calls the wrapped service as the origin, if it needs to.
    fn serve<B>(&self, req: ServiceRequest, exchange: Exchange) -> LocalBoxFuture<'static, Responded<B>>
    where
        S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
        B: MessageBody + 'static,
    {
        // A path pattern of the policies has already read the parameters;
        // otherwise they come from actix's routing, after the call.
        let from_routing = exchange.route().pattern().is_none();
        let inner = Rc::clone(&self.inner);
        let cache_for_handlers = self.layer.cache.clone();
        // The request goes to the origin, if the engine calls it, and comes
        // back with the origin's response; either way it ends up here to
        // build the response. (Its head can only be changed while no other
        // reference to it exists, so it is not cloned.)
        let slot = Rc::new(RefCell::new(Slot::Request(req)));
        let origin_slot = Rc::clone(&slot);
        Box::pin(async move {
            let origin = move |forwarded: http::Request<()>| async move {
                let Slot::Request(mut req) = origin_slot.replace(Slot::Taken) else {
                    unreachable!("the engine calls the origin at most once");
                };
                apply_origin_head(&mut req, &forwarded.into_parts().0);
                insert_invalidator(&req, &cache_for_handlers);
                let (http_request, response) = inner.call(req).await?.into_parts();
                // Routing inside the wrapped service filled in the path
                // parameters: hand them to the engine for tag templates.
                let mut response = origin_response(response);
                if from_routing {
                    response.extensions_mut().insert(route_match(&http_request));
                }
                origin_slot.replace(Slot::Responded(http_request));
                Ok::<_, actix_web::Error>(response)
            };
            let method = exchange.parts().method.clone();
            let response = actix_response(exchange.serve((), origin).await?.response, &method);
            let response = match slot.replace(Slot::Taken) {
                Slot::Request(req) => req.into_response(response),
                Slot::Responded(http_request) => ServiceResponse::new(http_request, response),
                Slot::Taken => unreachable!("an origin call that returned a response gave the request back"),
            };
            Ok(response.map_into_right_body())
        })
    }
}

/// Where the request is while the engine serves it.
enum Slot {
    Request(ServiceRequest),
    Taken,
    Responded(HttpRequest),
}

/// Gives handlers an [`Invalidator`], unless a middleware further out
/// already did. Only requests that reach the wrapped service get one: a hit
/// does not pay for it.
fn insert_invalidator(req: &ServiceRequest, cache: &Cache) {
    if req.extensions().get::<Invalidator>().is_none() {
        req.extensions_mut().insert(cache.invalidator());
    }
}

/// The matched resource's path parameters, for tag templates.
/// The matched resource's parameters. actix-web's `match_info` decodes
/// every escape but `%25`, `%2F` and `%2B`; `web::Path` decodes those too,
/// which `param_encoded` does.
fn route_match(req: &HttpRequest) -> RouteMatch {
    req.match_info()
        .iter()
        .fold(RouteMatch::default(), |route, (name, value)| route.param_encoded(name, value))
}
