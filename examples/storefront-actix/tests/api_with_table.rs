//! storefront-actix with its policies from the storefront's `cache.toml`
//! behaves as with its in-code policies: every test of `api.rs` runs again
//! with the table.

/// The table every test in [`api`] runs with.
const CACHE_TABLE: Option<&str> = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../storefront/cache.toml"));

#[path = "api.rs"]
mod api;
