//! Which methods change what the cache stores (RFC 9110 §9.2.1,
//! RFC 9111 §4.4).

use http::Method;

/// Methods the IANA HTTP Method Registry lists as safe besides the four of
/// RFC 9110: WebDAV's `PROPFIND` and `REPORT`, `SEARCH`, `QUERY`, and
/// HTTP/2's connection preface `PRI`.
const SAFE_EXTENSIONS: [&str; 5] = ["PROPFIND", "REPORT", "SEARCH", "QUERY", "PRI"];

/// Whether `method` is known to be safe: `GET`, `HEAD`, `OPTIONS`,
/// `TRACE`, and the extension methods registered as safe.
pub(crate) fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) || SAFE_EXTENSIONS.contains(&method.as_str())
}

/// Whether a non-error response to `method` invalidates what is stored for
/// its target (RFC 9111 §4.4): every method not known to be safe, extension
/// methods such as `M-SEARCH` included — except `CONNECT`, whose target is
/// a tunnel's authority, never a stored resource. The policy's invalidation
/// rules apply to the same methods.
pub(crate) fn invalidates(method: &Method) -> bool {
    !is_safe(method) && *method != Method::CONNECT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(name: &str) -> Method {
        Method::from_bytes(name.as_bytes()).unwrap()
    }

    #[test]
    fn methods_not_known_to_be_safe_invalidate() {
        for safe in ["GET", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "REPORT", "SEARCH", "QUERY", "PRI"] {
            assert!(is_safe(&method(safe)), "{safe}");
            assert!(!invalidates(&method(safe)), "{safe}");
        }
        assert!(!is_safe(&Method::CONNECT) && !invalidates(&Method::CONNECT));
        for unsafe_ in ["POST", "PUT", "PATCH", "DELETE", "M-SEARCH", "PURGE", "MKCOL", "get", "propfind"] {
            assert!(!is_safe(&method(unsafe_)), "{unsafe_}");
            assert!(invalidates(&method(unsafe_)), "{unsafe_}");
        }
    }
}
