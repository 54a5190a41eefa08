//! The side-by-side benchmark harness: starts each contender on loopback,
//! drives the same workloads with wrk (or, for the stampede, its own
//! client), and writes `results.json`, `results.md` and PNG plots into
//! `bench/results/`.
//!
//! ```sh
//! cargo run --release --manifest-path bench/Cargo.toml -- hit stampede --duration 10s
//! cargo run --release --manifest-path bench/Cargo.toml -- redis --rounds 3 --duration 10s
//! cargo run --release --manifest-path bench/Cargo.toml -- all
//! cargo run --release --manifest-path bench/Cargo.toml -- --help
//! ```
//!
//! Servers are pinned to core 0 with one worker, the load generator to
//! core 1 (when taskset exists and there are two cores). Each measurement
//! starts the contender afresh, so that its peak RSS is its own.

mod http;
mod inproc;
mod plot;
mod procs;
mod redis;
mod report;
mod stampede;
mod wrk;

use std::{path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    procs::{Contender, Env, Server},
    report::{Record, Results},
    wrk::{Paths, Summary},
};

/// Side-by-side benchmarks of the cache against the ceiling, nginx,
/// Varnish and the Rust peers.
#[derive(Debug, Parser)]
struct Args {
    /// Workloads to run.
    #[arg(value_enum, default_values_t = [Workload::Hit])]
    workloads: Vec<Workload>,
    /// Contenders, comma-separated (default: all). Names: ceiling, origin,
    /// moka, redis, tiered, actix-ceiling, actix-moka, actix-tiered, nginx,
    /// varnish, tower-http-cache, hitbox-tower, axum-response-cache,
    /// http-cache-tower-server.
    #[arg(long, value_delimiter = ',')]
    contenders: Option<Vec<String>>,
    /// How long each measurement lasts (wrk's -d).
    #[arg(long, default_value = "10s")]
    duration: String,
    /// How long each contender is loaded before it is measured.
    #[arg(long, default_value = "2s")]
    warmup: String,
    /// wrk's connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// Rounds per load measurement (the median round is kept); contenders
    /// alternate within a round.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Concurrent requests of the stampede.
    #[arg(long, default_value_t = 1000)]
    stampede: usize,
    /// Stampedes per contender, each on a fresh key.
    #[arg(long, default_value_t = 3)]
    stampede_rounds: u32,
    /// Milliseconds each origin call waits in the stampede.
    #[arg(long, default_value_t = 100)]
    stampede_delay_ms: u64,
    /// Keys of the Zipf mix.
    #[arg(long, default_value_t = 100_000)]
    zipf_keys: u64,
    /// Exponent of the Zipf mix.
    #[arg(long, default_value_t = 1.0)]
    zipf_s: f64,
    /// The most entries of the growth workload (a power of ten).
    #[arg(long, default_value_t = 1_000_000)]
    growth_max: u64,
    /// Tags invalidated, one at a time, after the growth workload.
    #[arg(long, default_value_t = 50)]
    tags: u64,
    /// Where results go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out: PathBuf,
    /// Only rewrite results.md and the plots from results.json.
    #[arg(long)]
    report_only: bool,
    /// Internal: be the raw GET client of the redis workload against the
    /// Redis server at this address for `--duration`, and exit.
    #[arg(long, hide = true, value_name = "ADDR")]
    raw_get: Option<std::net::SocketAddr>,
}

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// All hits on one key, 1 KiB body.
    Hit,
    /// N concurrent requests on a cold key; counts origin calls.
    Stampede,
    /// All hits on one key, bodies of 10 B, 1 KiB, 64 KiB and 256 KiB.
    Sizes,
    /// A Zipf mix over 100,000 keys, 1 KiB bodies.
    Zipf,
    /// Hit latency at one connection, one request at a time, of moka,
    /// redis and tiered (1 KiB body), against a raw Redis GET of a value as
    /// large as the entry the redis contender stores.
    Redis,
    /// In process: hit latency with 10^3 .. 10^6 entries held, then the
    /// invalidation of one tag of 100 entries among them.
    Growth,
    /// Every workload.
    All,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(addr) = args.raw_get {
        return redis::raw_get_client(addr, &args.duration);
    }
    std::fs::create_dir_all(&args.out)?;
    let json = args.out.join("results.json");
    let mut results = Results::load(&json);
    if !args.report_only {
        let contenders = match &args.contenders {
            Some(names) => names.iter().map(|n| Contender::parse(n)).collect::<anyhow::Result<Vec<_>>>()?,
            None => Contender::all(),
        };
        let mut workloads = args.workloads.clone();
        if workloads.contains(&Workload::All) {
            workloads = vec![
                Workload::Hit,
                Workload::Stampede,
                Workload::Sizes,
                Workload::Zipf,
                Workload::Redis,
                Workload::Growth,
            ];
        }
        let mut env = Env::new()?;
        let command = command_line();
        for workload in workloads {
            run(&args, &mut env, workload, &contenders, &command, &mut results)?;
            // Read after the workload installed what it needed.
            results.machine = machine();
            results.save(&json)?;
        }
    }
    std::fs::write(args.out.join("results.md"), results.markdown())?;
    let plots = plot::all(&results, &args.out)?;
    println!("{}", results.markdown());
    println!("wrote {} and {}", args.out.join("results.md").display(), plots.join(", "));
    Ok(())
}

