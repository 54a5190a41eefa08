//! The `redis` workload: hit latency at one connection, one request at a
//! time, of moka, redis and tiered on the hot 1 KiB key, against a raw
//! Redis `GET` of a value as large as the entry the redis contender stores
//! for that key, on the same redis-server.
//!
//! The contenders are measured by `wrk -t1 -c1`, as the other workloads
//! are. The raw `GET` comes from the harness itself, started again as
//! `bench --raw-get ADDR --duration D` on the client core (as wrk is): one
//! connection, a blocking RESP client that writes `GET` and reads the whole
//! reply before the next, each round trip timed into an hdrhistogram, and
//! the same `BENCHJSON` summary as wrk's `done` hook.

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use anyhow::Context;
use bench::{contender::Kind, origin::HOT_KEY};
use hdrhistogram::Histogram;

use crate::{
    Args, Measured, http, measure, median_record,
    procs::{CLIENT_CORE, Contender, Env, redis_prefix, wait_until},
    progress,
    report::Record,
    wrk::{self, Paths},
};

/// The contender name of the raw `GET` in the records.
pub(crate) const RAW_GET: &str = "redis GET";
/// The body size of the contenders' requests.
const BODY: (usize, &str) = (1024, "1 KiB");
/// The key the raw `GET` reads: outside every contender's prefix.
const RAW_KEY: &str = "bench-raw-get";

/// The workload: per round, the raw `GET` then each of moka, redis and
/// tiered that is selected; the median round of each is kept.
pub(crate) fn workload(args: &Args, env: &mut Env, contenders: &[Contender]) -> anyhow::Result<Vec<Record>> {
    let contenders: Vec<Contender> = contenders
        .iter()
        .copied()
        .filter(|c| matches!(c, Contender::Rust(Kind::Moka | Kind::Redis | Kind::Tiered)))
        .collect();
    let path = format!("/b/{}/{HOT_KEY}", BODY.0);
    let bar = progress(1 + u64::from(args.rounds) * (contenders.len() as u64 + 1));
    bar.set_message(format!("the redis contender's entry for {path}"));
    let value = stored_entry(env, &path)?;
    bar.inc(1);
    let paths = Paths::One(path);
    let variant = format!("{} B value", value.len());
    // outcomes[0]: the raw GET; outcomes[i + 1]: contenders[i].
    let mut outcomes: Vec<Vec<anyhow::Result<Measured>>> = (0..=contenders.len()).map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        bar.set_message(format!("round {} {RAW_GET}", round + 1));
        outcomes[0].push(raw_get(args, env, &value));
        bar.inc(1);
        for (i, &contender) in contenders.iter().enumerate() {
            bar.set_message(format!("round {} {contender}", round + 1));
            outcomes[i + 1].push(measure(args, env, contender, &paths, 1));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let names = std::iter::once((RAW_GET.to_owned(), variant.as_str())).chain(contenders.iter().map(|c| (c.to_string(), BODY.1)));
    Ok(names
        .zip(&outcomes)
        .map(|((name, variant), outcomes)| median_record(&name, variant, &outcomes.iter().collect::<Vec<_>>()))
        .collect())
}

/// The bytes the redis contender stores in Redis for `path`: found with
/// `SCAN` after one request (the store may write after answering).
fn stored_entry(env: &mut Env, path: &str) -> anyhow::Result<Vec<u8>> {
    let server = env.start(Contender::Rust(Kind::Redis), 0)?;
    let reply = http::get(server.addr, path)?;
    anyhow::ensure!(
        reply.status == 200 && reply.body.len() == BODY.0,
        "GET {path} on the redis contender: status {}, {} bytes",
        reply.status,
        reply.body.len()
    );
    let mut redis = Resp::connect(env.redis_addr()?)?;
    let pattern = format!("{}{{????????}}e:*", redis_prefix(server.addr.port()));
    let mut keys = Vec::new();
    let found = wait_until(Duration::from_secs(5), || {
        keys = redis.scan(&pattern).unwrap_or_default();
        !keys.is_empty()
    });
    server.stop();
    found.with_context(|| format!("no entry matching {pattern} in Redis after GET {path}"))?;
    anyhow::ensure!(keys.len() == 1, "one entry expected for {path}, found {keys:?}");
    let Reply::Bulk(Some(value)) = redis.command(&[b"GET", &keys[0]])? else {
        anyhow::bail!("{} vanished from Redis", String::from_utf8_lossy(&keys[0]));
    };
    let Reply::Int(len) = redis.command(&[b"STRLEN", &keys[0]])? else {
        anyhow::bail!("STRLEN answered no integer");
    };
    anyhow::ensure!(
        usize::try_from(len) == Ok(value.len()),
        "STRLEN {len} for a value of {} bytes",
        value.len()
    );
    Ok(value)
}

/// One measurement of the raw `GET`: writes `value` under [`RAW_KEY`]
/// (each contender start flushes Redis), then runs the client for the
/// warmup and for the measurement, on the client core.
fn raw_get(args: &Args, env: &mut Env, value: &[u8]) -> anyhow::Result<Measured> {
    let addr = env.redis_addr()?;
    let mut redis = Resp::connect(addr)?;
    redis.command(&[b"SET", RAW_KEY.as_bytes(), value])?;
    let Reply::Int(len) = redis.command(&[b"STRLEN", RAW_KEY.as_bytes()])? else {
        anyhow::bail!("STRLEN answered no integer");
    };
    anyhow::ensure!(
        usize::try_from(len) == Ok(value.len()),
        "{RAW_KEY} holds {len} bytes, not {}",
        value.len()
    );
    drop(redis);
    let run = |duration: &str| {
        let exe = std::env::current_exe()?;
        let output = env
            .command(CLIENT_CORE, exe)
            .args(["--raw-get", &addr.to_string(), "--duration", duration])
            .output()
            .context("running the raw GET client")?;
        wrk::summary(&output, "the raw GET client")
    };
    run(&args.warmup)?;
    let summary = run(&args.duration)?;
    Ok(Measured {
        summary,
        origin_calls: None,
        peak_rss_mib: None,
    })
}

/// The raw `GET` client (`bench --raw-get ADDR`): `GET` [`RAW_KEY`] on one
/// connection, one request at a time, for `duration`; prints the summary.
pub(crate) fn raw_get_client(addr: SocketAddr, duration: &str) -> anyhow::Result<()> {
    let duration = parse_duration(duration)?;
    let mut redis = Resp::connect(addr)?;
    let request = Resp::request(&[b"GET", RAW_KEY.as_bytes()]);
    let mut histogram = Histogram::<u64>::new(3)?;
    let (mut requests, mut errors) = (0u64, 0u64);
    let start = Instant::now();
    let end = start + duration;
    loop {
        let sent = Instant::now();
        redis.writer.write_all(&request)?;
        let reply = read_reply(&mut redis.reader)?;
        let done = Instant::now();
        histogram.record(u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX))?;
        requests += 1;
        if !matches!(reply, Reply::Bulk(Some(_))) {
            errors += 1;
        }
        if done >= end {
            break;
        }
    }
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1e3;
    let summary = serde_json::json!({
        "requests": requests,
        "duration_us": u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        "errors": errors,
        "p50_us": us(0.5),
        "p99_us": us(0.99),
        "p999_us": us(0.999),
    });
    println!("BENCHJSON {summary}");
    Ok(())
}

