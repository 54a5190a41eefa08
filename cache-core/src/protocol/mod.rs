//! The HTTP vocabulary: `Cache-Control`, `Cache-Status`, conditional
//! requests, methods, percent-encoding and the body the cache answers with.
//! Knows nothing of policies, keys or stores.

pub(crate) mod body;
pub mod cache_control;
pub mod cache_status;
pub mod conditional;
pub(crate) mod method;
pub(crate) mod percent;
