//! A consistency harness under faults: several instances of one small app,
//! each behind its own [`TieredStore`] over a shared Redis, a seeded
//! read/write workload through real HTTP, faults injected at fixed times,
//! and a checker that finds the reads that returned a version older than a
//! write they should have seen.
//!
//! The parts:
//!
//! - [`Database`] and [`router`]: the origin, `GET /item/{id}` and
//!   `PUT /item/{id}` over a shared map of item versions. A GET reads the
//!   version first and answers after a random delay of up to 15 ms (a slow
//!   database, which widens the race between a fetch and an invalidation);
//!   a PUT bumps the version and answers after up to 5 ms. Bodies are
//!   `"{id}:{version}"`, optionally padded.
//! - [`Instance`]: the router served on a free port behind a cache on a
//!   [`TieredStore`] with the fast-test settings below, reaching Redis
//!   through its own [`FaultProxy`] when given one.
//! - [`Workload`]: concurrent clients issuing seeded GETs and PUTs,
//!   recording every [`Op`].
//! - [`Schedule`]: places faults in time and records when each began and
//!   ended, and which instances' links to Redis it cut ([`Fault`]).
//! - [`check`]: the verdicts, as a [`Report`].
//!
//! The random numbers come from [`Rng`], a SplitMix64 generator: `fastrand`
//! is not a dependency of this crate.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{Path, State},
    routing::get,
};
use cache_axum::{Cache, CacheLayer, CachePolicy};
use cache_core::{RedisStore, TieredStore, store::RedisStoreBuilder};
use tokio::task::JoinHandle;

use crate::fault_proxy::FaultProxy;

/// Redis response timeout of every instance.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(200);
/// Circuit breaker cool-down of every instance.
pub const COOL_DOWN: Duration = Duration::from_millis(300);
/// Consecutive failures that open an instance's circuit breaker.
pub const FAILURE_THRESHOLD: u32 = 3;
/// How long an instance's L1 serves once its subscription is lost.
pub const L1_GRACE: Duration = Duration::from_millis(300);
/// How often an instance checks its subscription.
pub const KEEPALIVE: Duration = Duration::from_millis(200);
/// The declared bound on cross-instance staleness: a read that starts
/// later than this after a write's effective end must see it (L1 grace,
/// keepalive, timeouts and breaker cool-down, with room to spare).
pub const BOUND: Duration = Duration::from_millis(1500);
/// The key prefix of every instance's store.
pub const PREFIX: &str = "consistency:";

