//! Consistency under faults: three instances of an app, each with its own
//! tiered store (L1 in process, L2 on a shared Redis), a seeded workload of
//! GETs and PUTs through real HTTP, and faults injected at fixed times (see
//! [`cache_tests::consistency`]). Each scenario checks the contract the
//! `RedisStore` and `TieredStore` docs state:
//!
//! - no read on an instance misses a write that instance completed before
//!   the read began;
//! - no read on an instance misses a write another instance completed more
//!   than [`BOUND`] before it began, counting from the end of any fault that
//!   cut the writer from Redis while it wrote (its invalidation is kept and
//!   applied when Redis answers again);
//! - no request fails, and no body is another item's;
//! - after the workload, every instance is back to normal (subscribed,
//!   no invalidation pending) within 10 s: its kept invalidations were
//!   applied once Redis answered again.
//!
//! A last test, [`a_late_store_never_hides_a_newer_one`], is the smallest
//! case behind stale reads the `server` scenario finds.
//!
//! Each scenario prints a summary block (run with `--nocapture`). They run
//! one at a time, so that they do not load the machine together.

use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use cache_core::RedisStore;
use cache_tests::{
    consistency::{BOUND, Database, Instance, Monitor, Op, Report, Schedule, Workload, check, configure, settle},
    fault_proxy::FaultProxy,
    redis_server::{RedisCluster, RedisServer, free_port},
};

/// Held by each scenario for its whole run.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Seeds every workload and the origin's delays.
const SEED: u64 = 0x00C0_FFEE_5EED;

/// Every instance.
const ALL: &[usize] = &[0, 1, 2];

/// The workload of the scenarios on few hot items.
fn hot_workload(duration: Duration) -> Workload {
    Workload {
        seed: SEED,
        clients: 12,
        items: 8,
        put_percent: 15,
        duration,
    }
}

/// Logs through `tracing` when `RUST_LOG` asks for it.
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn address(server: &RedisServer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.port()))
}

/// Three instances, each reaching `upstream` through its own proxy.
async fn instances_behind_proxies(upstream: SocketAddr, db: &Database) -> Vec<Instance> {
    let mut instances = Vec::new();
    for _ in 0..3 {
        let proxy = FaultProxy::start(upstream).await;
        let l2 = configure(RedisStore::builder(proxy.url())).connect().await.expect("connects");
        instances.push(Instance::start(l2, Some(proxy), db).await);
    }
    instances
}

fn bases(instances: &[Instance]) -> Vec<String> {
    instances.iter().map(|i| i.base.clone()).collect()
}

/// Kills `server` (SIGKILL) off the runtime's threads.
async fn kill(server: RedisServer) {
    tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.kill();
    })
    .await
    .expect("kills");
}

/// Starts a server on `port` with `args`, off the runtime's threads;
/// returns once it accepts connections.
async fn start_on(port: u16, args: &[String]) -> RedisServer {
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || RedisServer::start_on(port, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .expect("starts")
}

/// Sends `cmd` to the Redis at `url` on a connection of its own.
async fn query<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let mut conn = redis::Client::open(url)?.get_multiplexed_async_connection().await?;
    cmd.query_async(&mut conn).await
}

/// The number of keys of the Redis at `url`, once it has loaded its data
/// (it answers `LOADING` until then); 0 after two seconds of trying.
async fn db_size(url: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match query::<u64>(url, &redis::cmd("DBSIZE")).await {
            Ok(n) => return n,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) => return 0,
        }
    }
}

