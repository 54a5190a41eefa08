//! The behaviour suite through the actix-web adapter.

use cache_tests::actix_adapter::Actix;

cache_tests::behaviour_suite!(Actix);
