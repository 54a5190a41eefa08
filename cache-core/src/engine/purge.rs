//! The purge API: drop entries from outside the application, over HTTP,
//! behind a bearer token.
//!
//! This module is what every adapter shares; they mount it in their idiom:
//! `cache_axum::purge` (a router for `POST /purge` and a layer answering
//! `PURGE`), `cache_actix::purge` (a resource and a middleware) and
//! `cache_tower::purge` (a layer for any tower stack, such as a proxy).
//! One [`Purger`] holds what they need: the cache, the token and the limits.
//!
//! # `POST /purge`
//!
//! With `Authorization: Bearer <token>` and a JSON [`PurgeRequest`]:
//!
//! ```text
//! curl -X POST -H 'Authorization: Bearer TOKEN' -d '{"tags": ["product:acme:42"]}' http://HOST/purge
//! {"dropped":1}
//! ```
//!
//! | status | when                                                                           |
//! |--------|--------------------------------------------------------------------------------|
//! | `200`  | done: `{"dropped": n}` ([`PurgeOutcome`])                                      |
//! | `400`  | not the JSON of a [`PurgeRequest`], no item, an empty item, over `max_items`   |
//! | `401`  | no token or a wrong one, with `WWW-Authenticate: Bearer`; nothing is read      |
//! | `413`  | a body over `max_body_bytes` (declared or read: never read past the limit)     |
//! | `503`  | the store failed; the purge may be incomplete and can be retried               |
//!
//! Errors are `{"error": "..."}`; every answer is JSON and `Cache-Control:
//! no-store`. The token is checked first, so an unauthenticated client
//! learns nothing about the body or the routes.
//!
//! # `PURGE <url>`
//!
//! A request with the method `PURGE`, on any path of the application,
//! drops every stored variant of that URL (all `Vary` variants, `GET` and
//! `HEAD`), as a successful `POST` to it would: [`Purger::purge_url`],
//! through [`Invalidator::request`]. The key is built as the route's policy
//! builds it, so the request must carry what the key is made of: the tenant
//! header of a tenant-keyed route, the query of a list. A `PURGE` whose URL
//! no policy covers gets `404`. The same token and answers apply.
//!
//! # Security
//!
//! The token is kept as a digest and compared in constant time
//! ([`PurgeAuth`]); it is never logged, and `Debug` redacts it. Purging is
//! never open: without a token there is no purge endpoint at all. A bearer
//! token travels in clear over plain HTTP, so serve the API over TLS or
//! on an internal interface only.
//!
//! # Example
//!
//! ```
//! use cache_core::purge::{PurgeAuth, PurgeRequest, Purger};
//! use cache_core::{Cache, MokaStore};
//! use http::Request;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let cache = Cache::new(MokaStore::new());
//! let purger = Purger::new(&cache, PurgeAuth::bearer("s3cret").unwrap()).max_items(100);
//!
//! let request = Request::post("/purge")
//!     .header("authorization", "Bearer s3cret")
//!     .body(http_body_util::Full::new(bytes::Bytes::from_static(br#"{"tags": ["product:42"]}"#)))
//!     .unwrap();
//! let response = purger.serve_json(request).await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body().as_ref(), br#"{"dropped":0}"#);
//!
//! let anonymous = Request::post("/purge").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
//! assert_eq!(purger.serve_json(anonymous).await.status(), 401);
//! # }
//! ```

mod auth;
mod request;

use std::future::Future;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

pub use auth::{PURGE_CHALLENGE, PurgeAuth};
pub use request::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ITEMS, PurgeError, PurgeLimits, PurgeOutcome, PurgeRequest, purge_response};

use crate::{BoxError, Cache, CachePolicy, Invalidator};

/// The conventional path of the purge endpoint: `/purge`.
pub const PURGE_PATH: &str = "/purge";

/// Whether `method` is `PURGE`.
pub fn is_purge(method: &Method) -> bool {
    method.as_str() == "PURGE"
}

