//! Heads across the boundary: actix-web's `http` 0.2 types and the
//! engine's `http` 1 types.

use actix_web::{
    HttpMessage, HttpResponse,
    dev::ServiceRequest,
    http::{
        Method as ActixMethod, StatusCode as ActixStatus,
        header::{HeaderMap as ActixHeaders, HeaderName as ActixName, HeaderValue as ActixValue},
    },
};
use cache_core::{CacheBody, CacheHints, adapter::HitHead, key::Tenant};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, request};

use crate::body::{CachedBody, OriginBody};

/// The request head as the engine sees it, or `None` if it cannot be
/// expressed (the request then passes through).
pub(crate) fn request_parts(req: &ServiceRequest) -> Option<request::Parts> {
    let head = req.head();
    let uri: Uri = head.uri.path_and_query().map_or("/", |pq| pq.as_str()).parse().ok()?;
    let method = Method::from_bytes(head.method.as_str().as_bytes()).ok()?;
    let (mut parts, ()) = Request::builder().method(method).uri(uri).body(()).ok()?.into_parts();
    parts.headers = headers_to_http(&head.headers);
    if let Some(tenant) = req.extensions().get::<Tenant>() {
        parts.extensions.insert(tenant.clone());
    }
    Some(parts)
}

pub(crate) fn headers_to_http(actix: &ActixHeaders) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(actix.len());
    for (name, value) in actix.iter() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

pub(crate) fn headers_to_actix(headers: &HeaderMap, actix: &mut ActixHeaders) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            ActixName::from_bytes(name.as_str().as_bytes()),
            ActixValue::from_bytes(value.as_bytes()),
        ) {
            actix.append(name, value);
        }
    }
}

/// Gives the actix request the head the engine forwards to the origin: its
/// method, and its headers (without the client's conditionals and the
/// headers the policy strips; with the cache's validators on a
/// revalidation).
///
/// A head that already is the forwarded one (most misses) is left alone.
/// Changing it needs the only reference to the request (actix panics
/// otherwise, as for its own `NormalizePath`): an outer middleware must
/// not keep a clone of the `HttpRequest` while it calls this one.
pub(crate) fn apply_origin_head(req: &mut ServiceRequest, origin: &request::Parts) {
    if is_forwarded_head(req.head(), origin) {
        return;
    }
    let head = req.head_mut();
    if let Ok(method) = ActixMethod::from_bytes(origin.method.as_str().as_bytes()) {
        head.method = method;
    }
    head.headers.clear();
    headers_to_actix(&origin.headers, &mut head.headers);
}

/// Whether the actix head has the forwarded head's method and exactly its
/// header lines. Counting is not enough: a revalidation removes as many
/// headers (the client's conditionals, stripped ones) as it may add (the
/// cache's validators).
fn is_forwarded_head(head: &actix_web::dev::RequestHead, origin: &request::Parts) -> bool {
    let lines = |name: &str| head.headers.get_all(name).map(|v| v.as_bytes());
    head.method.as_str() == origin.method.as_str()
        && head.headers.len() == origin.headers.len()
        && origin.headers.keys().all(|name| {
            let forwarded = origin.headers.get_all(name).iter().map(http::HeaderValue::as_bytes);
            lines(name.as_str()).eq(forwarded)
        })
}

/// The origin's response as the engine takes it; a [`CacheHints`] the
/// handler left in the response's extensions moves along.
pub(crate) fn origin_response<B>(mut res: HttpResponse<B>) -> Response<OriginBody<B>> {
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = headers_to_http(res.headers());
    let hints = res.extensions_mut().remove::<CacheHints>();
    let mut response = Response::new(OriginBody::new(res.into_body()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    if let Some(hints) = hints {
        response.extensions_mut().insert(hints);
    }
    response
}

/// A hit whose headers are in a shared [`HitHead`]: they are converted to
/// actix's types once per head (the engine shares one for every hit on an
/// entry within a second), then cloned.
pub(crate) fn shared_actix_response<B>(res: Response<CacheBody<OriginBody<B>>>, head: &HitHead) -> HttpResponse<CachedBody<B>> {
    let (parts, body) = res.into_parts();
    let status = ActixStatus::from_u16(parts.status.as_u16()).unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::with_body(status, CachedBody::new(body, None));
    *response.headers_mut() = head.converted(|headers| {
        let mut actix = ActixHeaders::with_capacity(headers.len());
        headers_to_actix(headers, &mut actix);
        actix
    });
    response
}

/// The engine's response as actix sends it. For `HEAD`, actix takes the
/// `Content-Length` from the body's size, so the body reports the length
/// the engine's `Content-Length` header gives.
pub(crate) fn actix_response<B>(res: Response<CacheBody<OriginBody<B>>>, method: &Method) -> HttpResponse<CachedBody<B>> {
    let (parts, body) = res.into_parts();
    let status = ActixStatus::from_u16(parts.status.as_u16()).unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR);
    let head_length = match *method {
        Method::HEAD => parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok()),
        _ => None,
    };
    let mut response = HttpResponse::with_body(status, CachedBody::new(body, head_length));
    headers_to_actix(&parts.headers, response.headers_mut());
    response
}
