//! Instructions per in-process hit, for callgrind: serves one stored 1 KiB
//! entry `N` times through `Cache::begin`, the hit path of every
//! adapter. Run it twice under callgrind, with `N` and `2N`: the difference
//! of the totals over `N` is the cost of one hit, without start-up.
//!
//! ```sh
//! cargo build --release --manifest-path bench/Cargo.toml --bin hit-instructions
//! for n in 10000 20000; do valgrind --tool=callgrind --callgrind-out-file=/dev/null bench/target/release/hit-instructions $n 2>&1 | grep Collected; done
//! ```
//!
//! With a Redis URL as second argument, the entry is served from the L1 of
//! a tiered store over that Redis instead of a moka store.

use std::convert::Infallible;

use bytes::Bytes;
use cache_core::{Cache, CachePolicy, MokaStore, RedisStore, RouteMatch, TieredStore, adapter::Begun};
use http::{Request, Response};
use http_body_util::Full;

fn request() -> Request<()> {
    Request::builder()
        .uri("/b/1024/hot")
        .header("x-tenant-id", "acme")
        .body(())
        .expect("a valid request")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args().nth(1).map_or(100_000, |s| s.parse().expect("a number of hits"));
    let cache = match std::env::args().nth(2) {
        Some(url) => {
            let l2 = RedisStore::builder(url).connect().await.expect("redis answers");
            let store = TieredStore::builder(l2).build().expect("a runtime");
            while !store.is_subscribed() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Cache::new(store)
        }
        None => Cache::new(MokaStore::new()),
    };
    let policy = CachePolicy::builder()
        .ttl("1h")
        .tenant_header("x-tenant-id")
        .build()
        .expect("a valid policy");
    let body = Bytes::from(vec![b'a'; 1024]);
    let stored = cache
        .serve(&policy, &RouteMatch::default(), request(), |_req| async {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "text/plain")
                    .header("cache-control", "public, max-age=3600")
                    .body(Full::new(body.clone()))
                    .expect("a valid response"),
            )
        })
        .await;
    assert!(stored.is_ok());
    let (parts, ()) = request().into_parts();
    for _ in 0..n {
        let Begun::Ready(hit) = cache.begin(&policy, &parts) else {
            panic!("every call is a hit");
        };
        std::hint::black_box(hit.response::<Full<Bytes>>());
    }
}