/// Carries out purge requests: the cache to purge, the token they need and
/// their limits. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Purger {
    invalidator: Invalidator,
    auth: PurgeAuth,
    limits: PurgeLimits,
}

impl Purger {
    /// A purger of `cache`'s entries for requests bearing `auth`'s token,
    /// with the default [`PurgeLimits`].
    pub fn new(cache: &Cache, auth: PurgeAuth) -> Self {
        Purger {
            invalidator: cache.invalidator(),
            auth,
            limits: PurgeLimits::default(),
        }
    }

    /// Sets the largest body read, in bytes (default
    /// [`DEFAULT_MAX_BODY_BYTES`]).
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_body_bytes = bytes;
        self
    }

    /// Sets the most tags, keys and prefixes one request may name (default
    /// [`DEFAULT_MAX_ITEMS`]).
    #[must_use]
    pub fn max_items(mut self, items: usize) -> Self {
        self.limits.max_items = items;
        self
    }

    /// The limits requests are held to.
    pub fn limits(&self) -> PurgeLimits {
        self.limits
    }

    /// Checks the request's bearer token.
    ///
    /// # Errors
    ///
    /// [`PurgeError::Unauthorized`].
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), PurgeError> {
        if self.auth.verify(headers) {
            return Ok(());
        }
        tracing::debug!("purge refused: no valid bearer token");
        Err(PurgeError::Unauthorized)
    }

    /// Checks the body length the request declares, before reading it.
    ///
    /// # Errors
    ///
    /// [`PurgeError::PayloadTooLarge`].
    pub fn check_length(&self, headers: &HeaderMap) -> Result<(), PurgeError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        match declared {
            Some(length) if length > self.limits.max_body_bytes as u64 => Err(self.too_large()),
            _ => Ok(()),
        }
    }

    /// Parses and checks a JSON body against the limits.
    ///
    /// # Errors
    ///
    /// See [`PurgeRequest::from_json`].
    pub fn parse(&self, body: &[u8]) -> Result<PurgeRequest, PurgeError> {
        PurgeRequest::from_json(body, &self.limits)
    }

    /// Drops what `request` names (tags, then keys, then prefixes), without
    /// checking a token: for requests already authorized.
    ///
    /// # Errors
    ///
    /// [`PurgeError::Store`], at the first store failure; what was dropped
    /// before it stays dropped.
    pub async fn purge(&self, request: &PurgeRequest) -> Result<PurgeOutcome, PurgeError> {
        let result = self.drop_entries(request).await;
        match &result {
            Ok(dropped) => tracing::info!(dropped, items = request.items(), "purged"),
            Err(error) => tracing::warn!(%error, items = request.items(), "purge failed"),
        }
        Ok(PurgeOutcome { dropped: result? })
    }

    async fn drop_entries(&self, request: &PurgeRequest) -> Result<u64, crate::StoreError> {
        let mut dropped = 0;
        if !request.tags.is_empty() {
            dropped += self.invalidator.tags(request.tags.iter().map(String::as_str)).await?;
        }
        for key in &request.keys {
            dropped += u64::from(self.invalidator.key(key).await?);
        }
        for prefix in &request.prefixes {
            dropped += self.invalidator.prefix(prefix).await?;
        }
        Ok(dropped)
    }

    /// Authorizes, parses and carries out a purge whose body has been read.
    ///
    /// # Errors
    ///
    /// As [`Purger::authorize`], [`Purger::parse`] and [`Purger::purge`].
    pub async fn purge_json(&self, headers: &HeaderMap, body: &[u8]) -> Result<PurgeOutcome, PurgeError> {
        self.authorize(headers)?;
        let request = self.parse(body)?;
        self.purge(&request).await
    }

    /// The whole `POST /purge` endpoint: authorizes, reads the body up to
    /// the limit, purges and answers (see the [module docs](self)).
    pub fn serve_json<B>(&self, request: Request<B>) -> impl Future<Output = Response<Bytes>> + Send + use<B>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let purger = self.clone();
        async move { purge_response(&purger.read_and_purge(request).await) }
    }

    async fn read_and_purge<B>(&self, request: Request<B>) -> Result<PurgeOutcome, PurgeError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        self.purge_body(&parts.headers, body).await
    }

    /// The `POST /purge` endpoint's work for adapters whose bodies are not
    /// `Send`: authorizes the request by its `headers`, reads `body` up to
    /// the limit, parses it and purges.
    ///
    /// # Errors
    ///
    /// As [`Purger::authorize`], [`Purger::check_length`],
    /// [`Purger::read_body`], [`Purger::parse`] and [`Purger::purge`].
    pub async fn purge_body<B>(&self, headers: &HeaderMap, body: B) -> Result<PurgeOutcome, PurgeError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        self.authorize(headers)?;
        self.check_length(headers)?;
        let body = self.read_body(body).await?;
        let request = self.parse(&body)?;
        self.purge(&request).await
    }

    /// Reads `body`, but never more than the limit.
    ///
    /// # Errors
    ///
    /// [`PurgeError::PayloadTooLarge`] past the limit, [`PurgeError::Body`]
    /// if the body fails.
    pub async fn read_body<B>(&self, body: B) -> Result<Bytes, PurgeError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        match Limited::new(body, self.limits.max_body_bytes).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.is::<LengthLimitError>() => Err(self.too_large()),
            Err(error) => Err(PurgeError::Body(error)),
        }
    }

    fn too_large(&self) -> PurgeError {
        PurgeError::PayloadTooLarge {
            limit: self.limits.max_body_bytes,
        }
    }

    /// Authorizes a `PURGE` of the URL `request` addresses and drops every
    /// variant stored for it under `policy`, the policy of its route.
    ///
    /// # Errors
    ///
    /// [`PurgeError::Unauthorized`]; [`PurgeError::NoPolicy`] without a
    /// policy; [`PurgeError::Store`].
    pub async fn purge_url<B>(&self, policy: Option<&CachePolicy>, request: &Request<B>) -> Result<PurgeOutcome, PurgeError> {
        self.authorize(request.headers())?;
        let policy = policy.ok_or(PurgeError::NoPolicy)?;
        match self.invalidator.request(policy, &without_credentials(request)).await {
            Ok(dropped) => {
                tracing::info!(dropped, path = request.uri().path(), "purged a URL");
                Ok(PurgeOutcome { dropped })
            }
            Err(error) => {
                tracing::warn!(%error, path = request.uri().path(), "purge of a URL failed");
                Err(error.into())
            }
        }
    }

    /// The answer to a `PURGE` request: [`Purger::purge_url`], answered as
    /// the [module docs](self) say. The request's body is not read.
    pub fn serve_purge<B>(
        &self,
        policy: Option<CachePolicy>,
        request: Request<B>,
    ) -> impl Future<Output = Response<Bytes>> + Send + use<B> {
        let purger = self.clone();
        let (head, _body) = request.into_parts();
        let request = Request::from_parts(head, ());
        async move { purge_response(&purger.purge_url(policy.as_ref(), &request).await) }
    }
}

