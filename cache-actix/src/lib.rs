//! actix-web middleware for server-side HTTP response caching.
//!
//! This crate will hold the actix-web `Transform` and middleware that serve
//! requests through the same `cache-core` engine as the tower and axum
//! adapters, mounted with `.wrap(...)` on an `App`, a `scope` or a
//! `resource`. It has no public items yet: use `cache-axum` or
//! `cache-tower` until it lands.
