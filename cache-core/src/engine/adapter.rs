//! What framework adapters use: the two steps of serving a request, and
//! the route selection of a [`Policies`](crate::Policies) table.
//!
//! An adapter (`cache-tower`, `cache-axum`, `cache-actix`, or one for
//! another framework) selects the request's policy
//! ([`Policies::select`](crate::Policies::select)), then calls
//! [`Cache::begin`](crate::Cache::begin) with the request's head: a fresh
//! entry held in this process answers at once ([`Begun::Ready`]);
//! otherwise the head goes into an [`Exchange`] ([`Missed::exchange`]),
//! and [`Exchange::serve`] takes the request's body and the origin
//! (the wrapped service) and returns the response, how the cache came to it
//! and, when the adapter asked for background refreshes, a [`Refresh`] to
//! spawn. Applications need none of this.

pub use crate::engine::{Begun, Exchange, HitHead, MAX_REFRESHES, Missed, Ready, Refresh, Served};
pub use crate::route::{ParamsFn, Selection};
