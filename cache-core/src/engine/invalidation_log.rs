//! Recent invalidations, so that a fetch that overlapped one does not
//! store a response that predates it.

use std::{
    collections::VecDeque,
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

/// Invalidations remembered; a fetch older than all of them assumes it was
/// affected.
const KEPT: usize = 1024;

/// What one invalidation dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Tags(Vec<String>),
    Key(String),
    Prefix(String),
}

impl Target {
    fn concerns(&self, key: &str, tags: &[String]) -> bool {
        match self {
            Target::Tags(dropped) => dropped.iter().any(|t| tags.contains(t)),
            Target::Key(k) => k == key,
            Target::Prefix(p) => key.starts_with(p.as_str()),
        }
    }
}

/// A sequence number per invalidation and the targets of the most recent
/// ones.
#[derive(Debug, Default)]
pub(crate) struct InvalidationLog {
    seq: AtomicU64,
    recent: Mutex<VecDeque<(u64, Target)>>,
}

impl InvalidationLog {
    fn lock(&self) -> MutexGuard<'_, VecDeque<(u64, Target)>> {
        // Pushes and pops only: the queue is valid after a panic elsewhere.
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of invalidations so far: a fetch notes it when it starts.
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Records an invalidation before it is applied to the store.
    pub(crate) fn record(&self, target: Target) {
        let mut recent = self.lock();
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        recent.push_back((seq, target));
        if recent.len() > KEPT {
            recent.pop_front();
        }
    }

    /// Whether an invalidation recorded after `since` may concern the entry
    /// at `key` with `tags`.
    pub(crate) fn affects(&self, since: u64, key: &str, tags: &[String]) -> bool {
        if self.seq() == since {
            return false;
        }
        let recent = self.lock();
        match recent.front() {
            // Older invalidations were forgotten: assume the worst.
            Some((first, _)) if *first > since + 1 => true,
            None => true,
            Some(_) => recent.iter().filter(|(seq, _)| *seq > since).any(|(_, t)| t.concerns(key, tags)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_overlapping_invalidations_affect_an_entry() {
        let log = InvalidationLog::default();
        let tags = vec!["product:1".to_owned()];
        let since = log.seq();
        assert!(!log.affects(since, "k", &tags));
        log.record(Target::Tags(vec!["product:2".to_owned()]));
        log.record(Target::Prefix("other:".to_owned()));
        assert!(!log.affects(since, "k", &tags), "unrelated invalidations");
        log.record(Target::Key("k".to_owned()));
        assert!(log.affects(since, "k", &tags));
        let later = log.seq();
        log.record(Target::Tags(tags.clone()));
        assert!(log.affects(later, "x", &tags));
        assert!(!log.affects(log.seq(), "x", &tags), "invalidations before the fetch started");
    }

    #[test]
    fn forgotten_invalidations_count_as_affecting() {
        let log = InvalidationLog::default();
        let since = log.seq();
        for i in 0..=KEPT {
            log.record(Target::Key(format!("k{i}")));
        }
        assert!(log.affects(since, "unrelated", &[]));
    }
}
