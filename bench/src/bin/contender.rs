//! Runs one Rust contender of the side-by-side benchmarks; the harness
//! (`bench`) starts it.
//!
//! `contender moka --listen 127.0.0.1:4000 [--delay-ms 100] [--redis URL]`

use std::{net::SocketAddr, time::Duration};

use bench::contender::{self, Kind, Options};
use clap::Parser;

/// One contender serving `GET /b/{size}/{key}` and `GET /__calls`.
#[derive(Debug, Parser)]
struct Args {
    /// Which contender.
    #[arg(value_enum)]
    kind: Kind,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4000")]
    listen: SocketAddr,
    /// Milliseconds each origin call waits.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Redis URL, for the Redis and tiered contenders.
    #[arg(long)]
    redis: Option<String>,
    /// Key prefix in Redis.
    #[arg(long, default_value = "bench:")]
    redis_prefix: String,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Bytes of the in-memory stores.
    #[arg(long, default_value_t = 2 << 30)]
    capacity: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = Options {
        listen: args.listen,
        delay: Duration::from_millis(args.delay_ms),
        redis: args.redis,
        redis_prefix: args.redis_prefix,
        workers: args.workers,
        capacity: args.capacity,
    };
    if args.kind.is_actix() {
        return contender::serve_actix(args.kind, &options);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?
        .block_on(contender::serve_axum(args.kind, &options))
}
