//! Load with wrk: a Lua script per workload (one path, or a Zipf mix over
//! many keys drawn once into a ring of prepared requests), and a `done`
//! hook that prints the summary and the latency percentiles as JSON.

use std::{net::SocketAddr, path::Path, process::Command};

use anyhow::Context;
use serde::Deserialize;

use crate::procs::{CLIENT_CORE, Env, ensure_installed};

/// What wrk measured.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Summary {
    pub(crate) requests: u64,
    pub(crate) duration_us: u64,
    pub(crate) errors: u64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
}

impl Summary {
    pub(crate) fn rps(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }
}

/// The requests wrk sends.
#[derive(Debug, Clone)]
pub(crate) enum Paths {
    /// The same path every time.
    One(String),
    /// `{prefix}{rank}`, rank drawn from a Zipf distribution (exponent `s`)
    /// over `keys` keys.
    Zipf { prefix: String, keys: u64, s: f64 },
}

const DONE: &str = r#"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%f,"p99_us":%f,"p999_us":%f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"#;

/// The Lua script for `paths`.
pub(crate) fn script(paths: &Paths) -> String {
    match paths {
        Paths::One(path) => format!("wrk.method = \"GET\"\nwrk.path = {path:?}\n{DONE}"),
        Paths::Zipf { prefix, keys, s } => format!(
            r#"local ring = {{}}
local n = 0
local i = 0
function init(args)
  math.randomseed(42)
  local keys, s = {keys}, {s}
  local cdf, sum = {{}}, 0
  for k = 1, keys do sum = sum + 1 / (k ^ s); cdf[k] = sum end
  n = 200000
  for j = 1, n do
    local u = math.random() * sum
    local lo, hi = 1, keys
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then lo = mid + 1 else hi = mid end
    end
    ring[j] = wrk.format("GET", "{prefix}" .. lo)
  end
end
function request()
  i = i % n + 1
  return ring[i]
end
{DONE}"#
        ),
    }
}

/// Runs wrk against `addr` for `duration` with `connections`, pinned to
/// the client core.
pub(crate) fn run(env: &Env, addr: SocketAddr, paths: &Paths, connections: u32, duration: &str) -> anyhow::Result<Summary> {
    ensure_installed("wrk", "wrk")?;
    let script_path = env.work.join(format!("wrk-{}.lua", std::process::id()));
    std::fs::write(&script_path, script(paths))?;
    run_script(env, addr, &script_path, connections, duration)
}

fn run_script(env: &Env, addr: SocketAddr, script: &Path, connections: u32, duration: &str) -> anyhow::Result<Summary> {
    let mut command: Command = env.command(CLIENT_CORE, "wrk");
    command
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{duration}"),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://{addr}"));
    let output = command.output().context("running wrk")?;
    summary(&output, "wrk")
}

/// The summary a load generator printed as a `BENCHJSON {...}` line.
pub(crate) fn summary(output: &std::process::Output, what: &str) -> anyhow::Result<Summary> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BENCHJSON "))
        .with_context(|| format!("no summary from {what}: {stdout}{}", String::from_utf8_lossy(&output.stderr)))?;
    Ok(serde_json::from_str(json)?)
}
