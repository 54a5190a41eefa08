//! How the engine treats a request before any lookup.

use http::{Method, header, request::Parts};

use crate::{cache_status::Fwd, key::TenantSource, method::invalidates, policy::PolicyInner};

/// How the engine treats a request, before any lookup.
pub(crate) enum Class {
    /// `GET`/`HEAD` served through the cache.
    Cacheable,
    /// `GET`/`HEAD` the cache may store a response for but must not answer
    /// from storage (`Authorization` without per-principal keys).
    StoreOnly,
    /// Passed to the origin untouched.
    Pass(Fwd),
    /// A method not known to be safe: passed on, then invalidates on
    /// success.
    Unsafe,
}

pub(crate) fn classify(parts: &Parts, policy: &PolicyInner) -> Class {
    let m = &parts.method;
    if *m != Method::GET && *m != Method::HEAD {
        return match invalidates(m) {
            true => Class::Unsafe,
            false => Class::Pass(Fwd::Method),
        };
    }
    // One pass over the request's headers (a handful) rather than a lookup
    // per header of interest: this runs on every request.
    let tenant = match &policy.key.tenant {
        Some(TenantSource::Header(name)) => Some(name),
        _ => None,
    };
    let mut tenant_seen = false;
    let mut authorization = false;
    for (name, value) in &parts.headers {
        if *name == header::RANGE || *name == header::IF_MATCH || *name == header::IF_UNMODIFIED_SINCE || *name == header::IF_RANGE {
            return Class::Pass(Fwd::Bypass);
        }
        if *name == header::AUTHORIZATION {
            if authorization {
                // Repeated credentials: which would the application read?
                // Neither the key nor the store decides for it.
                return Class::Pass(Fwd::Bypass);
            }
            authorization = true;
        }
        // A body on a GET or HEAD reaches the handler, and no key holds it.
        if *name == header::TRANSFER_ENCODING || (*name == header::CONTENT_LENGTH && value != "0") {
            return Class::Pass(Fwd::Bypass);
        }
        if tenant == Some(name) {
            if tenant_seen {
                // A repeated tenant header: which value would the
                // application read? Do not guess.
                return Class::Pass(Fwd::Bypass);
            }
            tenant_seen = true;
        }
    }
    if authorization && !policy.key.by_principal {
        return Class::StoreOnly;
    }
    Class::Cacheable
}