fn run(
    args: &Args,
    env: &mut Env,
    workload: Workload,
    contenders: &[Contender],
    command: &str,
    results: &mut Results,
) -> anyhow::Result<()> {
    let (name, records) = match workload {
        Workload::Hit => ("hit", load(args, env, contenders, &[(1024, "1 KiB")], false)?),
        Workload::Sizes => ("sizes", load(args, env, contenders, &SIZES, false)?),
        Workload::Zipf => ("zipf", load(args, env, contenders, &[(1024, "1 KiB")], true)?),
        Workload::Stampede => ("stampede", stampede(args, env, contenders)?),
        Workload::Redis => ("redis", redis::workload(args, env, contenders)?),
        Workload::Growth => {
            let bar = spinner("growth");
            let (growth, tags) = inproc::growth_and_tags(args.growth_max, args.tags, &|m| bar.set_message(m.to_owned()))?;
            bar.finish_and_clear();
            results.replace("tags", command.to_owned(), tags);
            ("growth", growth)
        }
        Workload::All => unreachable!("expanded in main"),
    };
    let records = records
        .into_iter()
        .map(|r| Record {
            workload: name.to_owned(),
            ..r
        })
        .collect();
    results.replace(name, command.to_owned(), records);
    Ok(())
}

const SIZES: [(usize, &str); 4] = [(10, "10 B"), (1024, "1 KiB"), (64 * 1024, "64 KiB"), (256 * 1024, "256 KiB")];

