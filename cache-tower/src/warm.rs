//! Cache warming: sending a list of requests through a cached service ahead
//! of traffic.

use std::{fmt, future::poll_fn};

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use tower_service::Service;

/// What happened to one warmed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warmed {
    /// Fetched from the origin and stored.
    Stored,
    /// Already in the cache (a hit).
    Cached,
    /// Answered but not stored (not cacheable, or the route is not cached),
    /// with its status.
    NotStored(u16),
    /// The service failed, or the response body did.
    Failed,
}

/// The tally of a [`warm`] run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WarmReport {
    /// Fetched and stored.
    pub stored: usize,
    /// Already cached.
    pub cached: usize,
    /// Answered, not stored.
    pub not_stored: usize,
    /// Failed.
    pub failed: usize,
}

impl WarmReport {
    /// Every request counted.
    pub fn total(&self) -> usize {
        self.stored + self.cached + self.not_stored + self.failed
    }

    fn add(&mut self, warmed: Warmed) {
        match warmed {
            Warmed::Stored => self.stored += 1,
            Warmed::Cached => self.cached += 1,
            Warmed::NotStored(_) => self.not_stored += 1,
            Warmed::Failed => self.failed += 1,
        }
    }
}

impl fmt::Display for WarmReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "warmed {} requests: {} stored, {} already cached, {} not stored, {} failed",
            self.total(),
            self.stored,
            self.cached,
            self.not_stored,
            self.failed
        )
    }
}

/// Sends `requests` through `service` (the cached service, so that misses
/// are fetched and stored the way traffic would store them), at most
/// `concurrency` at a time, reads each response to its end, and tallies
/// what the cache did from its `Cache-Status`. `progress` is called once per
/// request as it completes.
///
/// # Example
///
/// ```
/// # use std::convert::Infallible;
/// # use bytes::Bytes;
/// # use cache_core::{Cache, CachePolicy, MokaStore};
/// # use cache_tower::{CacheLayer, warm::warm};
/// # use http::{Request, Response};
/// # use http_body_util::Full;
/// # use tower::ServiceBuilder;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = Cache::new(MokaStore::new());
/// let service = ServiceBuilder::new()
///     .layer(CacheLayer::new(&cache, CachePolicy::with_ttl(std::time::Duration::from_secs(60))))
///     .service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hi")))) });
/// let requests = (1..=3).map(|id| Request::get(format!("/items/{id}")).body(()).unwrap());
/// let report = warm(service, requests, 2, |_| {}).await;
/// assert_eq!(report.stored, 3);
/// # }
/// ```
pub async fn warm<S, ReqB, ResB>(
    service: S,
    requests: impl IntoIterator<Item = Request<ReqB>>,
    concurrency: usize,
    mut progress: impl FnMut(Warmed),
) -> WarmReport
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    ResB: Body<Data = Bytes>,
{
    let mut report = WarmReport::default();
    let mut outcomes = stream::iter(requests)
        .map(|request| {
            let mut service = service.clone();
            async move {
                if poll_fn(|cx| service.poll_ready(cx)).await.is_err() {
                    return Warmed::Failed;
                }
                match service.call(request).await {
                    Ok(response) => outcome(response).await,
                    Err(_) => Warmed::Failed,
                }
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(warmed) = outcomes.next().await {
        report.add(warmed);
        progress(warmed);
    }
    report
}

async fn outcome<B: Body<Data = Bytes>>(response: Response<B>) -> Warmed {
    let status = response
        .headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let code = response.status().as_u16();
    // Read to the end: a stored entry is written before its body ends.
    if response.into_body().collect().await.is_err() {
        return Warmed::Failed;
    }
    let params: Vec<&str> = status.split(';').map(str::trim).collect();
    if params.contains(&"stored") {
        Warmed::Stored
    } else if params.contains(&"hit") {
        Warmed::Cached
    } else {
        Warmed::NotStored(code)
    }
}

#[cfg(test)]
mod tests {
    use std::{
        convert::Infallible,
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use cache_core::{Cache, CachePolicy, MokaStore, Policies};
    use http::StatusCode;
    use http_body_util::Full;
    use tower::ServiceBuilder;

    use super::*;
    use crate::CacheLayer;

    #[tokio::test]
    async fn warms_once_then_finds_everything_cached() {
        let cache = Cache::new(MokaStore::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (c, f, m) = (Arc::clone(&calls), Arc::clone(&in_flight), Arc::clone(&most));
        let policies = Policies::new(Some(CachePolicy::with_ttl(std::time::Duration::from_secs(60))));
        let service = ServiceBuilder::new()
            .layer(CacheLayer::new(&cache, policies))
            .service_fn(move |req: Request<()>| {
                let (c, f, m) = (Arc::clone(&c), Arc::clone(&f), Arc::clone(&m));
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    f.fetch_sub(1, Ordering::SeqCst);
                    let mut response = Response::new(Full::new(Bytes::from(req.uri().path().to_owned())));
                    if req.uri().path() == "/broken" {
                        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    Ok::<_, Infallible>(response)
                }
            });
        let requests = || {
            (1..=20)
                .map(|id| format!("/items/{id}"))
                .chain(["/broken".to_owned()])
                .map(|path| Request::get(path).body(()).unwrap())
        };
        let mut seen = 0;
        let first = warm(service.clone(), requests(), 4, |_| seen += 1).await;
        assert_eq!((first.stored, first.cached, first.not_stored, first.failed), (20, 0, 1, 0));
        assert_eq!(seen, 21, "progress for every request");
        assert!(most.load(Ordering::SeqCst) <= 4, "at most 4 at a time");
        let second = warm(service, requests(), 4, |_| {}).await;
        assert_eq!((second.stored, second.cached, second.not_stored), (0, 20, 1));
        assert_eq!(calls.load(Ordering::SeqCst), 22, "20 items once, /broken twice");
        assert_eq!(
            second.to_string(),
            "warmed 21 requests: 0 stored, 20 already cached, 1 not stored, 0 failed"
        );
    }
}
