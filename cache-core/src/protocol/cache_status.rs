//! The `Cache-Status` (RFC 9211) and legacy `X-Cache` response headers.

use http::{HeaderName, HeaderValue};

use crate::metrics::Outcome;

/// The name a [`Cache`](crate::Cache) gives itself in `Cache-Status` by
/// default.
pub const DEFAULT_NAME: &str = "cache";

/// The `x-cache` header name.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
/// The `cache-status` header name.
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Why a request went to the origin (RFC 9211 §2.2 `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fwd {
    /// Configured not to use the cache for this request.
    Bypass,
    /// The method is not served from cache.
    Method,
    /// Nothing stored for the URI.
    UriMiss,
    /// Something stored for the URI, but not for these request headers.
    VaryMiss,
    /// The stored response was stale.
    Stale,
    /// The request's own directives (`no-cache`, `max-age`, `min-fresh`)
    /// did not accept the stored response.
    Request,
}

impl Fwd {
    fn as_str(self) -> &'static str {
        match self {
            Fwd::Bypass => "bypass",
            Fwd::Method => "method",
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Stale => "stale",
            Fwd::Request => "request",
        }
    }
}

/// What the cache did for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    /// `None` for a hit.
    pub(crate) fwd: Option<Fwd>,
    pub(crate) fwd_status: Option<u16>,
    /// Remaining freshness of the entry served, in seconds; negative when
    /// a stale entry was served (RFC 9211 §2.4).
    pub(crate) ttl: Option<i64>,
    pub(crate) stored: bool,
    pub(crate) collapsed: bool,
}

impl Status {
    pub(crate) fn hit(ttl: i64) -> Self {
        Status {
            fwd: None,
            fwd_status: None,
            ttl: Some(ttl),
            stored: false,
            collapsed: false,
        }
    }

    pub(crate) fn forward(fwd: Fwd) -> Self {
        Status {
            fwd: Some(fwd),
            fwd_status: None,
            ttl: None,
            stored: false,
            collapsed: false,
        }
    }

    /// `Cache-Status: <name>; ...`. Written without `core::fmt`: it is on
    /// every hit.
    pub(crate) fn cache_status(&self, name: &str) -> HeaderValue {
        let mut out = String::with_capacity(name.len() + 48);
        let mut digits = itoa::Buffer::new();
        out.push_str(name);
        match self.fwd {
            None => out.push_str("; hit"),
            Some(fwd) => {
                out.push_str("; fwd=");
                out.push_str(fwd.as_str());
                if let Some(status) = self.fwd_status {
                    out.push_str("; fwd-status=");
                    out.push_str(digits.format(status));
                }
            }
        }
        if let Some(ttl) = self.ttl {
            out.push_str("; ttl=");
            out.push_str(digits.format(ttl));
        }
        if self.stored {
            out.push_str("; stored");
        }
        if self.collapsed {
            out.push_str("; collapsed");
        }
        HeaderValue::try_from(out).expect("the cache name is a valid header value (checked at build) and the rest is ASCII")
    }

    /// How the cache came to the response, for metrics and traces.
    pub(crate) fn outcome(&self) -> Outcome {
        if self.ttl.is_some_and(|ttl| ttl < 0) {
            return Outcome::Stale;
        }
        match self.fwd {
            None => Outcome::Hit,
            Some(Fwd::Bypass | Fwd::Method) => Outcome::Bypass,
            Some(_) if self.collapsed => Outcome::Coalesced,
            Some(Fwd::UriMiss | Fwd::VaryMiss | Fwd::Stale | Fwd::Request) => Outcome::Miss,
        }
    }

    /// `X-Cache: HIT|MISS|STALE|BYPASS`.
    pub(crate) fn x_cache(&self) -> HeaderValue {
        HeaderValue::from_static(match self.outcome() {
            Outcome::Hit => "HIT",
            Outcome::Stale => "STALE",
            Outcome::Bypass => "BYPASS",
            Outcome::Miss | Outcome::Coalesced | Outcome::Error => "MISS",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc_9211_values() {
        assert_eq!(Status::hit(42).cache_status("shop"), "shop; hit; ttl=42");
        let mut miss = Status::forward(Fwd::UriMiss);
        miss.fwd_status = Some(200);
        miss.stored = true;
        assert_eq!(miss.cache_status("shop"), "shop; fwd=uri-miss; fwd-status=200; stored");
        miss.stored = false;
        miss.collapsed = true;
        assert_eq!(miss.cache_status("shop"), "shop; fwd=uri-miss; fwd-status=200; collapsed");
        assert_eq!(Status::forward(Fwd::Method).x_cache(), "BYPASS");
        assert_eq!(Status::hit(1).x_cache(), "HIT");
        assert_eq!(miss.x_cache(), "MISS");
        assert_eq!(Status::hit(-3).cache_status("shop"), "shop; hit; ttl=-3");
        assert_eq!(Status::hit(-3).x_cache(), "STALE");
        let mut stale_if_error = Status::forward(Fwd::Stale);
        stale_if_error.fwd_status = Some(503);
        stale_if_error.ttl = Some(-20);
        assert_eq!(stale_if_error.cache_status("shop"), "shop; fwd=stale; fwd-status=503; ttl=-20");
        assert_eq!(stale_if_error.x_cache(), "STALE");
    }

    #[test]
    fn outcomes_follow_what_the_cache_did() {
        let mut collapsed = Status::forward(Fwd::UriMiss);
        collapsed.collapsed = true;
        let mut stale = Status::forward(Fwd::Stale);
        stale.ttl = Some(-1);
        for (status, outcome, x_cache) in [
            (Status::hit(3), Outcome::Hit, "HIT"),
            (Status::hit(-3), Outcome::Stale, "STALE"),
            (stale, Outcome::Stale, "STALE"),
            (Status::forward(Fwd::Method), Outcome::Bypass, "BYPASS"),
            (Status::forward(Fwd::Bypass), Outcome::Bypass, "BYPASS"),
            (Status::forward(Fwd::UriMiss), Outcome::Miss, "MISS"),
            (Status::forward(Fwd::VaryMiss), Outcome::Miss, "MISS"),
            (Status::forward(Fwd::Request), Outcome::Miss, "MISS"),
            (collapsed, Outcome::Coalesced, "MISS"),
        ] {
            assert_eq!(status.outcome(), outcome, "{status:?}");
            assert_eq!(status.x_cache(), x_cache, "{status:?}");
        }
    }
}
