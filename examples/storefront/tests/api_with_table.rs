//! The storefront with its policies from `cache.toml` behaves as with its
//! in-code policies: every test of `api.rs` runs again with the table, and
//! the table's policies are the in-code ones, field for field.

use cache_axum::{CachePolicy, Policies};
use http::Method;
use storefront::{CATEGORIES, PRODUCT, PRODUCTS, policies};

/// The table every test in [`api`] runs with.
const CACHE_TABLE: Option<&str> = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/cache.toml"));

#[path = "api.rs"]
mod api;

fn table() -> Policies {
    Policies::from_toml_file(CACHE_TABLE.expect("a table")).expect("cache.toml loads")
}

#[test]
fn the_table_holds_the_in_code_policies() {
    let table = table();
    let cases: [(&str, &str, CachePolicy); 3] = [
        (PRODUCT, "/api/v1/products/42", policies::product()),
        (PRODUCTS, "/api/v1/products", policies::product_list()),
        (CATEGORIES, "/api/v1/categories", policies::categories()),
    ];
    for (pattern, path, in_code) in cases {
        // Chosen by the pattern axum matched, and by the path alone.
        for matched in [Some(pattern), None] {
            let selected = table.select(matched, &Method::GET, path).expect("a policy for the route");
            // Labels (the metrics' `route`) included: both are the pattern.
            assert_eq!(format!("{:?}", selected.policy()), format!("{in_code:?}"), "{pattern}");
        }
    }
    for uncached in ["/", "/api/v1/orders", "/api/v1/products/42/reviews"] {
        assert!(table.select(None, &Method::GET, uncached).is_none(), "{uncached}");
    }
}