/// A duration as wrk takes it: `500ms`, `10s`, `2m`, `1h`, or seconds.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().with_context(|| format!("a duration: {text:?}"))?;
    let seconds = match unit {
        "ms" => number / 1e3,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => anyhow::bail!("a duration: {text:?} (units: ms, s, m, h)"),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// A RESP2 reply.
#[derive(Debug)]
enum Reply {
    Simple,
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// A Redis connection speaking RESP2.
#[derive(Debug)]
struct Resp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Resp {
    fn connect(addr: SocketAddr) -> anyhow::Result<Resp> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).with_context(|| format!("connecting to Redis at {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Resp {
            reader: BufReader::with_capacity(1 << 16, stream.try_clone()?),
            writer: stream,
        })
    }

    fn request(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn command(&mut self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        self.writer.write_all(&Resp::request(args))?;
        read_reply(&mut self.reader)
    }

    /// Every key matching `pattern`.
    fn scan(&mut self, pattern: &str) -> anyhow::Result<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        let mut cursor = b"0".to_vec();
        loop {
            let reply = self.command(&[b"SCAN", &cursor, b"MATCH", pattern.as_bytes(), b"COUNT", b"1000"])?;
            let Reply::Array(parts) = reply else {
                anyhow::bail!("SCAN answered {reply:?}");
            };
            let Ok([Reply::Bulk(Some(next)), Reply::Array(found)]) = <[Reply; 2]>::try_from(parts) else {
                anyhow::bail!("SCAN answered no cursor and keys");
            };
            keys.extend(found.into_iter().filter_map(|k| match k {
                Reply::Bulk(Some(k)) => Some(k),
                _ => None,
            }));
            if next == b"0" {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}

/// Reads one reply; an error reply is an error.
fn read_reply(reader: &mut impl BufRead) -> anyhow::Result<Reply> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let Some(head) = line.strip_suffix(b"\r\n").filter(|h| !h.is_empty()) else {
        anyhow::bail!("Redis closed the connection or sent {:?}", String::from_utf8_lossy(&line));
    };
    let rest = std::str::from_utf8(&head[1..])?;
    let number = || rest.parse::<i64>().with_context(|| format!("a RESP length: {rest:?}"));
    Ok(match head[0] {
        b'+' => Reply::Simple,
        b'-' => anyhow::bail!("redis: {rest}"),
        b':' => Reply::Int(number()?),
        b'$' => match usize::try_from(number()?) {
            Ok(len) => {
                let mut value = vec![0; len + 2];
                reader.read_exact(&mut value)?;
                value.truncate(len);
                Reply::Bulk(Some(value))
            }
            Err(_) => Reply::Bulk(None),
        },
        b'*' => {
            let len = usize::try_from(number()?).unwrap_or(0);
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(read_reply(reader)?);
            }
            Reply::Array(items)
        }
        other => anyhow::bail!("unknown RESP type {:?}", char::from(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_wrk_takes_them() {
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("3x").is_err());
    }

    #[test]
    fn replies_parse() {
        let mut raw: &[u8] = b"*2\r\n$1\r\n0\r\n*2\r\n$4\r\na\r\nb\r\n$-1\r\n:42\r\n+OK\r\n-ERR no\r\n";
        let Reply::Array(parts) = read_reply(&mut raw).unwrap() else {
            panic!("no array")
        };
        assert!(matches!(&parts[..], [Reply::Bulk(Some(c)), Reply::Array(keys)]
            if c == b"0" && matches!(&keys[..], [Reply::Bulk(Some(k)), Reply::Bulk(None)] if k == b"a\r\nb")));
        assert!(matches!(read_reply(&mut raw).unwrap(), Reply::Int(42)));
        assert!(matches!(read_reply(&mut raw).unwrap(), Reply::Simple));
        assert!(read_reply(&mut raw).is_err());
        assert!(read_reply(&mut raw).is_err());
    }
}
