//! The store conformance suite against every store.

use cache_core::MokaStore;

#[tokio::test]
async fn moka_store_conforms() {
    cache_tests::conformance::run(MokaStore::new(), "").await;
}
