//! A circuit breaker in front of Redis.

use std::{
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use crate::metrics;

/// Consecutive failures that open the breaker by default.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
/// How long an open breaker skips Redis before probing it, by default.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(2);

/// Where a circuit breaker stands.
///
/// Reported as the gauge `http_cache_breaker_state{store="redis"}` (0
/// closed, 1 half-open, 2 open), and each move to a state counted in
/// `http_cache_breaker_transitions_total{store="redis",state}` (see
/// [`crate::metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Redis answers; every operation goes to it.
    Closed,
    /// Redis failed repeatedly; operations skip it until the cool-down ends.
    Open,
    /// The cool-down ended; one operation probes Redis, the others skip it.
    HalfOpen,
}

/// Counters of a circuit breaker since the store was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerStats {
    /// Times the breaker opened (including re-opening after a failed probe).
    pub opened: u64,
    /// Times it closed again after a successful probe.
    pub closed: u64,
    /// Operations that skipped Redis because the breaker was open.
    pub rejected: u64,
    /// Operations that failed against Redis.
    pub failures: u64,
}

impl BreakerState {
    /// The gauge value and the `state` label.
    fn metric(self) -> (u8, &'static str) {
        match self {
            BreakerState::Closed => (0, "closed"),
            BreakerState::HalfOpen => (1, "half_open"),
            BreakerState::Open => (2, "open"),
        }
    }
}

enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

pub(crate) struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    cool_down: Duration,
    server: std::sync::Arc<str>,
    opened: AtomicU64,
    closed: AtomicU64,
    rejected: AtomicU64,
    failures: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cool_down: Duration, server: std::sync::Arc<str>) -> Self {
        metrics::breaker_state(BreakerState::Closed.metric().0);
        Breaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold: threshold.max(1),
            cool_down,
            server,
            opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves a valid state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A permit for an operation to go to Redis now, or `None` when the
    /// breaker skips Redis. The operation settles its permit with
    /// [`Permit::success`] or [`Permit::failure`]; a probe's permit dropped
    /// unsettled (its operation was cancelled) counts as a failed probe and
    /// opens the breaker again, so that a cancelled probe never leaves it
    /// half-open for good.
    pub(crate) fn allow(&self) -> Option<Permit<'_>> {
        let probe = self.admit()?;
        Some(Permit {
            breaker: self,
            probe,
            settled: false,
        })
    }

    /// Whether an operation may go (`Some`), and whether it is a probe.
    fn admit(&self) -> Option<bool> {
        let mut state = self.lock();
        let allowed = match &mut *state {
            State::Closed { .. } => Some(false),
            State::Open { until } => {
                if Instant::now() >= *until {
                    tracing::info!(server = %self.server, "redis circuit breaker half-open: probing");
                    *state = State::HalfOpen { probing: true };
                    moved(BreakerState::HalfOpen);
                    Some(true)
                } else {
                    None
                }
            }
            State::HalfOpen { probing } => (!std::mem::replace(probing, true)).then_some(true),
        };
        if allowed.is_none() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    fn success(&self) {
        let mut state = self.lock();
        match &mut *state {
            State::Closed { failures } => *failures = 0,
            State::HalfOpen { .. } | State::Open { .. } => {
                *state = State::Closed { failures: 0 };
                self.closed.fetch_add(1, Ordering::Relaxed);
                moved(BreakerState::Closed);
                tracing::info!(server = %self.server, "redis circuit breaker closed: redis answers again");
            }
        }
    }

    /// Counts a failure; returns whether the breaker opened.
    fn failure(&self) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let open = match &mut *state {
            State::Closed { failures } => {
                *failures += 1;
                *failures >= self.threshold
            }
            State::HalfOpen { .. } => true,
            State::Open { .. } => false,
        };
        if open {
            *state = State::Open {
                until: Instant::now() + self.cool_down,
            };
            self.opened.fetch_add(1, Ordering::Relaxed);
            moved(BreakerState::Open);
            tracing::warn!(
                server = %self.server,
                cool_down_ms = self.cool_down.as_millis() as u64,
                "redis circuit breaker open: skipping redis, serving from the origin"
            );
        }
        open
    }

    pub(crate) fn state(&self) -> BreakerState {
        match &*self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Sets the state gauge.
    pub(crate) fn record_metrics(&self) {
        metrics::breaker_state(self.state().metric().0);
    }

    pub(crate) fn stats(&self) -> BreakerStats {
        BreakerStats {
            opened: self.opened.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

/// Leave for one operation to go to Redis (see [`Breaker::allow`]).
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    /// Whether the operation probes a breaker that was open.
    probe: bool,
    settled: bool,
}

impl Permit<'_> {
    /// Redis answered.
    pub(crate) fn success(mut self) {
        self.settled = true;
        self.breaker.success();
    }

    /// Redis failed or did not answer in time; returns whether that opened
    /// the breaker.
    pub(crate) fn failure(mut self) -> bool {
        self.settled = true;
        self.breaker.failure()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            tracing::debug!(server = %self.breaker.server, "redis probe cancelled before redis answered");
            let _ = self.breaker.failure();
        }
    }
}

/// Counts a move to `state` and sets the gauge.
fn moved(state: BreakerState) {
    let (value, label) = state.metric();
    metrics::breaker_transition(label, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(3, Duration::from_secs(2), "test".into())
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_probes_after_the_cool_down() {
        let b = breaker();
        assert!(!b.allow().unwrap().failure());
        assert!(!b.allow().unwrap().failure());
        b.allow().unwrap().success();
        assert!(!b.allow().unwrap().failure());
        assert!(!b.allow().unwrap().failure());
        assert_eq!(b.state(), BreakerState::Closed, "a success resets the count");
        assert!(b.allow().unwrap().failure(), "the third failure in a row opens it");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.allow().is_none());
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert!(b.allow().is_none());
        tokio::time::advance(Duration::from_millis(1)).await;
        let probe = b.allow().expect("the first operation after the cool-down probes");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.allow().is_none(), "one probe at a time");
        assert!(probe.failure());
        assert_eq!(b.state(), BreakerState::Open, "a failed probe opens it again");
        tokio::time::advance(Duration::from_secs(2)).await;
        b.allow().unwrap().success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow().is_some());
        let stats = b.stats();
        assert_eq!((stats.opened, stats.closed, stats.rejected, stats.failures), (2, 1, 3, 6));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_opens_the_breaker_again() {
        let b = breaker();
        for _ in 0..3 {
            let _ = b.allow().unwrap().failure();
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        let probe = b.allow().expect("probes after the cool-down");
        assert!(b.allow().is_none());
        drop(probe);
        assert_eq!(b.state(), BreakerState::Open, "the dropped probe did not leave it half-open");
        tokio::time::advance(Duration::from_secs(2)).await;
        b.allow().expect("probes again after another cool-down").success();
        assert_eq!(b.state(), BreakerState::Closed);
        let ordinary = b.allow().unwrap();
        drop(ordinary);
        assert_eq!(b.state(), BreakerState::Closed, "a dropped ordinary operation changes nothing");
    }
}