/// A field of `INFO` at `url`.
async fn info_field(url: &str, section: &str, field: &str) -> Option<String> {
    let info: String = query(url, redis::cmd("INFO").arg(section)).await.ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// After the workload: waits until the stores recover, then reads every
/// item on every instance more than [`BOUND`] after the last write and the
/// last fault (those reads must all see the last version), and judges
/// everything.
async fn finish(
    name: &str,
    t0: Instant,
    mut ops: Vec<Op>,
    monitor: Monitor,
    schedule: &Schedule,
    workload: &Workload,
    instances: &[Instance],
) -> Report {
    let workload_end = Instant::now();
    let faults = schedule.faults();
    let settled = settle(instances, Duration::from_secs(10)).await;
    let replaying = monitor.stop().await;
    let last = ops.iter().map(|o| o.end).chain(faults.iter().map(|f| f.end)).max().unwrap_or(t0);
    tokio::time::sleep_until((last + BOUND + Duration::from_millis(100)).into()).await;
    let reads = workload.read_all(&bases(instances)).await;
    let final_reads = reads.len();
    ops.extend(reads);
    let mut report = check(name, t0, &ops, &faults);
    report.note(format!(
        "settled reads     : {final_reads} GETs (every item on every instance) more than {} ms after the last write and fault, counted above",
        BOUND.as_millis()
    ));
    match settled {
        Some(took) => report.note(format!(
            "recovery          : every instance subscribed, nothing pending, {} ms after the workload",
            took.as_millis()
        )),
        None => {
            for (i, instance) in instances.iter().enumerate().filter(|(_, i)| !i.is_settled()) {
                report.not_recovered.push(format!(
                    "#{i} still bypassing Redis 10 s after the workload: {}",
                    instance.describe()
                ));
            }
        }
    }
    for (i, instance) in instances.iter().enumerate() {
        report.note(format!("instance #{i}       : {}", instance.describe()));
    }
    for line in replaying {
        report.note(line);
    }
    report.note(format!(
        "workload          : {} clients, {} items, {}% PUTs, {:.1} s; scenario {:.1} s",
        workload.clients,
        workload.items,
        workload.put_percent,
        workload.duration.as_secs_f64(),
        workload_end.duration_since(t0).as_secs_f64()
    ));
    report
}

/// One `redis-server`; faults on one instance's link, and on Redis itself,
/// each followed by a calm of at least 2.5 s so that its consequences are
/// told apart from the next one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_under_faults() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let started = Instant::now();
    let server = RedisServer::start();
    let port = server.port();
    let db = Database::new(SEED, 0);
    let instances = instances_behind_proxies(address(&server), &db).await;
    let workload = hot_workload(Duration::from_secs(18));
    let app_bases = bases(&instances);
    let t0 = Instant::now();
    let schedule = Schedule::new(t0);
    let monitor = Monitor::start(&instances, t0, Duration::from_millis(100));
    println!("=== consistency: server (faults as they happen) ===");
    let faults = async {
        let mut server = server;
        let (proxy0, proxy1, proxy2) = (instances[0].proxy(), instances[1].proxy(), instances[2].proxy());

        schedule.at(1.0).await;
        let what = "slow link for instance 1 (+150 ms each way, over the 200 ms timeout)";
        let start = schedule.begin(what);
        proxy1.set_delay(Duration::from_millis(150));
        schedule.at(3.0).await;
        proxy1.set_delay(Duration::ZERO);
        schedule.end(what, &[1], start);

        schedule.at(4.5).await;
        let what = "Redis stopped (SIGSTOP) for 1.5 s";
        let start = schedule.begin(what);
        server.pause();
        schedule.at(6.0).await;
        server.resume();
        schedule.end(what, ALL, start);

        schedule.at(8.5).await;
        let what = "every connection of instance 2 reset (its subscription too)";
        let start = schedule.begin(what);
        proxy2.reset_all();
        schedule.end(what, &[2], start);

        schedule.at(10.0).await;
        let what = "instance 0 partitioned from Redis (proxy paused) for 1 s";
        let start = schedule.begin(what);
        proxy0.pause();
        schedule.at(11.0).await;
        proxy0.resume();
        schedule.end(what, &[0], start);

        schedule.at(13.0).await;
        let what = "Redis killed, restarted on its port without persistence 0.5 s later";
        let start = schedule.begin(what);
        kill(server).await;
        schedule.at(13.5).await;
        server = start_on(port, &[]).await;
        schedule.end(what, ALL, start);

        schedule.at(15.5).await;
        let what = "instance 1's link blackholed (bytes dropped both ways) for 1 s";
        let start = schedule.begin(what);
        proxy1.blackhole(true);
        schedule.at(16.5).await;
        proxy1.blackhole(false);
        schedule.end(what, &[1], start);
        server
    };
    let (ops, _server) = tokio::join!(workload.run(&app_bases, t0), faults);
    let mut report = finish("server", t0, ops, monitor, &schedule, &workload, &instances).await;
    report.note(format!("wall time         : {:.1} s", started.elapsed().as_secs_f64()));
    println!("{report}");
    report.assert_consistent();
}