/// A small seeded random number generator (SplitMix64): the same seed
/// gives the same sequence on every run.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "an empty range");
        ((u128::from(self.u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with a probability of `percent` in 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A generator seeded from this one, for another task.
    pub fn fork(&mut self) -> Rng {
        Rng::with_seed(self.u64())
    }
}

/// The origin's "database": the version of each item, shared by every
/// instance, with the random delays of a slow database.
#[derive(Debug, Clone)]
pub struct Database {
    versions: Arc<Mutex<HashMap<u32, u64>>>,
    rng: Arc<Mutex<Rng>>,
    padding: usize,
}

impl Database {
    /// An empty database (every item at version 0) whose delays are drawn
    /// from `seed`, and whose bodies are padded with `padding` bytes (that
    /// do not compress) after the version.
    pub fn new(seed: u64, padding: usize) -> Self {
        Database {
            versions: Arc::default(),
            rng: Arc::new(Mutex::new(Rng::with_seed(seed))),
            padding,
        }
    }

    /// The current version of item `id`.
    pub fn version(&self, id: u32) -> u64 {
        *self.versions.lock().unwrap_or_else(PoisonError::into_inner).get(&id).unwrap_or(&0)
    }

    fn bump(&self, id: u32) -> u64 {
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        let version = versions.entry(id).or_insert(0);
        *version += 1;
        *version
    }

    /// A random delay of up to `max_ms`.
    fn delay(&self, max_ms: u64) -> Duration {
        let micros = self.rng.lock().unwrap_or_else(PoisonError::into_inner).below(max_ms * 1000 + 1);
        Duration::from_micros(micros)
    }

    fn body(&self, id: u32, version: u64) -> String {
        let mut body = format!("{id}:{version}");
        if self.padding > 0 {
            const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut rng = Rng::with_seed((u64::from(id) << 40) ^ version);
            body.push(' ');
            body.extend((0..self.padding).map(|_| char::from(ALPHABET[(rng.u64() & 63) as usize])));
        }
        body
    }
}

/// `GET /item/{id}`: reads the version first, then waits (a slow
/// database), then answers.
async fn get_item(State(db): State<Database>, Path(id): Path<u32>) -> String {
    let version = db.version(id);
    tokio::time::sleep(db.delay(15)).await;
    db.body(id, version)
}

/// `PUT /item/{id}`: bumps the version, waits, answers with the new one.
async fn put_item(State(db): State<Database>, Path(id): Path<u32>) -> String {
    let version = db.bump(id);
    tokio::time::sleep(db.delay(5)).await;
    db.body(id, version)
}

/// The origin app behind `cache`: `GET` and `PUT /item/{id}`, cached for
/// 60 s with the tag `item:{id}` (a successful PUT invalidates it).
pub fn router(db: Database, cache: &Cache) -> Router {
    let policy = CachePolicy::builder().ttl("60s").tag("item:{id}").build().expect("a valid policy");
    Router::new()
        .route("/item/{id}", get(get_item).put(put_item).layer(CacheLayer::new(cache, policy)))
        .with_state(db)
}

/// `builder` with the fast-test settings: response timeout, breaker
/// threshold and cool-down, and [`PREFIX`].
pub fn configure(builder: RedisStoreBuilder) -> RedisStoreBuilder {
    builder
        .response_timeout(RESPONSE_TIMEOUT)
        .cool_down(COOL_DOWN)
        .failure_threshold(FAILURE_THRESHOLD)
        .prefix(PREFIX)
}

/// One instance of the app: its own cache on its own tiered store, served
/// on a free loopback port. The server stops when it is dropped.
#[derive(Debug)]
pub struct Instance {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The instance's store.
    pub store: TieredStore,
    /// The proxy between the instance and Redis, if any.
    pub proxy: Option<FaultProxy>,
    server: JoinHandle<()>,
}

impl Instance {
    /// Serves [`router`] over `db` behind a cache on a [`TieredStore`] over
    /// `l2` (with [`L1_GRACE`] and [`KEEPALIVE`]), once its invalidation
    /// subscription is up. `proxy` is the one `l2` connects through, kept
    /// for the faults.
    ///
    /// # Panics
    ///
    /// When the subscription is not up within ten seconds.
    pub async fn start(l2: RedisStore, proxy: Option<FaultProxy>, db: &Database) -> Self {
        let store = TieredStore::builder(l2)
            .l1_grace(L1_GRACE)
            .keepalive(KEEPALIVE)
            .build()
            .expect("a runtime");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !store.is_subscribed() {
            assert!(Instant::now() < deadline, "the invalidation subscription is not up after 10 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let cache = Cache::new(store.clone());
        let app = router(db.clone(), &cache);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
        let base = format!("http://{}", listener.local_addr().expect("a bound listener has an address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Instance {
            base,
            store,
            proxy,
            server,
        }
    }

    /// The proxy of this instance.
    ///
    /// # Panics
    ///
    /// When the instance has none.
    pub fn proxy(&self) -> &FaultProxy {
        self.proxy.as_ref().expect("the instance reaches Redis through a proxy")
    }

    /// One line on the instance's store: subscription, kept invalidations,
    /// breaker, L1 resets.
    pub fn describe(&self) -> String {
        let l2 = self.store.l2();
        format!(
            "subscribed {}, {} invalidations pending, breaker {:?} (opened {} times), L1 dropped {} times",
            self.store.is_subscribed(),
            l2.pending_invalidations(),
            l2.breaker_state(),
            l2.breaker_stats().opened,
            self.store.l1_resets(),
        )
    }

    /// Whether the store is back to normal: subscribed, nothing pending.
    pub fn is_settled(&self) -> bool {
        self.store.is_subscribed() && self.store.l2().pending_invalidations() == 0
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Waits (up to `limit`) until every instance [`is_settled`](Instance::is_settled);
/// returns how long that took, or `None`.
pub async fn settle(instances: &[Instance], limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while !instances.iter().all(Instance::is_settled) {
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Some(started.elapsed())
}

/// One look at the stores of the instances.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// Per instance: subscribed, invalidations pending, breaker open (or
    /// half open).
    pub states: Vec<(bool, usize, bool)>,
}

/// Samples the stores of the instances every `period` while a scenario
/// runs: how long each one bypassed Redis to replay invalidations, how
/// long it had no subscription.
#[derive(Debug)]
pub struct Monitor {
    stop: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<Vec<Sample>>,
}

impl Monitor {
    /// Starts sampling `instances`; prints each sample when `CONSISTENCY_TRACE`
    /// is set, with times since `t0`.
    pub fn start(instances: &[Instance], t0: Instant, period: Duration) -> Self {
        let stores: Vec<TieredStore> = instances.iter().map(|i| i.store.clone()).collect();
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let trace = std::env::var_os("CONSISTENCY_TRACE").is_some();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut ticks = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => return samples,
                }
                let states: Vec<(bool, usize, bool)> = stores
                    .iter()
                    .map(|s| {
                        let open = s.l2().breaker_state() != cache_core::store::BreakerState::Closed;
                        (s.is_subscribed(), s.l2().pending_invalidations(), open)
                    })
                    .collect();
                let at = Instant::now();
                if trace {
                    let line: Vec<String> = states
                        .iter()
                        .enumerate()
                        .map(|(i, (sub, pending, open))| {
                            format!("#{i} {}{}{pending:>4}", if *sub { "S" } else { "-" }, if *open { "O" } else { "-" })
                        })
                        .collect();
                    println!("  [{:>6.3} s] {}", secs(at, t0), line.join("  "));
                }
                samples.push(Sample { at, states });
            }
        });
        Monitor { stop, task }
    }

    /// Stops sampling; one line per instance: how long it had invalidations
    /// pending (so bypassed Redis) in all and at the longest, and how long
    /// it had no subscription.
    pub async fn stop(self) -> Vec<String> {
        let _ = self.stop.send(true);
        let samples = self.task.await.unwrap_or_default();
        let instances = samples.first().map_or(0, |s| s.states.len());
        (0..instances)
            .map(|i| {
                let (mut pending_total, mut pending_longest, mut run, mut unsubscribed, mut most) = (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO, 0);
                for pair in samples.windows(2) {
                    let step = pair[1].at.duration_since(pair[0].at);
                    let (subscribed, pending, _) = pair[0].states[i];
                    most = most.max(pending);
                    if pending > 0 {
                        pending_total += step;
                        run += step;
                        pending_longest = pending_longest.max(run);
                    } else {
                        run = Duration::ZERO;
                    }
                    if !subscribed {
                        unsubscribed += step;
                    }
                }
                format!(
                    "replaying #{i}      : invalidations pending (Redis bypassed) {:.1} s in all, {:.1} s at the longest, up to {most}; unsubscribed {:.1} s",
                    pending_total.as_secs_f64(),
                    pending_longest.as_secs_f64(),
                    unsubscribed.as_secs_f64()
                )
            })
            .collect()
    }
}

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A read.
    Get,
    /// A write.
    Put,
}

/// One request the workload made, as the client saw it.
#[derive(Debug, Clone)]
pub struct Op {
    /// The instance it went to.
    pub instance: usize,
    /// The item.
    pub item: u32,
    /// GET or PUT.
    pub kind: Kind,
    /// When the client began sending it.
    pub start: Instant,
    /// When the client had the whole response.
    pub end: Instant,
    /// The version in the body (the new one, for a PUT).
    pub version: Option<u64>,
    /// The item named in the body, which must be `item`.
    pub body_item: Option<u32>,
    /// Status 200 (and a body read).
    pub ok: bool,
    /// The `Cache-Status` header, or the client's error.
    pub status: String,
}

impl Op {
    /// A one-line description, with times in seconds since `t0`.
    pub fn describe(&self, t0: Instant) -> String {
        format!(
            "{:?} item {} on #{} [{:.3} s – {:.3} s] -> {} ({})",
            self.kind,
            self.item,
            self.instance,
            secs(self.start, t0),
            secs(self.end, t0),
            self.version.map_or_else(|| "no version".to_owned(), |v| format!("v{v}")),
            self.status,
        )
    }

    /// Whether it was answered from the cache (`Cache-Status: ...; hit`).
    pub fn is_hit(&self) -> bool {
        self.status.contains("; hit")
    }
}

/// Seconds from `t0` to `at` (negative before).
pub fn secs(at: Instant, t0: Instant) -> f64 {
    match at.checked_duration_since(t0) {
        Some(d) => d.as_secs_f64(),
        None => -t0.duration_since(at).as_secs_f64(),
    }
}

/// `"{id}:{version}"`, with or without padding after a space.
fn parse_body(body: &str) -> Option<(u32, u64)> {
    let head = body.split(' ').next()?;
    let (id, version) = head.split_once(':')?;
    Some((id.parse().ok()?, version.parse().ok()?))
}

/// Sends one request and records it.
async fn request(client: &reqwest::Client, base: &str, instance: usize, item: u32, kind: Kind) -> Op {
    let url = format!("{base}/item/{item}");
    let start = Instant::now();
    let sent = match kind {
        Kind::Get => client.get(&url).send().await,
        Kind::Put => client.put(&url).send().await,
    };
    let (ok, status, parsed) = match sent {
        Ok(response) => {
            let status_code = response.status();
            let cache_status = response
                .headers()
                .get("cache-status")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            match response.text().await {
                Ok(body) => (status_code == 200, format!("{status_code} {cache_status}"), parse_body(&body)),
                Err(err) => (false, format!("{status_code} body: {err}"), None),
            }
        }
        Err(err) => (false, format!("error: {err}"), None),
    };
    Op {
        instance,
        item,
        kind,
        start,
        end: Instant::now(),
        version: parsed.map(|(_, v)| v),
        body_item: parsed.map(|(id, _)| id),
        ok,
        status,
    }
}

/// A seeded workload: `clients` tasks, each looping for `duration`: pick
/// an instance and an item, GET or PUT (`put_percent` in 100), record the
/// [`Op`], pause 0–2 ms (so that the clients do not saturate the two
/// cores the tests run on).
#[derive(Debug, Clone)]
pub struct Workload {
    /// Seeds every client's choices.
    pub seed: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Items `0..items`.
    pub items: u32,
    /// Percentage of PUTs.
    pub put_percent: u64,
    /// How long the clients run.
    pub duration: Duration,
}

impl Workload {
    /// A client with the harness's 5 s timeout.
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .expect("a plain HTTP client builds")
    }

    /// Runs the clients against the instances at `bases` until `duration`
    /// has passed since `t0`; returns every operation, in no order.
    pub async fn run(&self, bases: &[String], t0: Instant) -> Vec<Op> {
        let client = Self::client();
        let deadline = t0 + self.duration;
        let mut seeds = Rng::with_seed(self.seed);
        let tasks: Vec<_> = (0..self.clients)
            .map(|_| {
                let (client, bases, mut rng, this) = (client.clone(), bases.to_vec(), seeds.fork(), self.clone());
                tokio::spawn(async move {
                    let mut ops = Vec::new();
                    while Instant::now() < deadline {
                        let instance = rng.below(bases.len() as u64) as usize;
                        let item = rng.below(u64::from(this.items)) as u32;
                        let kind = if rng.percent(this.put_percent) { Kind::Put } else { Kind::Get };
                        ops.push(request(&client, &bases[instance], instance, item, kind).await);
                        tokio::time::sleep(Duration::from_micros(rng.below(2000))).await;
                    }
                    ops
                })
            })
            .collect();
        let mut ops = Vec::new();
        for task in tasks {
            ops.extend(task.await.expect("a client task does not panic"));
        }
        ops
    }

    /// GETs every item once on every instance, a few at a time.
    pub async fn read_all(&self, bases: &[String]) -> Vec<Op> {
        let client = Self::client();
        let mut ops = Vec::new();
        for item in 0..self.items {
            let reads = bases
                .iter()
                .enumerate()
                .map(|(instance, base)| request(&client, base, instance, item, Kind::Get));
            ops.extend(futures_util::future::join_all(reads).await);
        }
        ops
    }
}

/// A fault the scheduler injected.
#[derive(Debug, Clone)]
pub struct Fault {
    /// What it was.
    pub what: String,
    /// The instances whose link to Redis it cut (every one, for a fault of
    /// Redis itself).
    pub cuts: Vec<usize>,
    /// When it began.
    pub start: Instant,
    /// When it ended (Redis answers again, the link is whole again).
    pub end: Instant,
}

/// Places faults in time, prints them, and records them.
#[derive(Debug)]
pub struct Schedule {
    t0: Instant,
    faults: Mutex<Vec<Fault>>,
}

impl Schedule {
    /// A schedule whose times count from `t0`.
    pub fn new(t0: Instant) -> Self {
        Schedule {
            t0,
            faults: Mutex::default(),
        }
    }

    /// Sleeps until `secs` after `t0`.
    pub async fn at(&self, secs: f64) {
        tokio::time::sleep_until((self.t0 + Duration::from_secs_f64(secs)).into()).await;
    }

    /// Prints that `what` begins, and returns the time.
    pub fn begin(&self, what: &str) -> Instant {
        let now = Instant::now();
        println!("  [{:>6.3} s] fault begins: {what}", secs(now, self.t0));
        now
    }

    /// Prints that `what`, begun at `start`, ended now, and records it as
    /// cutting `cuts` from Redis.
    pub fn end(&self, what: &str, cuts: &[usize], start: Instant) {
        let now = Instant::now();
        println!("  [{:>6.3} s] fault ends:   {what}", secs(now, self.t0));
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).push(Fault {
            what: what.to_owned(),
            cuts: cuts.to_vec(),
            start,
            end: now,
        });
    }

    /// The faults recorded so far.
    pub fn faults(&self) -> Vec<Fault> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A read that returned a version older than a write it should have seen.
#[derive(Debug, Clone)]
pub struct StaleRead {
    /// The read.
    pub get: Op,
    /// The write.
    pub put: Op,
    /// The write's effective end.
    pub effective_end: Instant,
    /// How long after the effective end the read began (zero when before).
    pub after: Duration,
}

impl StaleRead {
    fn describe(&self, t0: Instant) -> String {
        format!(
            "{}\n        after {}\n        effective end {:.3} s, read began {} ms after it",
            self.get.describe(t0),
            self.put.describe(t0),
            secs(self.effective_end, t0),
            self.after.as_millis(),
        )
    }
}

/// The verdicts on one scenario.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// When the scenario's clock started.
    pub t0: Option<Instant>,
    /// GETs made.
    pub gets: usize,
    /// PUTs made.
    pub puts: usize,
    /// GETs answered from the cache.
    pub hits: usize,
    /// The faults injected.
    pub faults: Vec<Fault>,
    /// GETs older than a PUT of the same instance that completed before
    /// they began.
    pub same_instance_stale: Vec<StaleRead>,
    /// GETs older than a PUT of another instance whose effective end was
    /// more than [`BOUND`] before they began.
    pub cross_instance_stale: Vec<StaleRead>,
    /// How long after the effective end of the earliest PUT each GET
    /// older than a completed PUT began (any instance).
    pub staleness: Vec<Duration>,
    /// Requests that did not get a 200.
    pub failed: Vec<Op>,
    /// GETs whose body named another item, or none.
    pub wrong_item: Vec<Op>,
    /// The instances still bypassing Redis (invalidations pending, or no
    /// subscription) long after the workload and the faults ended, each
    /// with its state: the invalidations they keep never reach the others.
    pub not_recovered: Vec<String>,
    /// More lines to print (store states, Redis counters).
    pub notes: Vec<String>,
}