/// The head of `request` without its `Authorization`: the purge token is
/// no part of the URL's key, even under a policy that keys by principal.
fn without_credentials<B>(request: &Request<B>) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = request.uri().clone();
    *head.headers_mut() = request.headers().clone();
    head.headers_mut().remove(header::AUTHORIZATION);
    *head.extensions_mut() = request.extensions().clone();
    head
}

#[cfg(all(test, feature = "moka"))]
mod tests {
    use std::convert::Infallible;

    use http_body_util::Full;

    use super::*;
    use crate::{MokaStore, RouteMatch};

    const TOKEN: &str = "Bearer t0ken";

    fn purger(cache: &Cache) -> Purger {
        Purger::new(cache, PurgeAuth::bearer("t0ken").unwrap())
            .max_body_bytes(128)
            .max_items(3)
    }

    async fn store(cache: &Cache, policy: &CachePolicy, path: &str) {
        let origin = |_req: Request<()>| async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hi")))) };
        let request = Request::get(path).body(()).unwrap();
        let response = cache.serve(policy, &RouteMatch::default(), request, origin).await.unwrap();
        assert_eq!(response.headers()["x-cache"], "MISS");
    }

    fn post(auth: Option<&str>, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
        let mut request = Request::post("/purge").body(Full::new(body.into())).unwrap();
        if let Some(auth) = auth {
            request.headers_mut().insert(header::AUTHORIZATION, auth.parse().unwrap());
        }
        request
    }