fn spinner(prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed_precise} {prefix}: {msg}").expect("a valid template"));
    bar.set_prefix(prefix.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} (eta {eta}) {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Hits (or a Zipf mix) with wrk: per variant, per round, per contender.
fn load(args: &Args, env: &mut Env, contenders: &[Contender], sizes: &[(usize, &str)], zipf: bool) -> anyhow::Result<Vec<Record>> {
    let bar = progress((sizes.len() * args.rounds as usize * contenders.len()) as u64);
    let mut records = Vec::new();
    for &(size, variant) in sizes {
        let paths = if zipf {
            Paths::Zipf {
                prefix: format!("/b/{size}/z"),
                keys: args.zipf_keys,
                s: args.zipf_s,
            }
        } else {
            Paths::One(format!("/b/{size}/{}", bench::origin::HOT_KEY))
        };
        let mut rounds: Vec<Vec<(Contender, anyhow::Result<Measured>)>> = Vec::new();
        for round in 0..args.rounds {
            let mut this_round = Vec::new();
            for &contender in contenders {
                bar.set_message(format!("{variant} round {} {contender}", round + 1));
                this_round.push((contender, measure(args, env, contender, &paths, args.connections)));
                bar.inc(1);
            }
            rounds.push(this_round);
        }
        for &contender in contenders {
            let outcomes: Vec<&anyhow::Result<Measured>> = rounds
                .iter()
                .flat_map(|r| r.iter().filter(|(c, _)| *c == contender).map(|(_, m)| m))
                .collect();
            records.push(median_record(&contender.to_string(), variant, &outcomes));
        }
    }
    bar.finish_and_clear();
    Ok(records)
}

/// One measurement: what the load generator saw and, for a contender,
/// its origin calls and peak RSS.
#[derive(Debug)]
struct Measured {
    summary: Summary,
    origin_calls: Option<u64>,
    peak_rss_mib: Option<f64>,
}

/// Starts `contender`, warms it up and measures it with wrk at `connections`.
fn measure(args: &Args, env: &mut Env, contender: Contender, paths: &Paths, connections: u32) -> anyhow::Result<Measured> {
    let server: Server = env.start(contender, 0)?;
    wrk::run(env, server.addr, paths, connections, &args.warmup)?;
    let before = http::calls(server.calls_addr)?;
    let summary = wrk::run(env, server.addr, paths, connections, &args.duration)?;
    let origin_calls = http::calls(server.calls_addr)? - before;
    let peak_rss_mib = server.peak_rss_kib() as f64 / 1024.0;
    server.stop();
    Ok(Measured {
        summary,
        origin_calls: Some(origin_calls),
        peak_rss_mib: Some(peak_rss_mib),
    })
}

/// The record of the median round (by requests/s) of `contender`.
fn median_record(contender: &str, variant: &str, outcomes: &[&anyhow::Result<Measured>]) -> Record {
    let mut ok: Vec<&Measured> = outcomes.iter().filter_map(|m| m.as_ref().ok()).collect();
    let mut record = Record {
        workload: String::new(),
        variant: variant.to_owned(),
        contender: contender.to_owned(),
        ..Record::default()
    };
    if ok.is_empty() {
        let error = outcomes
            .iter()
            .find_map(|m| m.as_ref().err())
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        record.note = format!("failed: {error}");
        return record;
    }
    ok.sort_by(|a, b| a.summary.rps().total_cmp(&b.summary.rps()));
    let median = ok[ok.len() / 2];
    record.rps = Some(median.summary.rps());
    record.p50_us = Some(median.summary.p50_us);
    record.p99_us = Some(median.summary.p99_us);
    record.p999_us = Some(median.summary.p999_us);
    record.origin_calls = median.origin_calls;
    record.peak_rss_mib = ok.iter().filter_map(|m| m.peak_rss_mib).reduce(f64::max);
    record.errors = median.summary.errors;
    record.note = format!("median of {} rounds", ok.len());
    record
}

/// The cold-key stampede against each contender that caches.
fn stampede(args: &Args, env: &mut Env, contenders: &[Contender]) -> anyhow::Result<Vec<Record>> {
    let contenders: Vec<Contender> = contenders.iter().copied().filter(|c| c.caches()).collect();
    let bar = progress((contenders.len() * args.stampede_rounds as usize) as u64);
    let mut records = Vec::new();
    for contender in contenders {
        bar.set_message(format!("{contender}"));
        let mut record = Record {
            workload: "stampede".to_owned(),
            variant: format!("{} requests, origin {} ms", args.stampede, args.stampede_delay_ms),
            contender: contender.to_string(),
            ..Record::default()
        };
        match stampede_rounds(args, env, contender, &bar) {
            Ok(outcomes) => {
                let calls: Vec<u64> = outcomes.iter().map(|o| o.origin_calls).collect();
                let last = outcomes.last().expect("at least one round");
                let at = |q: f64| {
                    let l = &last.latencies_us;
                    (!l.is_empty()).then(|| l[((l.len() - 1) as f64 * q) as usize] as f64)
                };
                record.origin_calls = calls.iter().copied().max();
                record.p50_us = at(0.5);
                record.p99_us = at(0.99);
                record.p999_us = at(1.0);
                record.errors = outcomes.iter().map(|o| o.failed as u64).sum();
                let ok: usize = outcomes.iter().map(|o| o.ok).sum();
                record.note = format!("origin calls per round: {calls:?}; {ok} answered 200");
            }
            Err(e) => record.note = format!("failed: {e:#}"),
        }
        records.push(record);
    }
    bar.finish_and_clear();
    Ok(records)
}

fn stampede_rounds(args: &Args, env: &mut Env, contender: Contender, bar: &ProgressBar) -> anyhow::Result<Vec<stampede::Outcome>> {
    let server = env.start(contender, args.stampede_delay_ms)?;
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let mut outcomes = Vec::new();
    for round in 0..args.stampede_rounds {
        let path = format!("/b/1024/cold-{nonce}-{round}");
        outcomes.push(stampede::run(server.addr, server.calls_addr, &path, args.stampede)?);
        bar.inc(1);
    }
    server.stop();
    Ok(outcomes)
}

/// What the machine is, for the report.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|v| v.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap_or(0))
        })
        .map_or(0, |kib| kib / (1024 * 1024));
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let version = |program: &str, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| {
                let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
                text.lines().next().unwrap_or_default().trim().to_owned()
            })
            .unwrap_or_else(|| format!("{program}: not installed"))
    };
    format!(
        "{model}, {cores} cores, {memory} GiB, Linux {kernel}; {}; {}; {}; {}",
        version("wrk", "-v"),
        version("nginx", "-v"),
        version("varnishd", "-V"),
        version("redis-server", "--version")
    )
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo run --release --manifest-path bench/Cargo.toml -- {}", args.join(" "))
}
