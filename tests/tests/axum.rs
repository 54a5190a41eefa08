//! The behaviour suite through the axum adapter.

use cache_tests::axum_adapter::Axum;

cache_tests::behaviour_suite!(Axum);