    #[tokio::test]
    async fn json_purges_by_tag_key_and_prefix() {
        let cache = Cache::new(MokaStore::new());
        let policy = CachePolicy::builder().ttl("1m").tag("t").build().unwrap();
        for path in ["/a", "/b", "/c"] {
            store(&cache, &policy, path).await;
        }
        let response = purger(&cache).serve_json(post(Some(TOKEN), r#"{"tags": ["t"]}"#)).await;
        assert_eq!(response.body().as_ref(), br#"{"dropped":3}"#);

        store(&cache, &policy, "/a").await;
        store(&cache, &policy, "/b").await;
        let key = policy.key().build(&Request::get("/a").body(()).unwrap().into_parts().0);
        let body = format!(
            r#"{{"keys": ["{key}", "missing"], "prefixes": ["{}"]}}"#,
            policy.key().prefix(None, "/b")
        );
        let outcome = purger(&cache)
            .purge_json(post(Some(TOKEN), "").headers(), body.as_bytes())
            .await
            .unwrap();
        assert_eq!(outcome.dropped, 2);
    }

    #[tokio::test]
    async fn refusals_drop_nothing() {
        let cache = Cache::new(MokaStore::new());
        let policy = CachePolicy::builder().ttl("1m").tag("t").build().unwrap();
        store(&cache, &policy, "/a").await;
        let purger = purger(&cache);
        let status = |request| async { purger.serve_json(request).await.status() };
        assert_eq!(status(post(None, r#"{"tags": ["t"]}"#)).await, 401);
        assert_eq!(status(post(Some("Bearer nope"), r#"{"tags": ["t"]}"#)).await, 401);
        assert_eq!(status(post(Some(TOKEN), r#"{"tags": ["a", "b", "c", "t"]}"#)).await, 400);
        let padded = format!(r#"{{"tags": ["t"]}}{}"#, " ".repeat(128));
        assert_eq!(status(post(Some(TOKEN), padded)).await, 413);
        assert_eq!(status(post(Some(TOKEN), "{")).await, 400);
        assert_eq!(cache.invalidator().tag("t").await.unwrap(), 1, "the entry is still there");
    }

    #[tokio::test]
    async fn purge_method_drops_the_url() {
        let cache = Cache::new(MokaStore::new());
        let policy = CachePolicy::builder().ttl("1m").build().unwrap();
        store(&cache, &policy, "/a?x=1").await;
        store(&cache, &policy, "/a?x=2").await;
        let purge = |auth: &str| {
            let request = Request::builder().method("PURGE").uri("/a?x=1").header(header::AUTHORIZATION, auth);
            request.body(()).unwrap()
        };
        let purger = purger(&cache);
        assert_eq!(purger.serve_purge(Some(policy.clone()), purge("Bearer no")).await.status(), 401);
        assert_eq!(purger.serve_purge(None, purge(TOKEN)).await.status(), 404);
        let response = purger.serve_purge(Some(policy.clone()), purge(TOKEN)).await;
        assert_eq!(response.body().as_ref(), br#"{"dropped":1}"#);
        store(&cache, &policy, "/a?x=1").await;
        assert!(is_purge(&Method::from_bytes(b"PURGE").unwrap()));
    }
}
