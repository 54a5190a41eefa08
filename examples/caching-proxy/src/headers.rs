//! Header rewriting between the client and the upstream: hop-by-hop fields
//! out, `Via` and `X-Forwarded-For` in.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue, Version, header};

/// The pseudonym of this proxy in `Via`.
pub const VIA_PSEUDONYM: &str = "caching-proxy";

/// `X-Forwarded-For`, the de facto list of client addresses.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The fields that concern one connection only (RFC 9110 §7.6.1, plus
/// `Keep-Alive` and `Proxy-Connection` of older HTTP/1.x practice): never
/// forwarded, in either direction.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Removes the hop-by-hop fields: the fixed list, and every field that
/// `Connection` names.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_options(headers) {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The field names listed in `Connection` (which may repeat, each a
/// comma-separated list); options that are not field names are skipped.
fn connection_options(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|option| HeaderName::from_bytes(option.trim().as_bytes()).ok())
        .collect()
}

/// Appends this proxy to `Via`, with the protocol version of the message it
/// received (`1.1 caching-proxy`).
pub(crate) fn append_via(headers: &mut HeaderMap, received: Version) {
    let protocol = match received {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    };
    let entry =
        HeaderValue::try_from(format!("{protocol} {VIA_PSEUDONYM}")).expect("a protocol version and a token are a valid field value");
    append_to_list(headers, header::VIA, &entry);
}

/// Appends the client's address to `X-Forwarded-For`, as nginx's
/// `$proxy_add_x_forwarded_for` does.
pub(crate) fn append_forwarded_for(headers: &mut HeaderMap, client: IpAddr) {
    let entry = HeaderValue::try_from(client.to_canonical().to_string()).expect("an IP address is a valid field value");
    append_to_list(headers, X_FORWARDED_FOR, &entry);
}

/// Sets `name` to one list: its present values, then `entry`.
pub(crate) fn append_to_list(headers: &mut HeaderMap, name: HeaderName, entry: &HeaderValue) {
    let mut list = Vec::new();
    for value in headers.get_all(&name) {
        list.extend_from_slice(value.as_bytes());
        list.extend_from_slice(b", ");
    }
    list.extend_from_slice(entry.as_bytes());
    let list = HeaderValue::from_bytes(&list).expect("valid field values joined by \", \" are a valid field value");
    headers.insert(name, list);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header map of static names and values, in order.
    pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_static(value)))
            .collect()
    }

    #[test]
    fn hop_by_hop_fields_and_those_named_in_connection_are_removed() {
        let mut h = headers(&[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "x-other"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("proxy-authenticate", "Basic"),
            ("x-secret", "1"),
            ("x-other", "2"),
            ("x-kept", "3"),
            ("content-type", "text/plain"),
        ]);
        remove_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-kept"]);
    }

    #[test]
    fn via_is_appended_with_the_received_version() {
        let mut h = HeaderMap::new();
        append_via(&mut h, Version::HTTP_11);
        assert_eq!(h[header::VIA], "1.1 caching-proxy");

        let mut h = headers(&[("via", "1.0 fred"), ("via", "1.1 p.example.net")]);
        append_via(&mut h, Version::HTTP_10);
        assert_eq!(h.get_all(header::VIA).iter().count(), 1);
        assert_eq!(h[header::VIA], "1.0 fred, 1.1 p.example.net, 1.0 caching-proxy");
    }

    #[test]
    fn forwarded_for_lists_the_client_last() {
        let mut h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        append_forwarded_for(&mut h, "::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(h[X_FORWARDED_FOR], "203.0.113.7, 192.0.2.1");

        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, "2001:db8::1".parse().unwrap());
        assert_eq!(h[X_FORWARDED_FOR], "2001:db8::1");
    }
}
