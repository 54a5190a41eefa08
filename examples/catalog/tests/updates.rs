//! Updates: validation, visibility and tenant isolation.

use catalog::{Catalog, CatalogError, ListQuery, ProductUpdate};

fn open(products_per_tenant: u64) -> Catalog {
    Catalog::open(products_per_tenant).expect("an in-memory catalog opens")
}

async fn product(catalog: &Catalog, tenant: &str, id: u64) -> catalog::Product {
    catalog
        .product(tenant, id)
        .await
        .expect("lookup works")
        .expect("the product exists")
}

async fn count(catalog: &Catalog, tenant: &str, category: &str) -> u64 {
    let categories = catalog.categories(tenant).await.expect("categories work");
    categories.iter().find(|c| c.id == category).map_or(0, |c| c.product_count)
}

/// A category of `tenant` other than `current`.
async fn other_category(catalog: &Catalog, tenant: &str, current: &str) -> String {
    let categories = catalog.categories(tenant).await.expect("categories work");
    categories
        .into_iter()
        .map(|c| c.id)
        .find(|id| id != current)
        .expect("tenants have several categories")
}

#[tokio::test]
async fn an_update_is_visible_to_later_reads_of_its_tenant_only() {
    let catalog = open(100);
    let before = product(&catalog, "acme", 5).await;
    let globex_before = product(&catalog, "globex", 5).await;
    let category = other_category(&catalog, "acme", &before.category).await;
    let (old_count, new_count) = (
        count(&catalog, "acme", &before.category).await,
        count(&catalog, "acme", &category).await,
    );
    let update = ProductUpdate {
        name: Some("Zeppelin".into()),
        category: Some(category.clone()),
        price_cents: Some(0),
    };

    let updated = catalog
        .update_product("acme", 5, &update)
        .await
        .expect("update works")
        .expect("product 5 exists");

    assert_eq!(
        (updated.id, updated.name.as_str(), updated.category.as_str(), updated.price_cents),
        (5, "Zeppelin", category.as_str(), 0)
    );
    assert_eq!(updated.description, before.description);
    assert_eq!(product(&catalog, "acme", 5).await, updated);
    assert_eq!(product(&catalog, "globex", 5).await, globex_before);
    assert_eq!(count(&catalog, "acme", &before.category).await, old_count - 1);
    assert_eq!(count(&catalog, "acme", &category).await, new_count + 1);
    let cheapest = ListQuery {
        sort: Some("price".into()),
        limit: Some(1),
        ..ListQuery::default()
    };
    let page = catalog.list_products("acme", &cheapest).await.expect("listing works");
    assert_eq!(page.items, vec![updated.clone()]);
    let search = ListQuery {
        search: Some("zeppelin".into()),
        ..ListQuery::default()
    };
    for tenant in ["acme", "globex"] {
        let found = catalog.list_products(tenant, &search).await.expect("listing works");
        assert_eq!(found.total, u64::from(tenant == "acme"), "{tenant}");
    }
}

#[tokio::test]
async fn a_partial_update_keeps_the_other_fields() {
    let catalog = open(20);
    let before = product(&catalog, "initech", 3).await;
    let update = ProductUpdate {
        price_cents: Some(123_456),
        ..ProductUpdate::default()
    };
    let after = catalog
        .update_product("initech", 3, &update)
        .await
        .expect("update works")
        .expect("product 3 exists");
    assert_eq!(
        after,
        catalog::Product {
            price_cents: 123_456,
            ..before.clone()
        }
    );
    let noop = catalog
        .update_product("initech", 3, &ProductUpdate::default())
        .await
        .expect("update works");
    assert_eq!(noop, Some(after));
}

#[tokio::test]
async fn invalid_updates_are_rejected_and_change_nothing() {
    let catalog = open(20);
    let before = product(&catalog, "acme", 1).await;
    // `baby` is one of initech's categories, not one of acme's.
    assert!(
        catalog
            .categories("initech")
            .await
            .expect("categories work")
            .iter()
            .any(|c| c.id == "baby")
    );
    let invalid = [
        ProductUpdate {
            name: Some(String::new()),
            ..ProductUpdate::default()
        },
        ProductUpdate {
            name: Some("  ".into()),
            ..ProductUpdate::default()
        },
        ProductUpdate {
            name: Some("n".repeat(201)),
            ..ProductUpdate::default()
        },
        ProductUpdate {
            price_cents: Some(-1),
            ..ProductUpdate::default()
        },
        ProductUpdate {
            category: Some("nope".into()),
            ..ProductUpdate::default()
        },
        ProductUpdate {
            category: Some("baby".into()),
            name: Some("Valid".into()),
            ..ProductUpdate::default()
        },
    ];
    for update in &invalid {
        let result = catalog.update_product("acme", 1, update).await;
        assert!(matches!(result, Err(CatalogError::InvalidUpdate(_))), "{update:?}: {result:?}");
    }
    assert_eq!(product(&catalog, "acme", 1).await, before);
    let longest = ProductUpdate {
        name: Some("n".repeat(200)),
        ..ProductUpdate::default()
    };
    assert!(catalog.update_product("acme", 1, &longest).await.is_ok());
}

#[tokio::test]
async fn updating_a_missing_product_is_none() {
    let catalog = open(20);
    let update = ProductUpdate {
        price_cents: Some(1),
        ..ProductUpdate::default()
    };
    for id in [0, 21, u64::MAX] {
        assert_eq!(catalog.update_product("globex", id, &update).await.expect("update works"), None);
    }
    assert_eq!(
        catalog
            .list_products("globex", &ListQuery::default())
            .await
            .expect("listing works")
            .total,
        20
    );
}

#[test]
fn updates_reject_unknown_fields() {
    let ok: ProductUpdate = serde_json::from_str(r#"{"name":"Lamp","price_cents":5}"#).expect("known fields parse");
    assert_eq!((ok.name.as_deref(), ok.category, ok.price_cents), (Some("Lamp"), None, Some(5)));
    assert!(serde_json::from_str::<ProductUpdate>(r#"{"price":5}"#).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_are_visible_on_every_pooled_connection() {
    let catalog = open(50);
    for round in 1..=5_i64 {
        let update = ProductUpdate {
            price_cents: Some(round),
            ..ProductUpdate::default()
        };
        catalog.update_product("globex", 9, &update).await.expect("update works");
        let reads: Vec<_> = (0..32)
            .map(|_| {
                let catalog = catalog.clone();
                tokio::spawn(async move { product(&catalog, "globex", 9).await.price_cents })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.expect("the read task completes"), round);
        }
    }
}
