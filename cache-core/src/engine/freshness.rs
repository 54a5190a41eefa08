//! Whether a stored entry may answer a request: fresh, stale within a
//! window the policy and the response allow, or due for an early refresh.

use http::request::Parts;

use super::rfc::{self, RequestDirectives};
use crate::{CacheMode, CachedEntry, cache_status::Fwd, policy::PolicyInner};

/// Whether a stored entry may answer the request at `now`: it matches the
/// request's varied headers and is fresh, or, in RFC 9111 mode, satisfies
/// the request's own directives (which may refuse a fresh entry or accept a
/// stale one).
pub(crate) fn usable(entry: &CachedEntry, parts: &Parts, now: u64, policy: &PolicyInner) -> Result<(), Fwd> {
    if !entry.vary_matches(&parts.headers) {
        return Err(Fwd::VaryMiss);
    }
    if policy.mode == CacheMode::Rfc9111
        && let Some(directives) = RequestDirectives::of(parts)
    {
        return match entry.is_fresh(now) {
            true if directives.accepts_fresh(entry, now) => Ok(()),
            true => Err(Fwd::Request),
            false if directives.accepts_stale(policy, entry, now) => Ok(()),
            false if directives.no_cache => Err(Fwd::Request),
            false => Err(Fwd::Stale),
        };
    }
    if !entry.is_fresh(now) {
        return Err(Fwd::Stale);
    }
    Ok(())
}

/// Whether the policy lets the entry answer once stale (stale-while-
/// revalidate, stale-if-error): in RFC 9111 mode, not when the response said
/// `must-revalidate`, `proxy-revalidate`, `s-maxage` or `no-cache`.
pub(crate) fn may_serve_stale(policy: &PolicyInner, entry: &CachedEntry) -> bool {
    policy.mode != CacheMode::Rfc9111 || !rfc::forbids_stale(policy, entry)
}

/// Beyond this many times the expected XFetch gap, an early refresh is too
/// unlikely (e^-10) to consider.
const EARLY_REFRESH_WINDOW: f64 = 10.0;

/// The XFetch gap of an entry: its fetch time times β, in ms.
fn early_refresh_gap_ms(policy: &PolicyInner, entry: &CachedEntry) -> f64 {
    entry.fetch_ms.max(1) as f64 * policy.early_refresh_beta
}

/// Whether a fresh entry is close enough to expiry that an early refresh
/// may be due.
pub(crate) fn in_early_refresh_window(policy: &PolicyInner, entry: &CachedEntry, now: u64) -> bool {
    policy.early_refresh_beta > 0.0
        && (entry.fresh_until_ms().saturating_sub(now) as f64) < EARLY_REFRESH_WINDOW * early_refresh_gap_ms(policy, entry)
}

/// XFetch: whether this hit on a fresh entry should start a refresh,
/// `now − gap · ln(rand) ≥ expiry`.
pub(crate) fn early_refresh_due(policy: &PolicyInner, entry: &CachedEntry, now: u64) -> bool {
    if !in_early_refresh_window(policy, entry, now) {
        return false;
    }
    let draw = -(1.0 - fastrand::f64()).ln();
    draw * early_refresh_gap_ms(policy, entry) >= entry.fresh_until_ms().saturating_sub(now) as f64
}