/// The effective end of a PUT: its end, or the end of the last fault that
/// cut its instance from Redis while it ran (its invalidation is then kept
/// and applied when Redis answers again).
pub fn effective_end(put: &Op, faults: &[Fault]) -> Instant {
    faults
        .iter()
        .filter(|f| f.cuts.contains(&put.instance) && f.start <= put.end && f.end >= put.start)
        .map(|f| f.end)
        .fold(put.end, Instant::max)
}

/// Judges the operations of a scenario that started at `t0`, under
/// `faults`.
pub fn check(scenario: &str, t0: Instant, ops: &[Op], faults: &[Fault]) -> Report {
    let mut report = Report {
        scenario: scenario.to_owned(),
        t0: Some(t0),
        faults: faults.to_vec(),
        ..Report::default()
    };
    // The completed writes of each item, with their effective ends.
    let mut puts: HashMap<u32, Vec<(&Op, u64, Instant)>> = HashMap::new();
    for op in ops {
        match op.kind {
            Kind::Get => report.gets += 1,
            Kind::Put => report.puts += 1,
        }
        if !op.ok {
            report.failed.push(op.clone());
            continue;
        }
        if op.body_item != Some(op.item) || op.version.is_none() {
            report.wrong_item.push(op.clone());
            continue;
        }
        if let (Kind::Put, Some(version)) = (op.kind, op.version) {
            puts.entry(op.item).or_default().push((op, version, effective_end(op, faults)));
        }
    }
    for list in puts.values_mut() {
        list.sort_by_key(|(op, _, _)| op.end);
    }
    let stale = |get: &Op, put: &Op, effective_end: Instant| StaleRead {
        get: get.clone(),
        put: put.clone(),
        effective_end,
        after: get.start.saturating_duration_since(effective_end),
    };
    for get in ops
        .iter()
        .filter(|op| op.kind == Kind::Get && op.ok && op.body_item == Some(op.item))
    {
        report.hits += usize::from(get.is_hit());
        let Some(version) = get.version else { continue };
        let Some(list) = puts.get(&get.item) else { continue };
        // The writes completed before the read began, that it missed.
        let missed = list
            .iter()
            .take_while(|(put, _, _)| put.end < get.start)
            .filter(|(_, new, _)| *new > version);
        let mut same: Option<&(&Op, u64, Instant)> = None;
        let mut cross: Option<&(&Op, u64, Instant)> = None;
        let mut earliest: Option<Instant> = None;
        for missed in missed {
            let (put, _, effective) = missed;
            earliest = Some(earliest.map_or(*effective, |e| e.min(*effective)));
            if put.instance == get.instance {
                same = same.or(Some(missed));
            } else if get.start > *effective + BOUND && cross.is_none_or(|(_, _, e)| effective < e) {
                cross = Some(missed);
            }
        }
        if let Some(earliest) = earliest {
            report.staleness.push(get.start.saturating_duration_since(earliest));
        }
        if let Some((put, _, effective)) = same {
            report.same_instance_stale.push(stale(get, put, *effective));
        }
        if let Some((put, _, effective)) = cross {
            report.cross_instance_stale.push(stale(get, put, *effective));
        }
    }
    report.staleness.sort();
    if let Some(dir) = std::env::var_os("CONSISTENCY_DUMP") {
        dump(&std::path::PathBuf::from(dir), scenario, t0, ops, faults);
    }
    report
}

