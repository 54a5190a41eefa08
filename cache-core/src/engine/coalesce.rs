//! In-process request coalescing: one origin fetch per key at a time.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::sync::watch;

use crate::CachedEntry;

/// How a fetch ended, as seen by the requests waiting on it.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Pending,
    /// The leader got a storable response.
    Entry(Arc<CachedEntry>),
    /// The response cannot be shared: waiters fetch their own.
    Uncacheable,
    /// The leader was dropped before finishing: a waiter takes over.
    Abandoned,
}

/// What a waiter got.
#[derive(Debug)]
pub(crate) enum Waited {
    Entry(Arc<CachedEntry>),
    Uncacheable,
    Abandoned,
    TimedOut,
}

type Flights = Mutex<HashMap<String, Arc<watch::Sender<Outcome>>>>;

#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    flights: Arc<Flights>,
}

pub(crate) enum Joined {
    Leader(Leader),
    Waiter(watch::Receiver<Outcome>),
}

fn lock(flights: &Flights) -> MutexGuard<'_, HashMap<String, Arc<watch::Sender<Outcome>>>> {
    // Every critical section is a single map operation: the map is valid
    // even if a holder panicked.
    flights.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Coalescer {
    /// Leads the fetch of `key`, or joins the one under way.
    pub(crate) fn join(&self, key: &str) -> Joined {
        let mut flights = lock(&self.flights);
        if let Some(tx) = flights.get(key) {
            return Joined::Waiter(tx.subscribe());
        }
        let tx = Arc::new(watch::Sender::new(Outcome::Pending));
        flights.insert(key.to_owned(), Arc::clone(&tx));
        Joined::Leader(Leader {
            flights: Arc::clone(&self.flights),
            key: key.to_owned(),
            tx,
            finished: false,
        })
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.flights).len()
    }
}

/// What a request that found nothing to answer with does about other
/// requests' fetches of its key ([`Coalescer::lead_or_wait`]).
#[derive(Debug)]
pub(crate) enum Turn<T> {
    /// No other request fetches the key: this one does, and hands its
    /// outcome to the requests that wait on it.
    Lead(Leader),
    /// The response the leader stored (it may vary on headers the caller
    /// does not share).
    Shared(Arc<CachedEntry>),
    /// What looking again found after a leader gave up.
    Found(T),
    /// Another request fetches the key, and the caller chose not to wait.
    Busy,
    /// Fetch without leading: the leader's response cannot be shared, or
    /// the wait is over.
    Alone,
}

impl Coalescer {
    /// Leads the fetch of `key`, or waits (when `wait`) for the request
    /// leading it: at most `timeout` in all, across leaders. A leader that
    /// gives up (cancelled, or its response overlapped an invalidation)
    /// hands over: the waiters `look_again` at the store, and what it finds
    /// (`Ok`) ends the wait; otherwise one of them leads the next attempt
    /// and the others wait for it in the time left. Returns the turn and
    /// what the last look that found nothing said (`Err`), if any.
    pub(crate) async fn lead_or_wait<T, M, Fut>(
        &self,
        key: &str,
        timeout: Duration,
        wait: bool,
        mut look_again: impl FnMut() -> Fut,
    ) -> (Turn<T>, Option<M>)
    where
        Fut: Future<Output = Result<T, M>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut looked = None;
        loop {
            let rx = match self.join(key) {
                Joined::Leader(leader) => return (Turn::Lead(leader), looked),
                Joined::Waiter(_) if !wait => return (Turn::Busy, looked),
                Joined::Waiter(rx) => rx,
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let turn = match self::wait(rx, left).await {
                Waited::Entry(entry) => Turn::Shared(entry),
                Waited::Uncacheable | Waited::TimedOut => Turn::Alone,
                Waited::Abandoned => match look_again().await {
                    Ok(found) => Turn::Found(found),
                    Err(nothing) if tokio::time::Instant::now() >= deadline => return (Turn::Alone, Some(nothing)),
                    Err(nothing) => {
                        looked = Some(nothing);
                        continue;
                    }
                },
            };
            return (turn, looked);
        }
    }
}

/// Waits at most `timeout` for the leader's outcome.
pub(crate) async fn wait(mut rx: watch::Receiver<Outcome>, timeout: Duration) -> Waited {
    let outcome = tokio::time::timeout(timeout, rx.wait_for(|o| !matches!(o, Outcome::Pending))).await;
    match outcome {
        Err(_) => Waited::TimedOut,
        Ok(Err(_)) => Waited::Abandoned,
        Ok(Ok(o)) => match &*o {
            Outcome::Entry(e) => Waited::Entry(Arc::clone(e)),
            Outcome::Uncacheable => Waited::Uncacheable,
            Outcome::Abandoned | Outcome::Pending => Waited::Abandoned,
        },
    }
}

/// The one request fetching a key. Dropping it unfinished (the request was
/// cancelled) wakes the waiters with [`Outcome::Abandoned`], and one of them
/// leads the next attempt.
#[derive(Debug)]
pub(crate) struct Leader {
    flights: Arc<Flights>,
    key: String,
    tx: Arc<watch::Sender<Outcome>>,
    finished: bool,
}

impl Leader {
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.release(outcome);
    }

    fn release(&mut self, outcome: Outcome) {
        self.finished = true;
        {
            let mut flights = lock(&self.flights);
            if flights.get(&self.key).is_some_and(|tx| Arc::ptr_eq(tx, &self.tx)) {
                flights.remove(&self.key);
            }
        }
        self.tx.send_replace(outcome);
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if !self.finished {
            self.release(Outcome::Abandoned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};

    fn entry() -> Arc<CachedEntry> {
        Arc::new(CachedEntry::new(
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from_static(b"x"),
            0,
            1000,
        ))
    }

    #[tokio::test]
    async fn waiters_get_the_leaders_entry() {
        let c = Coalescer::default();
        let Joined::Leader(leader) = c.join("k") else {
            panic!("first caller leads")
        };
        let Joined::Waiter(rx) = c.join("k") else {
            panic!("second caller waits")
        };
        let waiting = tokio::spawn(wait(rx, Duration::from_secs(5)));
        leader.finish(Outcome::Entry(entry()));
        assert!(matches!(waiting.await.unwrap(), Waited::Entry(_)));
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_dropped_leader_hands_over() {
        let c = Coalescer::default();
        let Joined::Leader(leader) = c.join("k") else {
            panic!("first caller leads")
        };
        let Joined::Waiter(rx) = c.join("k") else {
            panic!("second caller waits")
        };
        drop(leader);
        assert!(matches!(wait(rx, Duration::from_secs(5)).await, Waited::Abandoned));
        assert!(matches!(c.join("k"), Joined::Leader(_)), "the next caller leads");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_is_bounded() {
        let c = Coalescer::default();
        let Joined::Leader(_leader) = c.join("k") else {
            panic!("first caller leads")
        };
        let Joined::Waiter(rx) = c.join("k") else {
            panic!("second caller waits")
        };
        assert!(matches!(wait(rx, Duration::from_secs(1)).await, Waited::TimedOut));
    }
}