/// The baseline: one `redis-server`, the hot workload, no faults. How
/// long another instance serves an invalidated copy when nothing fails
/// (pub/sub delivery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_faults() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let started = Instant::now();
    let server = RedisServer::start();
    let db = Database::new(SEED ^ 4, 0);
    let instances = instances_behind_proxies(address(&server), &db).await;
    let workload = Workload {
        seed: SEED ^ 4,
        ..hot_workload(Duration::from_secs(8))
    };
    let app_bases = bases(&instances);
    let t0 = Instant::now();
    let schedule = Schedule::new(t0);
    let monitor = Monitor::start(&instances, t0, Duration::from_millis(100));
    let ops = workload.run(&app_bases, t0).await;
    let mut report = finish("no faults", t0, ops, monitor, &schedule, &workload, &instances).await;
    report.note(format!("wall time         : {:.1} s", started.elapsed().as_secs_f64()));
    println!("{report}");
    report.assert_consistent();
}

/// One `redis-server` with an append-only file fsynced on every write,
/// killed twice and restarted on its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restarted_with_persistence() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let started = Instant::now();
    let dir: PathBuf = std::env::temp_dir().join(format!("cache-consistency-aof-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let args: Vec<String> = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        dir.to_str().expect("a UTF-8 path"),
    ]
    .map(str::to_owned)
    .to_vec();
    let server = RedisServer::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let port = server.port();
    let url = server.url();
    let db = Database::new(SEED ^ 1, 0);
    let instances = instances_behind_proxies(address(&server), &db).await;
    let workload = Workload {
        seed: SEED ^ 1,
        ..hot_workload(Duration::from_secs(9))
    };
    let app_bases = bases(&instances);
    let t0 = Instant::now();
    let schedule = Schedule::new(t0);
    let monitor = Monitor::start(&instances, t0, Duration::from_millis(100));
    println!("=== consistency: persistence (faults as they happen) ===");
    let faults = async {
        let mut server = server;
        let mut kept = Vec::new();
        for (at, down) in [(2.0, 0.5), (5.0, 1.0)] {
            schedule.at(at).await;
            let what = format!("Redis killed, restarted on its append-only file {down} s later");
            let start = schedule.begin(&what);
            kill(server).await;
            schedule.at(at + down).await;
            server = start_on(port, &args).await;
            schedule.end(&what, ALL, start);
            kept.push(db_size(&url).await);
        }
        (server, kept)
    };
    let (ops, (server, kept)) = tokio::join!(workload.run(&app_bases, t0), faults);
    let mut report = finish("persistence", t0, ops, monitor, &schedule, &workload, &instances).await;
    report.note(format!("keys after restart: {kept:?} (reloaded from the append-only file)"));
    report.note(format!("wall time         : {:.1} s", started.elapsed().as_secs_f64()));
    println!("{report}");
    drop(instances);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    report.assert_consistent();
    assert!(kept.iter().all(|&n| n > 0), "Redis came back with its data each time: {kept:?}");
}