/// Writes the operations and faults of a scenario to
/// `{dir}/{scenario}.tsv`, one per line, times in seconds since `t0`: for a
/// closer look at a failing run (`CONSISTENCY_DUMP=dir`).
fn dump(dir: &std::path::Path, scenario: &str, t0: Instant, ops: &[Op], faults: &[Fault]) {
    use std::fmt::Write as _;
    let mut out = String::from("# fault\tstart\tend\tcuts\twhat\n# op\tinstance\titem\tkind\tstart\tend\tversion\tbody_item\tok\tstatus\n");
    for f in faults {
        let _ = writeln!(
            out,
            "fault\t{:.6}\t{:.6}\t{:?}\t{}",
            secs(f.start, t0),
            secs(f.end, t0),
            f.cuts,
            f.what
        );
    }
    let mut sorted: Vec<&Op> = ops.iter().collect();
    sorted.sort_by_key(|op| op.start);
    for op in sorted {
        let _ = writeln!(
            out,
            "op\t{}\t{}\t{:?}\t{:.6}\t{:.6}\t{}\t{}\t{}\t{}",
            op.instance,
            op.item,
            op.kind,
            secs(op.start, t0),
            secs(op.end, t0),
            op.version.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX)),
            op.body_item.map_or(-1, i64::from),
            op.ok,
            op.status,
        );
    }
    let path = dir.join(format!("{scenario}.tsv"));
    if let Err(err) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, out)) {
        println!("cannot write {}: {err}", path.display());
    }
}

