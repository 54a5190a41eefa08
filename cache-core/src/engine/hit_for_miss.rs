//! Keys recently seen with responses that could not be stored (Varnish's
//! hit-for-miss): requests for them skip coalescing for a while, so they do
//! not queue behind each other for a response they could not share.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

/// Marks kept at most; past this, expired marks are swept and, if that is
/// not enough, all are dropped (the cost is only some coalescing waits).
const MAX_MARKS: usize = 65_536;

#[derive(Debug, Default)]
pub(crate) struct HitForMiss {
    marks: Mutex<HashMap<String, u64>>,
}

impl HitForMiss {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        // Single map operations only: the map is valid after a panic elsewhere.
        self.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn mark(&self, key: &str, until_ms: u64, now_ms: u64) {
        let mut marks = self.lock();
        if marks.len() >= MAX_MARKS {
            marks.retain(|_, until| *until > now_ms);
            if marks.len() >= MAX_MARKS {
                marks.clear();
            }
        }
        marks.insert(key.to_owned(), until_ms);
    }

    pub(crate) fn is_marked(&self, key: &str, now_ms: u64) -> bool {
        let mut marks = self.lock();
        match marks.get(key) {
            Some(until) if *until > now_ms => true,
            Some(_) => {
                marks.remove(key);
                false
            }
            None => false,
        }
    }

    pub(crate) fn clear(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_expire() {
        let h = HitForMiss::default();
        h.mark("k", 100, 0);
        assert!(h.is_marked("k", 99));
        assert!(!h.is_marked("k", 100));
        h.mark("k", 100, 0);
        h.clear("k");
        assert!(!h.is_marked("k", 0));
    }
}
