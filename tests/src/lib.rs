//! The behaviour suite of the cache, through real HTTP.
//!
//! [`origin`] is a scripted origin, independent of any web framework, that
//! counts the requests it receives. Each adapter mounts it behind the cache
//! (see [`axum_adapter`] and [`actix_adapter`]) and [`suite`] holds the tests, written once against
//! the [`Adapter`] trait; `tests/*.rs` instantiate them per adapter with
//! [`behaviour_suite!`]. [`conformance`] is the suite every store passes.

#![allow(missing_debug_implementations)] // test harness types hold streams and clients

pub mod actix_adapter;
pub mod app;
pub mod axum_adapter;
pub mod conformance;
pub mod consistency;
pub mod fault_proxy;
pub mod handlers;
pub mod origin;
pub mod purge;
pub mod redis_server;
pub mod server;
pub mod stores;
pub mod suite;
pub mod support;

pub use app::App;
pub use server::{Adapter, Server};

include!(concat!(env!("OUT_DIR"), "/behaviour_tests.rs"));

/// Declares one `#[tokio::test]` per behaviour test, for an adapter: the
/// given ones, or every test of [`suite`].
#[macro_export]
macro_rules! behaviour_suite {
    ($adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::suite::$name::<$adapter>().await;
            }
        )*
    };
    // Every `pub async fn name<A: Adapter>()` of the suite, listed by
    // build.rs.
    ($adapter:ty) => {
        $crate::__behaviour_tests!($adapter);
    };
}
