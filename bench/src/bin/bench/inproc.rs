//! In-process measurements on cache-core with the moka store: hit latency
//! as the number of entries held grows, and the cost of invalidating one
//! tag among them.

use std::{
    convert::Infallible,
    hint::black_box,
    time::{Duration, Instant},
};

use bytes::Bytes;
use cache_core::{Cache, CachePolicy, MokaStore, RouteMatch, adapter::Begun};
use hdrhistogram::Histogram;
use http::{Request, Response, request::Parts};
use http_body_util::Full;

use crate::report::Record;

/// Entries per tag: `g:{group}` tags entries `100 × group .. 100 × group + 99`.
pub(crate) const PER_TAG: u64 = 100;
const SAMPLES: usize = 200_000;
const BODY: &[u8] = &[b'x'; 100];

struct Filled {
    runtime: tokio::runtime::Runtime,
    cache: Cache,
    policy: CachePolicy,
    held: u64,
}

impl Filled {
    fn new() -> anyhow::Result<Filled> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let cache = Cache::new(MokaStore::builder().max_capacity(16 << 30).build());
        let policy = CachePolicy::builder().ttl("1h").tag("g:{group}").build()?;
        Ok(Filled {
            runtime,
            cache,
            policy,
            held: 0,
        })
    }

    /// Stores entries until `n` are held.
    fn fill_to(&mut self, n: u64, progress: &dyn Fn(u64)) {
        let (cache, policy) = (&self.cache, &self.policy);
        let from = self.held;
        self.runtime.block_on(async {
            for i in from..n {
                let group = (i / PER_TAG).to_string();
                let route = RouteMatch::new("/g/{group}/{id}")
                    .param("group", group.clone())
                    .param("id", i.to_string());
                let origin = |_req: Request<()>| async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY)))) };
                let response = cache.serve(policy, &route, request(i), origin).await;
                debug_assert!(response.is_ok());
                if i % 10_000 == 0 {
                    progress(i);
                }
            }
        });
        self.held = n;
    }

    /// Hit latencies (ns) of `Cache::begin` on the entries `keys` name,
    /// cycling.
    fn hit_latency(&self, keys: &[u64]) -> anyhow::Result<Histogram<u64>> {
        let parts: Vec<Parts> = keys.iter().map(|&i| request(i).into_parts().0).collect();
        let mut histogram = Histogram::<u64>::new(3)?;
        for round in 0..SAMPLES {
            let parts = &parts[round % parts.len()];
            let start = Instant::now();
            let Begun::Ready(hit) = self.cache.begin(&self.policy, parts) else {
                anyhow::bail!("entry {} is not held", parts.uri);
            };
            black_box(hit.response::<Full<Bytes>>());
            let elapsed = start.elapsed();
            histogram.record(elapsed.as_nanos() as u64)?;
        }
        Ok(histogram)
    }

    /// Whether the request for `parts` is answered at once.
    fn is_held(&self, parts: &Parts) -> bool {
        matches!(self.cache.begin(&self.policy, parts), Begun::Ready(_))
    }
}

fn request(i: u64) -> Request<()> {
    Request::get(format!("/g/{}/{i}", i / PER_TAG)).body(()).expect("a valid request")
}

fn record(workload: &str, variant: &str, what: &str, histogram: &Histogram<u64>, note: String) -> Record {
    let us = |q: f64| Some(histogram.value_at_quantile(q) as f64 / 1e3);
    Record {
        workload: workload.to_owned(),
        variant: variant.to_owned(),
        contender: what.to_owned(),
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        note,
        ..Record::default()
    }
}

/// Hit latency with 10^3 .. `max` entries held (hot key, and keys drawn
/// at random among those held), then the invalidation of `tags` tags of
/// 100 entries each among `max`. Returns the growth and the tag records.
pub(crate) fn growth_and_tags(max: u64, tags: u64, progress: &dyn Fn(&str)) -> anyhow::Result<(Vec<Record>, Vec<Record>)> {
    let mut filled = Filled::new()?;
    let mut growth = Vec::new();
    let mut n = 1_000;
    while n <= max {
        let label = entries_label(n);
        filled.fill_to(n, &|i| progress(&format!("filling: {i} entries")));
        progress(&format!("hit latency with {label}"));
        let hot = filled.hit_latency(&[0])?;
        growth.push(record(
            "growth",
            &label,
            "hot key",
            &hot,
            format!("{SAMPLES} Cache::begin calls on one key"),
        ));
        let mut random = fastrand::Rng::with_seed(7);
        let keys: Vec<u64> = (0..10_000).map(|_| random.u64(0..n)).collect();
        let spread = filled.hit_latency(&keys)?;
        growth.push(record(
            "growth",
            &label,
            "random key",
            &spread,
            format!("{SAMPLES} Cache::begin calls over 10,000 random held keys"),
        ));
        n *= 10;
    }
    let tag_records = invalidate_tags(&filled, tags, progress)?;
    Ok((growth, tag_records))
}

fn invalidate_tags(filled: &Filled, count: u64, progress: &dyn Fn(&str)) -> anyhow::Result<Vec<Record>> {
    let groups = filled.held / PER_TAG;
    anyhow::ensure!(groups >= count, "{} entries make only {groups} tags", filled.held);
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut slowest = Duration::ZERO;
    let mut random = fastrand::Rng::with_seed(11);
    let mut chosen: Vec<u64> = Vec::new();
    while (chosen.len() as u64) < count {
        let group = random.u64(0..groups);
        if !chosen.contains(&group) {
            chosen.push(group);
        }
    }
    let invalidator = filled.cache.invalidator();
    for (i, group) in chosen.iter().enumerate() {
        progress(&format!("invalidating tag {}/{count}", i + 1));
        let start = Instant::now();
        let dropped = filled.runtime.block_on(invalidator.tag(format!("g:{group}")))?;
        let elapsed = start.elapsed();
        anyhow::ensure!(dropped == PER_TAG, "tag g:{group} dropped {dropped} entries, not {PER_TAG}");
        let (parts, ()) = request(group * PER_TAG).into_parts();
        anyhow::ensure!(
            !filled.is_held(&parts),
            "an entry of g:{group} is still served"
        );
        slowest = slowest.max(elapsed);
        histogram.record(elapsed.as_nanos() as u64)?;
    }
    let mut record = record(
        "tags",
        &entries_label(filled.held),
        "invalidate one tag of 100 entries",
        &histogram,
        format!("{count} tags; slowest {:.3} ms (in the p99.9 column)", slowest.as_secs_f64() * 1e3),
    );
    record.p999_us = Some(slowest.as_secs_f64() * 1e6);
    Ok(vec![record])
}

pub(crate) fn entries_label(n: u64) -> String {
    format!("10^{} entries", (n as f64).log10().round() as u32)
}
