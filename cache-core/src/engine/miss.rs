//! Why a lookup could not answer, and what the fetch that follows needs.

use std::sync::Arc;

use super::freshness::may_serve_stale;
use crate::{CachedEntry, Stamp, cache_status::Fwd, policy::PolicyInner};

/// Why a lookup found nothing to answer with, and what the fetch that
/// follows needs from it.
pub(crate) struct Miss {
    pub(crate) fwd: Fwd,
    /// A stale entry that matches the request: what stale-while-revalidate
    /// and stale-if-error may answer with.
    pub(crate) stale: Option<Arc<CachedEntry>>,
    /// Where the lookup stood in the store's order of invalidations: the
    /// fetch's response is stored only if no invalidation concerning it
    /// came later.
    pub(crate) stamp: Stamp,
}

impl Miss {
    pub(crate) fn new(fwd: Fwd, stamp: Stamp) -> Self {
        Miss { fwd, stale: None, stamp }
    }

    pub(crate) fn with_fwd(self, fwd: Fwd) -> Self {
        Miss { fwd, ..self }
    }

    /// After another lookup missed too: its reason and stamp (the newer),
    /// this one's stale entry.
    pub(crate) fn looked_again(&mut self, again: Miss) {
        self.fwd = again.fwd;
        self.stamp = again.stamp;
    }

    /// The stale entry, when stale-while-revalidate lets it answer at `now`.
    pub(crate) fn stale_while_revalidate(&self, policy: &PolicyInner, now: u64) -> Option<&Arc<CachedEntry>> {
        let entry = self.stale.as_ref()?;
        (self.fwd == Fwd::Stale && entry.within_stale_window(now, entry.stale_while_revalidate_ms) && may_serve_stale(policy, entry))
            .then_some(entry)
    }
}