/// One `redis-server` with 2 MB of memory, evicting all the time under a
/// write-heavy workload on 400 items of 2 KiB.
///
/// Not 1 MB: an empty `redis-server` 7 already uses about 0.9 MB, and with
/// the instances' connections and scripts it stays above a 1 MB limit with
/// no key to evict, so that every write fails with `OOM` instead of
/// evicting (the instances then keep their invalidations pending and
/// bypass Redis for good: consistent, but nothing to test eviction with).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxmemory_evicts_constantly() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let started = Instant::now();
    let server = RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    let db = Database::new(SEED ^ 2, 2048);
    let instances = instances_behind_proxies(address(&server), &db).await;
    let workload = Workload {
        seed: SEED ^ 2,
        clients: 12,
        items: 400,
        put_percent: 30,
        duration: Duration::from_secs(15),
    };
    let t0 = Instant::now();
    let schedule = Schedule::new(t0);
    let monitor = Monitor::start(&instances, t0, Duration::from_millis(100));
    let app_bases = bases(&instances);
    let ops = workload.run(&app_bases, t0).await;
    let mut report = finish("maxmemory", t0, ops, monitor, &schedule, &workload, &instances).await;
    let evicted: u64 = info_field(&server.url(), "stats", "evicted_keys")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let memory = info_field(&server.url(), "memory", "used_memory_human").await.unwrap_or_default();
    report.note(format!(
        "evicted keys      : {evicted} (used memory at the end {memory}, maxmemory 2mb, allkeys-lru)"
    ));
    report.note(format!("wall time         : {:.1} s", started.elapsed().as_secs_f64()));
    println!("{report}");
    report.assert_consistent();
    assert!(evicted > 0, "Redis evicted nothing: the scenario did not test eviction");
}

