//! The origin every contender serves: deterministic bytes per key, a call
//! counter, an optional delay.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, header};

/// The path pattern of the benchmarked route (axum and actix syntax alike).
pub const ROUTE: &str = "/b/{size}/{key}";
/// The route answering the origin's call count.
pub const CALLS: &str = "/__calls";
/// The TTL every cached contender uses, in seconds.
pub const TTL_SECS: u64 = 3600;
/// The content type of every body (text: tower-http-cache never stores `application/octet-stream`).
pub const CONTENT_TYPE: &str = "text/plain";
/// The `Cache-Control` the origin sends (for the caches that read it).
pub const CACHE_CONTROL: &str = "public, max-age=3600";
/// The body sizes the size workload uses, and that the ceiling holds ready.
pub const SIZES: [usize; 4] = [10, 1024, 64 * 1024, 256 * 1024];
/// The key of the single-key workloads.
pub const HOT_KEY: &str = "hot";

/// `size` bytes made of `key` and `|`, repeated: the same for the same key
/// and size, different across keys.
pub fn body(key: &str, size: usize) -> Bytes {
    let unit = format!("{key}|");
    Bytes::from(unit.bytes().cycle().take(size).collect::<Vec<u8>>())
}

/// The origin's state: how often it ran, how long each call waits.
#[derive(Debug, Default)]
pub struct Origin {
    calls: AtomicU64,
    delay: Duration,
}

impl Origin {
    /// An origin that waits `delay` in each call.
    pub fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicU64::new(0),
            delay,
        })
    }

    /// Serves one call: counts it, waits, and returns the body and its headers.
    pub async fn call(&self, size: usize, key: &str) -> (Bytes, [(header::HeaderName, HeaderValue); 2]) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        (body(key, size), headers())
    }

    /// How many calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// The headers of every origin response.
pub fn headers() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
        (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL)),
    ]
}

/// The ceiling's bodies: those of [`HOT_KEY`] at each of [`SIZES`], built
/// once. Other sizes are built per request.
#[derive(Debug, Clone)]
pub struct Ceiling {
    bodies: Arc<Vec<(usize, Bytes)>>,
}

impl Default for Ceiling {
    fn default() -> Self {
        Self {
            bodies: Arc::new(SIZES.iter().map(|&size| (size, body(HOT_KEY, size))).collect()),
        }
    }
}

impl Ceiling {
    /// The body of `size` bytes: from memory for the sizes held, whatever the key.
    pub fn body(&self, size: usize, key: &str) -> Bytes {
        match self.bodies.iter().find(|(s, _)| *s == size) {
            Some((_, body)) => body.clone(),
            None => body(key, size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_deterministic_and_sized() {
        assert_eq!(&body("ab", 7)[..], b"ab|ab|a");
        assert_eq!(body("k", 1024).len(), 1024);
        assert_eq!(Ceiling::default().body(10, "other"), body(HOT_KEY, 10));
    }
}
