//! Handlers the behaviour tests mount with their routes (see
//! [`App`](crate::App)), and the shared table of
//! [`routes`](crate::origin::routes) answers with; each is written once,
//! framework-free.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};

use crate::origin::{Origin, OriginBody, OriginRequest, OriginResponse, text};

/// The `Last-Modified` of [`etag`].
pub const LAST_MODIFIED: &str = "Tue, 01 Jan 2030 00:00:00 GMT";
/// Bytes [`big`] sends before waiting for [`Origin::release_stream`].
pub const BIG_FIRST_CHUNK: usize = 4096;

/// `{method} {path}`: what any request was.
pub async fn echo(req: OriginRequest, _origin: Origin) -> OriginResponse {
    text(format!("{} {}", req.method, req.path))
}

/// `{path} v{version}`: what a handler reading the current data shows.
pub async fn versioned(req: OriginRequest, origin: Origin) -> OriginResponse {
    text(format!("{} v{}", req.path, origin.version()))
}

/// [`versioned`] on reads; a `PUT` changes the data and answers `204`.
pub async fn plain(req: OriginRequest, origin: Origin) -> OriginResponse {
    if req.method == Method::PUT {
        origin.bump();
        return status_only(StatusCode::NO_CONTENT);
    }
    versioned(req, origin).await
}

/// [`versioned`] on reads; a `PUT` on `/items/{id}` changes the data and
/// invalidates the tag `item:{id}` through the handle the adapter gives
/// handlers, answering with how many entries it dropped.
pub async fn items(req: OriginRequest, origin: Origin) -> OriginResponse {
    if req.method != Method::PUT {
        return versioned(req, origin).await;
    }
    origin.bump();
    let id = req.path.trim_start_matches("/items/");
    let invalidator = req.invalidator.expect("the cache layer gives handlers an Invalidator");
    let dropped = invalidator.tag(format!("item:{id}")).await.expect("the store invalidates");
    // A 303 would also invalidate; answer 200 with what the handler did.
    text(format!("dropped {dropped}"))
}

/// Reads the version when the request arrives (as a handler reads its
/// database), then waits for the gate (see [`Origin::close`]):
/// `slow v{version}`.
pub async fn slow(_req: OriginRequest, origin: Origin) -> OriginResponse {
    let version = origin.version();
    origin.wait_for_gate().await;
    text(format!("slow v{version}"))
}

/// `/status/{code}`: answers with that status (`400` for a bad code).
pub async fn status(req: OriginRequest, _origin: Origin) -> OriginResponse {
    let code = req.path.rsplit('/').next().and_then(|c| c.parse().ok()).unwrap_or(400);
    let mut r = text(format!("status {code}"));
    r.status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    r
}

/// `tenant={x-tenant-id:?} path={path}`: a response for the request's
/// tenant.
pub async fn tenant(req: OriginRequest, _origin: Origin) -> OriginResponse {
    text(format!("tenant={:?} path={}", req.headers.get("x-tenant-id"), req.path))
}

/// `for {authorization:?}`: a response for whoever the request's
/// credentials name.
pub async fn for_authorization(req: OriginRequest, _origin: Origin) -> OriginResponse {
    text(format!("for {:?}", req.headers.get(header::AUTHORIZATION)))
}

/// `lang {accept-language:?}`: a response in the request's language
/// (without `Vary`).
pub async fn language(req: OriginRequest, _origin: Origin) -> OriginResponse {
    text(format!("lang {:?}", req.headers.get(header::ACCEPT_LANGUAGE)))
}

/// `etag body`, with `ETag: "v1"` and `Last-Modified:` [`LAST_MODIFIED`].
pub async fn etag(_req: OriginRequest, _origin: Origin) -> OriginResponse {
    text("etag body")
        .header(header::ETAG, "\"v1\"")
        .header(header::LAST_MODIFIED, LAST_MODIFIED)
}

/// A streamed body: [`BIG_FIRST_CHUNK`] bytes `a` at once, then `END` once
/// [`Origin::release_stream`] lets it go on.
pub async fn big(_req: OriginRequest, origin: Origin) -> OriginResponse {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        let _ = tx.send(Bytes::from(vec![b'a'; BIG_FIRST_CHUNK])).await;
        origin.stream_released().await;
        let _ = tx.send(Bytes::from_static(b"END")).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) });
    OriginResponse {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: OriginBody::Stream(Box::pin(stream)),
        hints: None,
    }
}

/// Joins the crowd (see [`Origin::require_crowd`]), then answers
/// `uncacheable` with a `Set-Cookie`: a response the cache never stores.
pub async fn slow_uncacheable(_req: OriginRequest, origin: Origin) -> OriginResponse {
    origin.join_crowd().await;
    text("uncacheable").header(header::SET_COOKIE, "s=1")
}

/// An empty response with `status`.
pub fn status_only(status: StatusCode) -> OriginResponse {
    let mut r = text("");
    r.status = status;
    r
}
