//! Side-by-side load benchmarks of the cache: the servers that the harness
//! (`src/main.rs`) starts and measures, and the origin they all serve.
//!
//! Every contender serves `GET /b/{size}/{key}`: `size` bytes made from
//! `key` (see [`origin::body`]), `Cache-Control: public, max-age=3600`, and
//! answers `GET /__calls` with the number of times its origin handler ran.
//! The cached contenders cache for the same TTL (1 hour).
//!
//! `cargo run --release --manifest-path bench/Cargo.toml -- --help`

pub mod contender;
pub mod origin;
pub mod peers;
