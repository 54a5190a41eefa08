//! The behaviour suite of the cache, through real HTTP.
//!
//! [`origin`] is a scripted origin, independent of any web framework, that
//! counts the requests it receives. Each adapter mounts it behind the cache
//! (see [`axum_adapter`] and [`actix_adapter`]) and [`suite`] holds the tests, written once against
//! the [`Adapter`] trait; `tests/*.rs` instantiate them per adapter with
//! [`behaviour_suite!`]. [`conformance`] is the suite every store passes.

#![allow(missing_debug_implementations)] // test harness types hold streams and clients

pub mod actix_adapter;
pub mod axum_adapter;
pub mod conformance;
pub mod consistency;
pub mod fault_proxy;
pub mod origin;
pub mod purge;
pub mod redis_server;
pub mod server;
pub mod stores;
pub mod suite;
pub mod support;

pub use server::{Adapter, Server};

/// Declares one `#[tokio::test]` per behaviour test, for an adapter.
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
    ($adapter:ty) => {
        $crate::behaviour_suite!($adapter;
            miss_then_hit,
            tenants_are_isolated,
            etag_and_304,
            if_modified_since_304,
            head_is_served_from_get,
            uncacheable_responses_are_not_stored,
            authorization_is_not_shared,
            principal_keyed_responses,
            policy_vary_keeps_variants,
            response_vary_is_honoured,
            query_order_is_normalised,
            large_streaming_body_passes_through,
            stampede_makes_one_origin_call,
            cancelled_leader_hands_over,
            uncacheable_response_does_not_queue_waiters,
            handler_invalidates_tags,
            unsafe_method_invalidates_uri_and_route_tags,
            aliases_share_keys_and_tags,
            query_bytes_are_keyed,
            handler_hints_set_ttl_and_tags,
            entries_expire,
            per_status_ttl,
            downstream_cache_control,
            failing_store_passes_through,
            corrupt_store_is_a_miss,
            uncached_route_is_untouched,
            request_no_store_is_not_stored_and_keeps_coalescing,
            collapsed_requests_respect_vary,
            invalidation_during_a_fetch_wins,
            waiters_of_an_invalidated_fetch_share_one_fetch,
            stale_while_revalidate,
            stale_if_error,
            stale_entries_are_revalidated,
            personal_304s_are_not_stored,
            cache_status_appends_its_member,
            unparseable_directives_fail_closed,
            unkeyed_request_parts_do_not_shape_stored_responses,
            tags_and_cdn_headers_go_downstream,
            cdn_cache_control_target,
            cdn_cache_control_forbids_stale,
            early_refresh,
            debug_keys_in_cache_status,
            toml_table,
        );
    };
}
