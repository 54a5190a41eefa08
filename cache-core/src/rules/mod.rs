//! What an app declares: policies and their keys, routes, tag templates,
//! TTLs, a handler's hints, and the policy table loaded from configuration.
//! Built on the HTTP vocabulary; knows nothing of the engine or the stores.

#[cfg(feature = "config")]
pub mod config;
pub(crate) mod hints;
pub mod key;
pub(crate) mod path_pattern;
pub mod policy;
pub(crate) mod route;
pub(crate) mod tags;
pub(crate) mod ttl;
