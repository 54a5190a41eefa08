//! Memory per stored entry: stores `N` small JSON responses (300 bytes of
//! body, a dozen headers, two tags) in a moka store through
//! `Cache::serve`, then hits each of them twice (`--hits K`; so that the hit headers
//! are memoized, as on a busy entry), and prints the growth of the
//! process's resident set per entry next to what the store's weigher
//! counts. With `--capacity BYTES` the store is bounded and twice as many
//! entries as fit are stored: the resident set should then stay near the
//! capacity.
//!
//! `cargo run --release --manifest-path bench/Cargo.toml --bin entry-bytes -- 100000`

use std::convert::Infallible;

use bytes::Bytes;
use cache_core::{Cache, CachePolicy, MokaStore, RouteMatch};
use http::{Request, Response, header};
use http_body_util::Full;

/// A 300-byte JSON body.
fn body(i: u64) -> Bytes {
    let mut json = format!("{{\"id\":{i},\"name\":\"product {i}\",\"price_cents\":1999,\"tags\":[\"a\",\"b\"],\"description\":\"");
    while json.len() < 298 {
        json.push('x');
    }
    json.push_str("\"}");
    Bytes::from(json)
}

/// The response of a typical JSON API: a dozen headers.
fn response(i: u64) -> Response<Full<Bytes>> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::DATE, "Mon, 07 Dec 2026 21:00:00 GMT")
        .header(header::LAST_MODIFIED, "Mon, 07 Dec 2026 20:00:00 GMT")
        .header(header::ETAG, format!("\"v1-{i}\""))
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .header(header::VARY, "Accept-Encoding")
        .header(header::SERVER, "storefront")
        .header("x-request-id", format!("9f1c2e4a-{i:08x}-4b1d-8f00-1234567890ab"))
        .header(header::STRICT_TRANSPORT_SECURITY, "max-age=63072000")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::REFERRER_POLICY, "no-referrer")
        .body(Full::new(body(i)))
        .expect("a valid response")
}

fn request(i: u64) -> Request<()> {
    Request::get(format!("/api/v1/products/{i}")).body(()).expect("a valid request")
}

/// The resident set of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("statm's resident field");
    pages * 4096
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut n: u64 = 100_000;
    let mut capacity: Option<u64> = None;
    let mut hits = 2;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--capacity" => capacity = args.next().and_then(|c| c.parse().ok()),
            "--hits" => hits = args.next().and_then(|h| h.parse().ok()).expect("--hits K"),
            other => n = other.parse().expect("N: a number of entries"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let store = MokaStore::builder().max_capacity(capacity.unwrap_or(16 << 30)).build();
    let cache = Cache::new(store.clone());
    let policy = CachePolicy::builder()
        .ttl("1h")
        .tag("product:{id}")
        .tag("products")
        .build()
        .expect("a valid policy");
    let stored = if capacity.is_some() { 2 * n } else { n };
    // Warm up the allocator and the runtime with a few entries first.
    let serve = |i: u64| {
        let route = RouteMatch::new("/api/v1/products/{id}").param("id", i.to_string());
        let origin = move |_req: Request<()>| async move { Ok::<_, Infallible>(response(i)) };
        let (cache, policy) = (&cache, &policy);
        async move {
            let response = cache.serve(policy, &route, request(i), origin).await.expect("infallible");
            std::hint::black_box(response);
        }
    };
    runtime.block_on(async {
        for i in 0..1_000 {
            serve(u64::MAX - i).await;
        }
    });
    let before = rss();
    runtime.block_on(async {
        for i in 0..stored {
            serve(i).await;
        }
        // Hits (two by default), which memoize the hit headers.
        for _ in 0..hits {
            for i in 0..stored {
                serve(i).await;
            }
        }
    });
    store.run_pending_tasks();
    let after = rss();
    let entries = store.entry_count();
    let weighed = store.weighted_size();
    println!("entries held: {entries} (of {stored} stored)");
    println!("RSS growth: {} KiB, {} bytes per entry", (after - before) / 1024, (after - before) / entries.max(1));
    println!("weigher: {} KiB, {} bytes per entry", weighed / 1024, weighed / entries.max(1));
    if let Some(capacity) = capacity {
        println!(
            "RSS growth over capacity: {:.1} %",
            ((after - before) as f64 / capacity as f64 - 1.0) * 100.0
        );
    }
}
