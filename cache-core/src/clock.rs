//! The engine's notion of "now", injectable for tests.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Wall-clock time for the cache, in milliseconds since the Unix epoch.
///
/// Entries record when they were stored as wall-clock time so that several
/// instances sharing a store agree on their age. The default clock reads the
/// system time once and then advances with [`tokio::time::Instant`], so a test
/// that calls `tokio::time::pause` and `tokio::time::advance` (tokio's `test-util`) moves the
/// cache's time too. [`Clock::manual`] gives a clock that moves only when told.
#[derive(Clone, Debug)]
pub struct Clock {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Anchored { epoch_ms: u64, start: tokio::time::Instant },
    Manual(Arc<AtomicU64>),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system clock, advancing with tokio's (pausable) clock.
    pub fn system() -> Self {
        Clock {
            kind: Kind::Anchored {
                epoch_ms: system_ms(),
                start: tokio::time::Instant::now(),
            },
        }
    }

    /// A clock that starts at the current system time and moves only through
    /// [`Clock::advance`].
    pub fn manual() -> Self {
        Clock {
            kind: Kind::Manual(Arc::new(AtomicU64::new(system_ms()))),
        }
    }

    /// Moves a manual clock forward. Has no effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Kind::Manual(ms) = &self.kind {
            ms.fetch_add(duration_ms(by), Ordering::SeqCst);
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.kind {
            Kind::Anchored { epoch_ms, start } => epoch_ms + duration_ms(start.elapsed()),
            Kind::Manual(ms) => ms.load(Ordering::SeqCst),
        }
    }

    /// The current time as a [`SystemTime`].
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms())
    }
}

pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn system_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(duration_ms).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn system_clock_follows_paused_tokio_time() {
        let clock = Clock::system();
        let before = clock.now_ms();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(clock.now_ms() - before, 3_600_000);
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual();
        let t0 = clock.now_ms();
        assert_eq!(clock.now_ms(), t0);
        clock.clone().advance(Duration::from_millis(1500));
        assert_eq!(clock.now_ms(), t0 + 1500);
    }
}
