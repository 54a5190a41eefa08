//! The cold-key stampede: N connections opened first, then one request on
//! each for the same fresh key, all at once; the origin calls it caused are
//! read from the contender's counter.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Barrier,
};

use crate::http;

/// What one stampede did.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) origin_calls: u64,
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    /// When each successful request got its answer, in microseconds from
    /// the first request's start, sorted.
    pub(crate) latencies_us: Vec<u64>,
}

/// `concurrency` requests for `path` at once against `addr`.
pub(crate) fn run(addr: SocketAddr, calls_addr: SocketAddr, path: &str, concurrency: usize) -> anyhow::Result<Outcome> {
    let before = http::calls(calls_addr)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let results = runtime.block_on(fire(addr, path, concurrency))?;
    // Let a cache that stores after answering finish storing.
    std::thread::sleep(Duration::from_millis(200));
    let after = http::calls(calls_addr)?;
    // Latency from the first request's start: when each answer arrived.
    let first = results.iter().filter_map(|r| r.as_ref().ok().map(|(start, _)| *start)).min();
    let mut latencies_us: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter_map(|(_, end)| first.map(|first| end.duration_since(first).as_micros() as u64))
        .collect();
    latencies_us.sort_unstable();
    Ok(Outcome {
        origin_calls: after - before,
        ok: latencies_us.len(),
        failed: results.len() - latencies_us.len(),
        latencies_us,
    })
}

type Timed = Result<(Instant, Instant), String>;

async fn fire(addr: SocketAddr, path: &str, concurrency: usize) -> anyhow::Result<Vec<Timed>> {
    let mut streams = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let stream = TcpStream::connect(addr).await.context("opening the stampede's connections")?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    let barrier = Arc::new(Barrier::new(concurrency));
    let request: Arc<[u8]> = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes().into();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            let (barrier, request) = (Arc::clone(&barrier), Arc::clone(&request));
            tokio::spawn(async move {
                barrier.wait().await;
                let start = Instant::now();
                let outcome = tokio::time::timeout(Duration::from_secs(30), one(stream, &request)).await;
                match outcome {
                    Ok(Ok(200)) => Ok((start, Instant::now())),
                    Ok(Ok(status)) => Err(format!("status {status}")),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("timed out".to_owned()),
                }
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    Ok(results)
}

/// Sends the request and reads the whole response; returns its status.
async fn one(mut stream: TcpStream, request: &[u8]) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = vec![0; 64 * 1024];
    let (head_end, status, length, chunked) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the headers"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let chunked = head.contains("transfer-encoding: chunked");
            break (end + 4, status, length, chunked);
        }
    };
    loop {
        let body = &buf[head_end..];
        let complete = match length {
            Some(length) => body.len() >= length,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => true,
        };
        if complete {
            return Ok(status);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the body's end"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
