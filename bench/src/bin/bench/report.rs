//! Results: records kept as JSON (merged run after run, one workload
//! replacing its own earlier records) and written as a markdown report.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use serde::{Deserialize, Serialize};

/// One measurement of one contender in one workload.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) workload: String,
    /// The workload's parameter: a body size, a number of entries.
    pub(crate) variant: String,
    pub(crate) contender: String,
    pub(crate) rps: Option<f64>,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) p999_us: Option<f64>,
    pub(crate) origin_calls: Option<u64>,
    pub(crate) peak_rss_mib: Option<f64>,
    pub(crate) errors: u64,
    pub(crate) note: String,
}

/// Everything measured, and how.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Results {
    /// Per workload: the command and settings of its last run.
    pub(crate) runs: BTreeMap<String, String>,
    pub(crate) machine: String,
    pub(crate) records: Vec<Record>,
}

impl Results {
    pub(crate) fn load(path: &Path) -> Results {
        std::fs::read(path)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or_default()
    }

    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }

    /// Replaces the records of `workload` with `records`.
    pub(crate) fn replace(&mut self, workload: &str, how: String, records: Vec<Record>) {
        self.records.retain(|r| r.workload != workload);
        self.records.extend(records);
        self.runs.insert(workload.to_owned(), how);
    }

    pub(crate) fn of<'a>(&'a self, workload: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        let workload = workload.to_owned();
        self.records.iter().filter(move |r| r.workload == workload)
    }

    fn find(&self, workload: &str, variant: &str, contender: &str) -> Option<&Record> {
        self.records
            .iter()
            .filter(|r| r.workload == workload)
            .find(|r| r.variant == variant && r.contender == contender)
    }

    /// The markdown report: one table per workload, then the targets.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark results\n\nMachine: {}\n", self.machine);
        let workloads: Vec<&str> = ORDER.iter().copied().filter(|w| self.runs.contains_key(*w)).collect();
        for workload in workloads {
            let _ = writeln!(out, "## {workload}\n\n`{}`\n", self.runs[workload]);
            match workload {
                "growth" | "tags" => self.latency_table(&mut out, workload),
                "stampede" => self.stampede_table(&mut out),
                "redis" => self.redis_table(&mut out),
                _ => self.load_table(&mut out, workload),
            }
        }
        let targets = self.targets();
        if !targets.is_empty() {
            let _ = writeln!(out, "## Targets\n");
            for line in targets {
                let _ = writeln!(out, "- {line}");
            }
        }
        out
    }

    fn load_table(&self, out: &mut String, workload: &str) {
        let _ = writeln!(
            out,
            "| variant | contender | requests/s | × ceiling | p50 (ms) | p99 (ms) | p99.9 (ms) | origin calls | peak RSS (MiB) | errors |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in self.of(workload) {
            let ceiling = self.find(workload, &r.variant, "ceiling").and_then(|c| c.rps);
            let ratio = match (r.rps, ceiling) {
                (Some(rps), Some(c)) if c > 0.0 => format!("{:.3}", rps / c),
                _ => "-".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {ratio} | {} | {} | {} | {} | {} | {} |",
                r.variant,
                r.contender,
                opt(r.rps, 0),
                opt(r.p50_us.map(|v| v / 1e3), 3),
                opt(r.p99_us.map(|v| v / 1e3), 3),
                opt(r.p999_us.map(|v| v / 1e3), 3),
                r.origin_calls.map_or("-".to_owned(), |c| c.to_string()),
                opt(r.peak_rss_mib, 1),
                r.errors
            );
        }
        let _ = writeln!(out);
    }

    fn stampede_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "| variant | contender | origin calls (most in a round) | answered by (ms): p50 | p99 | last | failed | note |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---|");
        for r in self.of("stampede") {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.variant,
                r.contender,
                r.origin_calls.map_or("-".to_owned(), |c| c.to_string()),
                opt(r.p50_us.map(|v| v / 1e3), 1),
                opt(r.p99_us.map(|v| v / 1e3), 1),
                opt(r.p999_us.map(|v| v / 1e3), 1),
                r.errors,
                r.note
            );
        }
        let _ = writeln!(out);
    }

    /// Hit latency at one connection against the raw Redis GET.
    fn redis_table(&self, out: &mut String) {
        let raw = self.of("redis").find(|r| r.contender == crate::redis::RAW_GET);
        if let Some(raw) = raw {
            let _ = writeln!(
                out,
                "One connection, one request at a time: the contenders by `wrk -t1 -c1` on the 1 KiB hot key, `{}` by the \
                 harness's own RESP client reading a {} (as large as the entry the redis contender stores for that key) from \
                 the same redis-server, no HTTP; × GET is each p50 over the raw GET's p50.\n",
                raw.contender, raw.variant
            );
        }
        let raw_p50 = raw.and_then(|r| r.p50_us).filter(|p| *p > 0.0);
        let _ = writeln!(
            out,
            "| variant | contender | p50 (µs) | × GET | p99 (µs) | p99.9 (µs) | requests/s | origin calls | errors | note |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for r in self.of("redis") {
            let ratio = match (r.p50_us, raw_p50) {
                (Some(p50), Some(raw)) => format!("{:.2}", p50 / raw),
                _ => "-".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {ratio} | {} | {} | {} | {} | {} | {} |",
                r.variant,
                r.contender,
                opt(r.p50_us, 1),
                opt(r.p99_us, 1),
                opt(r.p999_us, 1),
                opt(r.rps, 0),
                r.origin_calls.map_or("-".to_owned(), |c| c.to_string()),
                r.errors,
                r.note
            );
        }
        let _ = writeln!(out);
    }

    fn latency_table(&self, out: &mut String, workload: &str) {
        let _ = writeln!(out, "| variant | what | p50 (µs) | p99 (µs) | p99.9 (µs) | note |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|---|");
        for r in self.of(workload) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.variant,
                r.contender,
                opt(r.p50_us, 3),
                opt(r.p99_us, 3),
                opt(r.p999_us, 3),
                r.note
            );
        }
        let _ = writeln!(out);
    }

    /// The targets, as ratios from this run.
    pub(crate) fn targets(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let rps = |contender: &str| self.find("hit", "1 KiB", contender).and_then(|r| r.rps);
        if let Some(moka) = rps("moka") {
            let mut versus = |name: &str, other: Option<f64>, goal: f64| {
                if let Some(other) = other.filter(|o| *o > 0.0) {
                    let ratio = moka / other;
                    let verdict = if ratio >= goal { "met" } else { "missed" };
                    lines.push(format!("moka hits / {name}: {ratio:.3} (target ≥ {goal}): {verdict}"));
                }
            };
            versus("ceiling", rps("ceiling"), 0.9);
            versus("nginx proxy_cache", rps("nginx"), 1.0);
            versus("Varnish", rps("varnish"), 2.0);
            let best_peer = self
                .of("hit")
                .filter(|r| r.variant == "1 KiB" && PEERS.contains(&r.contender.as_str()))
                .filter_map(|r| r.rps.map(|v| (v, r.contender.clone())))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((peer_rps, peer)) = best_peer {
                versus(&format!("the best Rust peer ({peer})"), Some(peer_rps), 1.2);
            }
        }
        let stampede: Vec<String> = self
            .of("stampede")
            .filter_map(|r| r.origin_calls.map(|c| format!("{} {c}", r.contender)))
            .collect();
        if !stampede.is_empty() {
            lines.push(format!(
                "stampede, origin calls for one cold key (most over the rounds): {}",
                stampede.join(", ")
            ));
        }
        let growth: Vec<&Record> = self.of("growth").filter(|r| r.contender == "hot key").collect();
        if let (Some(first), Some(last)) = (growth.first(), growth.last())
            && let (Some(a), Some(b)) = (first.p50_us, last.p50_us)
        {
            let change = b / a - 1.0;
            let verdict = if change.abs() <= 0.2 { "met" } else { "missed" };
            lines.push(format!(
                "hit p50 from {} to {}: {a:.3} µs → {b:.3} µs ({:+.0}%, target within 20%): {verdict}",
                first.variant,
                last.variant,
                change * 100.0
            ));
        }
        if let Some(tags) = self.of("tags").next()
            && let Some(p50) = tags.p50_us
        {
            let max = tags.p999_us.unwrap_or(p50);
            let verdict = if max < 10_000.0 { "met" } else { "missed" };
            lines.push(format!(
                "invalidating a tag of 100 entries among {}: p50 {:.3} ms, max {:.3} ms (target < 10 ms): {verdict}",
                tags.variant,
                p50 / 1e3,
                max / 1e3
            ));
        }
        lines
    }
}

/// The order of the report's sections.
const ORDER: [&str; 7] = ["hit", "sizes", "zipf", "redis", "stampede", "growth", "tags"];

pub(crate) const PEERS: [&str; 4] = ["tower-http-cache", "hitbox-tower", "axum-response-cache", "http-cache-tower-server"];

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".to_owned(), |v| format!("{v:.decimals$}"))
}
