//! Handlers the behaviour tests mount with their routes (see
//! [`App`](crate::App)); each is written once, framework-free.

use http::{Method, StatusCode};

use crate::origin::{Origin, OriginRequest, OriginResponse, text};

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

/// An empty response with `status`.
pub fn status_only(status: StatusCode) -> OriginResponse {
    let mut r = text("");
    r.status = status;
    r
}