impl Report {
    /// The largest staleness seen (zero when none).
    pub fn largest_staleness(&self) -> Duration {
        self.staleness.last().copied().unwrap_or_default()
    }

    /// The median staleness seen (zero when none).
    pub fn median_staleness(&self) -> Duration {
        self.staleness.get(self.staleness.len() / 2).copied().unwrap_or_default()
    }

    /// Adds a line to the summary.
    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// Whether every verdict is a zero.
    pub fn is_consistent(&self) -> bool {
        self.same_instance_stale.is_empty()
            && self.cross_instance_stale.is_empty()
            && self.failed.is_empty()
            && self.wrong_item.is_empty()
            && self.not_recovered.is_empty()
    }

    /// Panics with the summary unless [`is_consistent`](Self::is_consistent).
    ///
    /// # Panics
    ///
    /// On any stale read beyond the contract, failed request, wrong body or
    /// instance that did not recover.
    pub fn assert_consistent(&self) {
        assert!(self.is_consistent(), "the consistency contract was broken:\n{self}");
    }
}

/// At most this many examples of each violation are printed.
const EXAMPLES: usize = 10;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t0 = self.t0.unwrap_or_else(Instant::now);
        let ms = |d: Duration| d.as_millis();
        writeln!(f, "=== consistency: {} ===", self.scenario)?;
        let hit_rate = if self.gets == 0 {
            0.0
        } else {
            100.0 * self.hits as f64 / self.gets as f64
        };
        writeln!(
            f,
            "operations        : {} (GET {}, PUT {}); {:.0}% of GETs were cache hits",
            self.gets + self.puts,
            self.gets,
            self.puts,
            hit_rate
        )?;
        writeln!(f, "faults injected   : {}", self.faults.len())?;
        for fault in &self.faults {
            writeln!(
                f,
                "  [{:>6.3} s – {:>6.3} s] {} (cuts instances {:?})",
                secs(fault.start, t0),
                secs(fault.end, t0),
                fault.what,
                fault.cuts
            )?;
        }
        writeln!(
            f,
            "stale reads       : same-instance {}, cross-instance beyond {} ms {}",
            self.same_instance_stale.len(),
            ms(BOUND),
            self.cross_instance_stale.len()
        )?;
        writeln!(
            f,
            "staleness seen    : {} GETs older than a completed PUT; largest {} ms, p50 {} ms after the PUT's effective end",
            self.staleness.len(),
            ms(self.largest_staleness()),
            ms(self.median_staleness())
        )?;
        writeln!(f, "failed requests   : {}", self.failed.len())?;
        writeln!(f, "wrong-item bodies : {}", self.wrong_item.len())?;
        writeln!(f, "not recovered     : {}", self.not_recovered.len())?;
        for line in &self.not_recovered {
            writeln!(f, "  {line}")?;
        }
        for note in &self.notes {
            writeln!(f, "{note}")?;
        }
        let examples = [
            ("same-instance stale reads", &self.same_instance_stale),
            ("cross-instance stale reads", &self.cross_instance_stale),
        ];
        for (what, reads) in examples {
            if !reads.is_empty() {
                writeln!(f, "{what} (first {}):", EXAMPLES.min(reads.len()))?;
                for read in reads.iter().take(EXAMPLES) {
                    writeln!(f, "  - {}", read.describe(t0))?;
                }
            }
        }
        for (what, ops) in [("failed requests", &self.failed), ("wrong-item bodies", &self.wrong_item)] {
            if !ops.is_empty() {
                writeln!(f, "{what} (first {}):", EXAMPLES.min(ops.len()))?;
                for op in ops.iter().take(EXAMPLES) {
                    writeln!(f, "  - {}", op.describe(t0))?;
                }
            }
        }
        Ok(())
    }
}
