//! Invalidations kept while Redis is unreachable, and their replay.

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use super::{Inner, RedisStore};
use crate::{error::StoreError, invalidation_log::Target};

/// Invalidations kept while Redis is unreachable (tags count one each);
/// past this the store forgets them and invalidates everything instead.
const MAX_PENDING: usize = 1024;

/// Invalidations kept while Redis was unreachable.
#[derive(Default)]
pub(super) struct Pending {
    targets: Vec<Target>,
    /// How many keys, tags and prefixes `targets` names.
    pub(super) size: usize,
    /// More were kept than [`MAX_PENDING`]: everything is invalidated.
    overflowed: bool,
    /// Counts every invalidation kept, so that a replay can tell whether
    /// one was kept while it ran.
    kept: u64,
}

/// How many keys, tags and prefixes an invalidation counts for.
fn weight(target: &Target) -> usize {
    match target {
        Target::Tags(tags) => tags.len().max(1),
        Target::Key(_) | Target::Prefix(_) => 1,
    }
}

impl RedisStore {
    /// Keeps an invalidation that could not be applied.
    pub(super) fn keep(&self, target: Target) {
        let mut pending = self.inner.lock_pending();
        pending.kept += 1;
        if !pending.overflowed {
            pending.size += weight(&target);
            pending.targets.push(target);
            if pending.size > MAX_PENDING {
                tracing::warn!(
                    server = %self.inner.server,
                    "more than {MAX_PENDING} invalidations kept while redis is unreachable: every entry will be invalidated"
                );
                pending.targets.clear();
                pending.overflowed = true;
            }
        }
        self.inner.has_pending.store(true, Ordering::Release);
    }

    /// Starts the task that replays kept invalidations, unless it runs.
    pub(super) fn start_replay(&self) {
        let Some(runtime) = self.runtime() else {
            return;
        };
        if self.inner.replaying.swap(true, Ordering::AcqRel) {
            return;
        }
        let running = Running(Arc::downgrade(&self.inner), |inner| &inner.replaying);
        runtime.spawn(replay(running));
    }
}

/// Clears one of a store's "a task is running" flags when the task ends,
/// however it ends (its runtime may shut down under it).
pub(super) struct Running(pub(super) Weak<Inner>, pub(super) fn(&Inner) -> &AtomicBool);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            (self.1)(&inner).store(false, Ordering::Release);
        }
    }
}

/// The kept invalidations a replay applies, as they stood when it began.
struct Batch {
    targets: Vec<Target>,
    overflowed: bool,
    /// [`Pending::kept`] when the replay began.
    kept: u64,
}

impl Pending {
    /// The invalidations kept so far, for a replay.
    fn batch(&self) -> Batch {
        Batch {
            targets: self.targets.clone(),
            overflowed: self.overflowed,
            kept: self.kept,
        }
    }
}

/// Applies the kept invalidations, oldest first, retrying until Redis
/// answers; ends when none are left or the store is dropped.
async fn replay(running: Running) {
    let mut delay = Duration::from_millis(50);
    loop {
        tokio::time::sleep(delay).await;
        let Some(inner) = running.0.upgrade() else { return };
        let store = RedisStore { inner };
        let batch = store.inner.lock_pending().batch();
        match store.apply_batch(&batch).await {
            Ok(()) => {
                if store.forget_applied(&batch) {
                    tracing::info!(server = %store.inner.server, "invalidations kept while redis was unreachable applied");
                    return;
                }
                delay = Duration::from_millis(1);
            }
            Err(err) => {
                tracing::debug!(error = %err, "replaying kept invalidations failed; retrying");
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}

impl RedisStore {
    /// Applies a replay's invalidations, merged: every kept tag in one
    /// invalidation (one clock tick, one message), then the keys and
    /// prefixes in the order they were kept; first of all everything, when
    /// more were kept than [`MAX_PENDING`].
    async fn apply_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.overflowed {
            self.apply(&Target::Prefix(String::new())).await?;
        }
        let tags = merged_tags(&batch.targets);
        if !tags.is_empty() {
            self.apply(&Target::Tags(tags)).await?;
        }
        for target in &batch.targets {
            if !matches!(target, Target::Tags(_)) {
                self.apply(target).await?;
            }
        }
        Ok(())
    }

    /// Forgets the invalidations a replay applied; returns whether none
    /// are left (and so Redis is used again).
    fn forget_applied(&self, batch: &Batch) -> bool {
        let mut pending = self.inner.lock_pending();
        if pending.overflowed && pending.kept != batch.kept {
            // Kept while everything was being invalidated, and
            // perhaps before the invalidation of everything began:
            // everything again.
            return false;
        }
        pending.overflowed = false;
        let applied = batch.targets.len().min(pending.targets.len());
        pending.targets.drain(..applied);
        pending.size = pending.targets.iter().map(weight).sum();
        if !pending.targets.is_empty() {
            return false;
        }
        self.inner.has_pending.store(false, Ordering::Release);
        true
    }
}

/// Every tag the kept invalidations name, once each.
fn merged_tags(targets: &[Target]) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for target in targets {
        if let Target::Tags(kept) = target {
            tags.extend(kept.iter().cloned());
        }
    }
    tags.sort_unstable();
    tags.dedup();
    tags
}