/// Fails a master of `cluster` over to its replica (`CLUSTER FAILOVER`,
/// sent to the replica) and waits until the replica reports itself a
/// master; says which.
async fn fail_over(urls: &[String]) -> Result<String, String> {
    let nodes: String = query(&urls[0], redis::cmd("CLUSTER").arg("NODES"))
        .await
        .map_err(|e| format!("CLUSTER NODES: {e}"))?;
    // <id> <ip:port@cport[,hostname]> <flags> <master id> ...
    let lines: Vec<Vec<&str>> = nodes.lines().map(|l| l.split_whitespace().collect()).collect();
    let replica = lines
        .iter()
        .find(|f| f.len() > 3 && f[2].contains("slave") && !f[2].contains("fail"))
        .ok_or("no replica")?;
    let address = |fields: &[&str]| fields[1].split(['@', ',']).next().unwrap_or_default().to_owned();
    let master = lines
        .iter()
        .find(|f| f.first() == Some(&replica[3]))
        .map_or_else(|| "?".to_owned(), |f| address(f));
    let replica = address(replica);
    let url = format!("redis://{replica}");
    let _: String = query(&url, redis::cmd("CLUSTER").arg("FAILOVER"))
        .await
        .map_err(|e| format!("CLUSTER FAILOVER: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&url, "replication", "role").await.as_deref() != Some("master") {
        if Instant::now() > deadline {
            return Err(format!("{replica} was not a master 10 s after CLUSTER FAILOVER"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(format!("replica {replica} took over from master {master}"))
}

/// A Redis Cluster (three masters, three replicas); one master fails over
/// to its replica in the middle of the workload.
///
/// The instances connect to the nodes directly, without proxies: a cluster
/// client follows the node addresses the cluster advertises (`CLUSTER
/// SLOTS`, `MOVED`), so a proxy in front of the seed nodes would carry only
/// the first requests and the subscription; the fault here is the
/// failover, which concerns every instance alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_with_a_failover() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let started = Instant::now();
    let cluster = tokio::task::spawn_blocking(RedisCluster::start).await.expect("the cluster starts");
    let urls = cluster.urls();
    let db = Database::new(SEED ^ 3, 0);
    let mut instances = Vec::new();
    for _ in 0..3 {
        let l2 = configure(RedisStore::cluster_builder(urls.clone()))
            .connect()
            .await
            .expect("connects");
        instances.push(Instance::start(l2, None, &db).await);
    }
    let workload = Workload {
        seed: SEED ^ 3,
        ..hot_workload(Duration::from_secs(10))
    };
    let app_bases = bases(&instances);
    let t0 = Instant::now();
    let schedule = Schedule::new(t0);
    let monitor = Monitor::start(&instances, t0, Duration::from_millis(100));
    println!("=== consistency: cluster (faults as they happen) ===");
    let faults = async {
        schedule.at(4.0).await;
        let what = "master failover (CLUSTER FAILOVER sent to a replica)";
        let start = schedule.begin(what);
        let done = fail_over(&urls).await;
        schedule.end(&format!("{what}: {}", done.as_deref().unwrap_or_else(|e| e)), ALL, start);
        done
    };
    let (ops, done) = tokio::join!(workload.run(&app_bases, t0), faults);
    let mut report = finish("cluster", t0, ops, monitor, &schedule, &workload, &instances).await;
    report.note(format!("wall time         : {:.1} s", started.elapsed().as_secs_f64()));
    println!("{report}");
    report.assert_consistent();
    done.expect("the failover happened");
}

/// The smallest case behind the stale reads the `server` scenario finds
/// when instance 1's link turns slow: fetch A begins (stamp `a`), a write
/// invalidates the item's tag, fetch B begins after it and stores the new
/// version, which lists the key under the tag again; then A's store of
/// the old version reaches Redis late (a slow link: 150 ms one way, under
/// every timeout but the response's). `SET_ENTRY` checks only the key's
/// stamp, and the read check (the key is listed under each of its tags)
/// is met by B's listing, so the old version is readable until A's tag
/// listing is refused and A deletes it — and a tiered reader that read it
/// meanwhile keeps it in L1, since that deletion is not published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_store_never_hides_a_newer_one() {
    use cache_core::{Store, TieredStore, store::Stamp};

    use cache_tests::support::body_of as body;
    let entry = |body: &str, stamp: Stamp| cache_tests::support::fetched_entry(body, "item:1", stamp);

    let _serial = SERIAL.lock().await;
    init_tracing();
    let server = RedisServer::start();
    let proxy = FaultProxy::start(address(&server)).await;
    let slow = configure(RedisStore::builder(proxy.url())).connect().await.expect("connects");
    let fast = configure(RedisStore::builder(server.url())).connect().await.expect("connects");
    let l2 = configure(RedisStore::builder(server.url())).connect().await.expect("connects");
    let reader = TieredStore::builder(l2).build().expect("a runtime");
    while !reader.is_subscribed() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let key = "http:1::/item/1?::";
    let ttl = Duration::from_secs(60);

    let (_, a) = slow.get_stamped(key).await.expect("Redis answers"); // fetch A begins: it reads v1
    fast.invalidate_tags(&["item:1".to_owned()]).await.expect("Redis answers"); // the write of v2
    let (_, b) = fast.get_stamped(key).await.expect("Redis answers"); // fetch B begins after it: it reads v2
    fast.put(key, entry("v2", b), ttl).await.expect("B's store is taken");
    assert_eq!(body(reader.get(key).await.expect("Redis answers")), "v2");
    reader.l1().clear();

    proxy.set_delay_upstream(Duration::from_millis(150));
    let late = tokio::spawn({
        let slow = slow.clone();
        async move { slow.put(key, entry("v1", a), ttl).await }
    });
    // Every 10 ms for a second, a reader that has nothing in L1 yet (as
    // any instance after a restart or an L1 reset): it reads L2.
    let mut seen = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) && !seen.iter().any(|b| b == "v1") {
        reader.l1().clear();
        seen.push(body(reader.get(key).await.expect("Redis answers")));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let late = late.await.expect("does not panic");
    seen.dedup();
    // What the reader keeps once A is done (it deleted its entry in Redis).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (l2_now, reader_now) = (
        body(fast.get(key).await.expect("Redis answers")),
        body(reader.get(key).await.expect("Redis answers")),
    );
    println!("A's late store: {late:?}; the reader saw, in order: {seen:?}; then Redis holds {l2_now}, the reader serves {reader_now}");
    assert!(
        !seen.iter().any(|b| b == "v1"),
        "A's store of v1, whose fetch began before the write, was read after B stored v2 (reads in order: {seen:?}); \
         0.5 s after A's store returned, Redis holds {l2_now} and the reader serves {reader_now}"
    );
}
