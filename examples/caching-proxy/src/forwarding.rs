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

/// Forwarding fields a client could send to make the upstream build a
/// page for another host, scheme or address: dropped unless the client is
/// a trusted proxy.
const SPOOFABLE: [HeaderName; 8] = [
    headers::X_FORWARDED_FOR,
    X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-server"),
    HeaderName::from_static("x-real-ip"),
    FORWARDED,
];

/// Sets the forwarding headers of every request, in front of the cache, so
/// that what the upstream reads of them is either the proxy's own word or
/// part of the cache key (web cache poisoning through unkeyed headers is
/// not possible):
///
/// - From a client that is not a trusted proxy, `X-Forwarded-For`,
///   `-Host`, `-Proto`, `-Port`, `-Prefix`, `-Server`, `X-Real-IP` and
///   `Forwarded` are dropped. Then `X-Forwarded-For` gets the client's
///   address ([`ClientAddr`]), `X-Forwarded-Host` the request's `Host`,
///   `X-Forwarded-Proto` `http`, and `Forwarded` an element saying the
///   same (`for=192.0.2.7;host="shop.example";proto=http`).
/// - From a trusted proxy (a load balancer in front, by address), its
///   fields are kept: the client's address is appended to its
///   `X-Forwarded-For` and an element to its `Forwarded`, and
///   `X-Forwarded-Host` / `-Proto` are set only where it sent none.
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
    if !trusted {
        for name in &SPOOFABLE {
            headers.remove(name);
        }
    }
    if let Some(client) = client {
        headers::append_forwarded_for(headers, client);
    }
    let host = headers.get(header::HOST).cloned();
    if let Some(host) = &host
        && !headers.contains_key(X_FORWARDED_HOST)
    {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    let mut element = match client {
        Some(IpAddr::V4(ip)) => format!("for={ip}"),
        Some(IpAddr::V6(ip)) => format!("for=\"[{ip}]\""),
        None => "for=unknown".to_owned(),
    };
    if let Some(host) = headers.get(X_FORWARDED_HOST).and_then(|h| h.to_str().ok()) {
        element.push_str(";host=\"");
        for c in host.chars() {
            if c == '"' || c == '\\' {
                element.push('\\');
            }
            element.push(c);
        }
        element.push('"');
    }
    if let Some(proto) = headers.get(X_FORWARDED_PROTO).and_then(|p| p.to_str().ok())
        && !proto.is_empty()
        && proto.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        element.push_str(";proto=");
        element.push_str(proto);
    }
    if let Ok(element) = HeaderValue::try_from(element) {
        headers::append_to_list(headers, FORWARDED, &element);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_static(value)))
            .collect()
    }

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
            ("forwarded", "for=203.0.113.9;host=shop.example;proto=https"),
        ]);
        set_forwarding(&mut h, Some("2001:db8::1".parse().unwrap()), true);
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 2001:db8::1");
        assert_eq!(
            h["forwarded"],
            "for=203.0.113.9;host=shop.example;proto=https, for=\"[2001:db8::1]\";host=\"shop.example\";proto=https"
        );
    }
}
