//! [`Forwarding`]: the forwarding headers the upstream gets, set by the
//! proxy before the cache sees the request.

use std::{
    net::IpAddr,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, header};
use tower::Service;

use crate::{ClientAddr, headers};

/// `X-Forwarded-Host`: the `Host` the client asked for.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Proto`: the scheme the client used.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `Forwarded` (RFC 7239).
pub const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Fields a client could send to make the upstream build a page for
/// another host, scheme, path or address, which the proxy neither keys nor
/// sets: always dropped. (`X-Forwarded-For`, `-Host` and `-Proto` are
/// dropped too unless the client is a trusted proxy.)
const SPOOFABLE: [HeaderName; 14] = [
    FORWARDED,
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-server"),
    HeaderName::from_static("x-forwarded-ssl"),
    HeaderName::from_static("x-forwarded-scheme"),
    HeaderName::from_static("x-forwarded-uri"),
    HeaderName::from_static("front-end-https"),
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-original-host"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-host"),
    HeaderName::from_static("x-http-method-override"),
];

/// What a trusted proxy in front may say: kept from it, keyed by the cache.
const FROM_TRUSTED: [HeaderName; 3] = [headers::X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO];

/// Sets the forwarding headers of every request, in front of the cache, so
/// that what the upstream reads of them is either the proxy's own word or
/// part of the cache key (web cache poisoning through unkeyed headers is
/// not possible):
///
/// - First the hop-by-hop fields go, with every field `Connection` names,
///   so that a client cannot have a field the cache keys by (or one this
///   layer sets) removed on the way to the upstream.
/// - From a client that is not a trusted proxy, `X-Forwarded-For`,
///   `-Host` and `-Proto` are dropped; from any client, `Forwarded`,
///   `X-Forwarded-Port`, `-Prefix`, `-Server`, `-Ssl`, `-Scheme`, `-Uri`,
///   `Front-End-Https`, `X-Real-IP`, `X-Original-URL`, `X-Original-Host`,
///   `X-Rewrite-URL`, `X-Host` and `X-HTTP-Method-Override`. Then
///   `X-Forwarded-For` gets the client's address ([`ClientAddr`]),
///   `X-Forwarded-Host` the request's `Host`, `X-Forwarded-Proto` `http`,
///   and `Forwarded` the same (`for=192.0.2.7;host="shop.example";
///   proto=http`).
/// - From a trusted proxy (a load balancer in front, by address),
///   `X-Forwarded-For`, `-Host` and `-Proto` are kept: the client's
///   address is appended to its `X-Forwarded-For`, and `Forwarded` says
///   what the three say (one element per address).
/// - A `GET` or `HEAD` loses `Content-Length` and `Transfer-Encoding`: its
///   body never reaches the upstream ([`Forward`](crate::Forward) drops
///   it), so no stored response depends on it.
///
/// The cache keys every response by `Host` (and, with trusted proxies, by
/// `X-Forwarded-Host` and `X-Forwarded-Proto`): see
/// [`Proxy::with_cache`](crate::Proxy::with_cache).
#[derive(Debug, Clone)]
pub struct Forwarding<S> {
    inner: S,
    trusted: Arc<[IpAddr]>,
}

impl<S> Forwarding<S> {
    /// Sets the forwarding headers of requests to `inner`, trusting those
    /// of clients at the `trusted` addresses.
    pub fn new(inner: S, trusted: &[IpAddr]) -> Self {
        Forwarding {
            inner,
            trusted: trusted.iter().map(|ip| ip.to_canonical()).collect(),
        }
    }
}

impl<S, B> Service<Request<B>> for Forwarding<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let client = req.extensions().get::<ClientAddr>().map(|addr| addr.0.ip().to_canonical());
        let trusted = client.is_some_and(|ip| self.trusted.contains(&ip));
        let bodiless = matches!(*req.method(), Method::GET | Method::HEAD);
        headers::remove_hop_by_hop(req.headers_mut());
        set_forwarding(req.headers_mut(), client, trusted);
        if bodiless {
            req.headers_mut().remove(header::CONTENT_LENGTH);
            req.headers_mut().remove(header::TRANSFER_ENCODING);
        }
        self.inner.call(req)
    }
}

/// Rewrites the forwarding fields of a request from `client` (see
/// [`Forwarding`]).
pub(crate) fn set_forwarding(headers: &mut HeaderMap, client: Option<IpAddr>, trusted: bool) {
    let untrusted: &[HeaderName] = if trusted { &[] } else { &FROM_TRUSTED };
    for name in SPOOFABLE.iter().chain(untrusted) {
        headers.remove(name);
    }
    if let Some(client) = client {
        headers::append_forwarded_for(headers, client);
    }
    if let Some(host) = headers.get(header::HOST).cloned()
        && !headers.contains_key(X_FORWARDED_HOST)
    {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if let Ok(forwarded) = HeaderValue::try_from(forwarded(headers)) {
        headers.insert(FORWARDED, forwarded);
    }
}

/// `Forwarded` (RFC 7239) saying what `X-Forwarded-For`, `-Host` and
/// `-Proto` say: one element per address, the last with the host and
/// scheme.
fn forwarded(headers: &HeaderMap) -> String {
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let nodes: Vec<String> = text(&headers::X_FORWARDED_FOR)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|node| !node.is_empty())
        .map(|node| match node.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => format!("for={ip}"),
            Ok(IpAddr::V6(ip)) => format!("for=\"[{ip}]\""),
            Err(_) => "for=unknown".to_owned(),
        })
        .collect();
    let mut out = if nodes.is_empty() {
        "for=unknown".to_owned()
    } else {
        nodes.join(", ")
    };
    if let Some(host) = text(&X_FORWARDED_HOST) {
        out.push_str(";host=\"");
        for c in host.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    if let Some(proto) = text(&X_FORWARDED_PROTO)
        && !proto.is_empty()
        && proto.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        out.push_str(";proto=");
        out.push_str(proto);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::tests::headers;

    #[test]
    fn a_client_cannot_choose_the_forwarding_headers() {
        let mut h = headers(&[
            ("host", "shop.example"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-real-ip", "10.0.0.1"),
            ("forwarded", "for=10.0.0.1;host=evil.example"),
        ]);
        set_forwarding(&mut h, Some("192.0.2.7".parse().unwrap()), false);
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert!(!h.contains_key("x-real-ip"));
        assert_eq!(h["forwarded"], "for=192.0.2.7;host=\"shop.example\";proto=http");
        assert_eq!(h.get_all("forwarded").iter().count(), 1);
    }

    #[test]
    fn a_trusted_proxy_keeps_its_own() {
        let mut h = headers(&[
            ("host", "origin.internal"),
            ("x-forwarded-host", "shop.example"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9;host=evil.example;proto=https"),
            ("x-forwarded-prefix", "/evil"),
        ]);
        set_forwarding(&mut h, Some("2001:db8::1".parse().unwrap()), true);
        assert!(!h.contains_key("x-forwarded-prefix"), "not keyed: never kept");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 2001:db8::1");
        assert_eq!(
            h["forwarded"],
            "for=203.0.113.9, for=\"[2001:db8::1]\";host=\"shop.example\";proto=https"
        );
    }
}
