//! Which methods the cache treats as safe (RFC 9110 §9.2.1).

use http::Method;

/// Whether `method` is known to be safe: `GET`, `HEAD`, `OPTIONS` and
/// `TRACE`. Every other method, extension methods included, may change the
/// resource: a non-error response to it invalidates what is stored for the
/// target (RFC 9111 §4.4), and the policy's invalidation rules apply to it.
pub(crate) fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_four_safe_methods_are_safe() {
        for safe in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(is_safe(&Method::from_bytes(safe.as_bytes()).unwrap()), "{safe}");
        }
        for unsafe_ in ["POST", "PUT", "PATCH", "DELETE", "CONNECT", "M-SEARCH", "PURGE", "get"] {
            assert!(!is_safe(&Method::from_bytes(unsafe_.as_bytes()).unwrap()), "{unsafe_}");
        }
    }
}
