//! [`Forward`]: the service behind the cache, which sends each request on
//! to the upstream.

use std::{
    convert::Infallible,
    error::Error as StdError,
    fmt::Write as _,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use cache_core::BoxError;
use http::{Extensions, Method, Request, Response, StatusCode, Version, header};
use http_body::Body;
use http_body_util::{BodyExt, Either, Empty, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tower::Service;

use crate::{Config, Upstream, headers};

/// How long an idle connection to the upstream stays in the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A response body from the proxy: the upstream's, streamed, or a short
/// text of the proxy's own (`502`, `504`).
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

/// The body of a request on its way upstream.
type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

/// The address of the client that sent a request: a request extension the
/// server adds, read by [`Forwarding`](crate::Forwarding) for
/// `X-Forwarded-For` and `Forwarded`, and to recognise trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Sends requests to the upstream over a pool of keep-alive connections,
/// and answers with the upstream's response.
///
/// On the way up: the hop-by-hop fields (RFC 9110 §7.6.1: `Connection` and
/// the fields it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
/// `Transfer-Encoding`, `Upgrade`, `Proxy-Authorization`,
/// `Proxy-Authenticate`) are removed; `Host` becomes the upstream's
/// authority; `Via: 1.1 caching-proxy` is appended; a `GET` or `HEAD`
/// goes without its body; the request goes as HTTP/1.1 (the forwarding
/// headers are [`Forwarding`](crate::Forwarding)'s, in front of the
/// cache). On the way down: hop-by-hop fields removed and `Via` appended.
/// Bodies stream both ways.
///
/// Never fails: an upstream that cannot be reached (or breaks the
/// exchange) gets the client `502 Bad Gateway`, one that sends no response
/// head within the timeout `504 Gateway Timeout`; both with a short text
/// body and `Cache-Control: no-store`. `CONNECT` gets `405`.
#[derive(Debug, Clone)]
pub struct Forward {
    client: Client<HttpConnector, UpstreamBody>,
    upstream: Upstream,
    timeout: Duration,
}

impl Forward {
    /// A forwarder to `config.upstream`, with `config.upstream_timeout`.
    pub fn new(config: &Config) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Forward {
            client,
            upstream: config.upstream.clone(),
            timeout: config.upstream_timeout,
        }
    }

    /// The request to send upstream, or why it cannot be forwarded.
    fn upstream_request<B>(&self, req: Request<B>) -> Result<Request<UpstreamBody>, Unforwardable>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        if parts.method == Method::CONNECT {
            return Err(Unforwardable::Connect);
        }
        parts.uri = self.upstream.uri(parts.uri.path_and_query()).map_err(|_| Unforwardable::Target)?;
        headers::remove_hop_by_hop(&mut parts.headers);
        headers::append_via(&mut parts.headers, parts.version);
        parts.headers.insert(header::HOST, self.upstream.host().clone());
        parts.version = Version::HTTP_11;
        parts.extensions = Extensions::new();
        // No key holds a GET's body: the upstream never sees one.
        let body = match parts.method {
            Method::GET | Method::HEAD => {
                parts.headers.remove(header::CONTENT_LENGTH);
                Empty::new().map_err(|never| match never {}).boxed_unsync()
            }
            _ => body.map_err(Into::into).boxed_unsync(),
        };
        Ok(Request::from_parts(parts, body))
    }
}

impl<B> Service<Request<B>> for Forward
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The pooled client takes requests at any time.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let req = match self.upstream_request(req) {
            Ok(req) => req,
            Err(refusal) => return Box::pin(std::future::ready(Ok(refusal.response()))),
        };
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let response = self.client.request(req);
        let timeout = self.timeout;
        Box::pin(async move {
            let answer = match tokio::time::timeout(timeout, response).await {
                Ok(Ok(response)) => downstream_response(response),
                Ok(Err(error)) => {
                    tracing::warn!(%method, %uri, error = %chain(&error), "upstream request failed: 502");
                    text_response(StatusCode::BAD_GATEWAY, "502 Bad Gateway: the upstream could not be reached\n")
                }
                Err(_) => {
                    tracing::warn!(%method, %uri, ?timeout, "upstream sent no response in time: 504");
                    text_response(
                        StatusCode::GATEWAY_TIMEOUT,
                        "504 Gateway Timeout: the upstream did not answer in time\n",
                    )
                }
            };
            Ok(answer)
        })
    }
}

/// A request the proxy answers itself.
#[derive(Debug, Clone, Copy)]
enum Unforwardable {
    /// `CONNECT`, for forward proxies.
    Connect,
    /// A request target that makes no URI on the upstream (such as `*`).
    Target,
}

impl Unforwardable {
    fn response(self) -> Response<ProxyBody> {
        match self {
            Unforwardable::Connect => text_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is not supported: this is a reverse proxy\n",
            ),
            Unforwardable::Target => text_response(StatusCode::BAD_REQUEST, "the request target cannot be forwarded\n"),
        }
    }
}

/// The upstream's response as the client gets it.
fn downstream_response(response: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    headers::append_via(&mut parts.headers, parts.version);
    parts.version = Version::default();
    parts.extensions = Extensions::new();
    Response::from_parts(parts, Either::Left(body))
}

/// A response of the proxy's own, never stored.
fn text_response(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(text.as_bytes()))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// An error and its sources, `: `-separated.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use http_body_util::Empty;

    use super::*;

    fn forward() -> Forward {
        Forward::new(&Config::new("http://127.0.0.1:8000".parse().expect("a valid upstream")))
    }

    fn request(method: Method, target: &str) -> Request<Empty<Bytes>> {
        Request::builder().method(method).uri(target).body(Empty::new()).unwrap()
    }

    #[test]
    fn requests_go_to_the_upstream_as_http_1_1_with_its_host() {
        let mut req = request(Method::GET, "http://www.example.com/a?b=c");
        *req.version_mut() = Version::HTTP_10;
        req.headers_mut().insert(header::HOST, "www.example.com".parse().unwrap());
        req.extensions_mut().insert(ClientAddr("192.0.2.1:5000".parse().unwrap()));
        let up = forward().upstream_request(req).unwrap();
        assert_eq!(up.uri(), "http://127.0.0.1:8000/a?b=c");
        assert_eq!(up.version(), Version::HTTP_11);
        assert_eq!(up.headers()[header::HOST], "127.0.0.1:8000");
        assert_eq!(up.headers()[header::VIA], "1.0 caching-proxy");
        assert!(up.extensions().get::<ClientAddr>().is_none());
    }

    #[test]
    fn asterisk_form_is_forwarded_and_connect_refused() {
        let up = forward().upstream_request(request(Method::OPTIONS, "*")).unwrap();
        assert_eq!(up.uri().path(), "*");
        let refusal = forward().upstream_request(request(Method::CONNECT, "example.com:443")).unwrap_err();
        assert_eq!(refusal.response().status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
