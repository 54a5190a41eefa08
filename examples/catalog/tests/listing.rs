//! Seeding, listing, filtering, searching and sorting.

use catalog::{Catalog, CatalogError, DEFAULT_PRODUCTS_PER_TENANT, ListQuery, Product, TENANTS};

fn open(products_per_tenant: u64) -> Catalog {
    Catalog::open(products_per_tenant).expect("an in-memory catalog opens")
}

fn sorted_by(sort: &str) -> ListQuery {
    ListQuery {
        sort: Some(sort.into()),
        ..ListQuery::default()
    }
}

/// Every product of `tenant` matching `query`, walking all pages of 100.
async fn all(catalog: &Catalog, tenant: &str, query: &ListQuery) -> Vec<Product> {
    let mut items = Vec::new();
    for page in 1.. {
        let query = ListQuery {
            page: Some(page),
            limit: Some(100),
            ..query.clone()
        };
        let page = catalog.list_products(tenant, &query).await.expect("listing works");
        if page.items.is_empty() {
            return items;
        }
        items.extend(page.items);
    }
    unreachable!("the page loop only ends by returning")
}

#[tokio::test]
async fn default_seed_has_every_tenant_fully_populated() {
    let catalog = open(DEFAULT_PRODUCTS_PER_TENANT);
    for tenant in TENANTS {
        let page = catalog.list_products(tenant, &ListQuery::default()).await.expect("listing works");
        assert_eq!(page.total, DEFAULT_PRODUCTS_PER_TENANT);
        let categories = catalog.categories(tenant).await.expect("categories work");
        assert_eq!(categories.len(), 12);
        assert!(categories.iter().all(|category| category.product_count > 100), "{categories:?}");
        let counted: u64 = categories.iter().map(|category| category.product_count).sum();
        assert_eq!(counted, DEFAULT_PRODUCTS_PER_TENANT);
        let last = catalog.product(tenant, DEFAULT_PRODUCTS_PER_TENANT).await.expect("lookup works");
        assert!(last.is_some());
    }
}

#[tokio::test]
async fn seeding_is_deterministic_and_catalogs_are_separate() {
    let (first, second) = (open(60), open(30));
    assert_eq!(
        all(&first, "globex", &ListQuery::default()).await[..30],
        all(&second, "globex", &ListQuery::default()).await[..]
    );
    assert_eq!(
        second
            .list_products("globex", &ListQuery::default())
            .await
            .expect("listing works")
            .total,
        30
    );
}

#[tokio::test]
async fn the_same_id_differs_across_tenants() {
    let catalog = open(50);
    let mut per_tenant = Vec::new();
    for tenant in TENANTS {
        let products = all(&catalog, tenant, &ListQuery::default()).await;
        assert!(products.iter().all(|product| product.tenant == tenant));
        assert_eq!(
            products.iter().map(|product| product.id).collect::<Vec<_>>(),
            (1..=50).collect::<Vec<_>>()
        );
        per_tenant.push(products);
    }
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let pairs = per_tenant[a].iter().zip(&per_tenant[b]);
        assert!(pairs.clone().all(|(x, y)| x.name != y.name));
        assert!(pairs.clone().filter(|(x, y)| x.price_cents != y.price_cents).count() > 40);
        assert!(pairs.filter(|(x, y)| x.category != y.category).count() > 30);
    }
    let acme = catalog_categories(&catalog, "acme").await;
    let initech = catalog_categories(&catalog, "initech").await;
    assert_ne!(
        acme.iter().map(|c| &c.id).collect::<Vec<_>>(),
        initech.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
}

async fn catalog_categories(catalog: &Catalog, tenant: &str) -> Vec<catalog::Category> {
    catalog.categories(tenant).await.expect("categories work")
}

#[tokio::test]
async fn pages_cover_every_product_once() {
    let catalog = open(95);
    let mut ids = Vec::new();
    for (page, expected_len) in [(1, 20), (2, 20), (3, 20), (4, 20), (5, 15), (6, 0)] {
        let query = ListQuery {
            page: Some(page),
            ..ListQuery::default()
        };
        let result = catalog.list_products("acme", &query).await.expect("listing works");
        assert_eq!((result.page, result.limit, result.total), (page, 20, 95));
        assert_eq!(result.items.len(), expected_len, "page {page}");
        ids.extend(result.items.iter().map(|product| product.id));
    }
    assert_eq!(ids, (1..=95).collect::<Vec<_>>());
}

#[tokio::test]
async fn limit_is_clamped() {
    let catalog = open(150);
    for (limit, expected) in [(0, 1), (7, 7), (101, 100), (u32::MAX, 100)] {
        let query = ListQuery {
            limit: Some(limit),
            ..ListQuery::default()
        };
        let page = catalog.list_products("initech", &query).await.expect("listing works");
        assert_eq!((page.limit as usize, page.items.len()), (expected, expected));
    }
}

#[tokio::test]
async fn category_filter_matches_category_counts() {
    let catalog = open(300);
    for category in catalog_categories(&catalog, "globex").await {
        let query = ListQuery {
            category: Some(category.id.clone()),
            ..ListQuery::default()
        };
        let products = all(&catalog, "globex", &query).await;
        assert_eq!(products.len() as u64, category.product_count);
        assert!(products.iter().all(|product| product.category == category.id));
        let page = catalog.list_products("globex", &query).await.expect("listing works");
        assert_eq!(page.total, category.product_count);
    }
    let unknown = ListQuery {
        category: Some("nope".into()),
        ..ListQuery::default()
    };
    let page = catalog.list_products("globex", &unknown).await.expect("listing works");
    assert_eq!((page.total, page.items.len()), (0, 0));
}

#[tokio::test]
async fn search_is_a_case_insensitive_name_substring() {
    let catalog = open(200);
    let everything = all(&catalog, "acme", &ListQuery::default()).await;
    let noun = everything[0].name.split(' ').nth(1).expect("names have several words").to_owned();
    let query = ListQuery {
        search: Some(noun.to_uppercase()),
        ..ListQuery::default()
    };
    let found = all(&catalog, "acme", &query).await;
    let expected: Vec<_> = everything
        .iter()
        .filter(|product| product.name.to_lowercase().contains(&noun.to_lowercase()))
        .cloned()
        .collect();
    assert!(found.contains(&everything[0]));
    assert_eq!(found, expected);
    let page = catalog.list_products("acme", &query).await.expect("listing works");
    assert_eq!(page.total, expected.len() as u64);
    for literal in ["%", "_", "no such product"] {
        let query = ListQuery {
            search: Some(literal.into()),
            ..ListQuery::default()
        };
        assert_eq!(
            catalog.list_products("acme", &query).await.expect("listing works").total,
            0,
            "{literal}"
        );
    }
}

#[tokio::test]
async fn search_and_category_combine() {
    let catalog = open(200);
    let first = catalog.product("initech", 1).await.expect("lookup works").expect("id 1 exists");
    let query = ListQuery {
        category: Some(first.category.clone()),
        search: Some("-".into()),
        ..ListQuery::default()
    };
    let found = all(&catalog, "initech", &query).await;
    assert!(found.contains(&first));
    assert!(found.iter().all(|product| product.category == first.category));
}

/// How a sort order compares two products, before the id tie-breaker.
type ProductOrder = fn(&Product, &Product) -> std::cmp::Ordering;

#[tokio::test]
async fn every_sort_order_is_applied_with_id_as_tie_breaker() {
    let catalog = open(180);
    let by_id = all(&catalog, "globex", &ListQuery::default()).await;
    assert_eq!(all(&catalog, "globex", &sorted_by("id")).await, by_id);
    let orders: [(&str, ProductOrder); 4] = [
        ("name", |a, b| a.name.cmp(&b.name)),
        ("-name", |a, b| b.name.cmp(&a.name)),
        ("price", |a, b| a.price_cents.cmp(&b.price_cents)),
        ("-price", |a, b| b.price_cents.cmp(&a.price_cents)),
    ];
    for (sort, order) in orders {
        let mut expected = by_id.clone();
        expected.sort_by(|a, b| order(a, b).then(a.id.cmp(&b.id)));
        assert_eq!(all(&catalog, "globex", &sorted_by(sort)).await, expected, "sort {sort}");
    }
    let cheapest = catalog.list_products("globex", &sorted_by("price")).await.expect("listing works");
    let dearest = catalog.list_products("globex", &sorted_by("-price")).await.expect("listing works");
    assert!(cheapest.items[0].price_cents < dearest.items[0].price_cents);
}

#[tokio::test]
async fn invalid_queries_are_rejected_before_the_database() {
    let catalog = open(10);
    for sort in ["price desc", "ID", "-id", "random"] {
        let result = catalog.list_products("acme", &sorted_by(sort)).await;
        assert!(matches!(result, Err(CatalogError::InvalidQuery(_))), "{sort}: {result:?}");
    }
    let page_zero = ListQuery {
        page: Some(0),
        ..ListQuery::default()
    };
    assert!(matches!(
        catalog.list_products("acme", &page_zero).await,
        Err(CatalogError::InvalidQuery(_))
    ));
    assert_eq!(catalog.queries(), 0);
}

#[tokio::test]
async fn unknown_tenants_are_rejected_by_every_method() {
    let catalog = open(10);
    let unknown = |result: Result<(), CatalogError>| matches!(result, Err(CatalogError::UnknownTenant(t)) if t == "umbrella");
    assert!(unknown(catalog.list_products("umbrella", &ListQuery::default()).await.map(drop)));
    assert!(unknown(catalog.product("umbrella", 1).await.map(drop)));
    assert!(unknown(catalog.update_product("umbrella", 1, &Default::default()).await.map(drop)));
    assert!(unknown(catalog.categories("umbrella").await.map(drop)));
    assert!(catalog.product("ACME", 1).await.is_err());
    assert_eq!(catalog.queries(), 0);
}

#[tokio::test]
async fn missing_products_are_none() {
    let catalog = open(10);
    for id in [0, 11, i64::MAX as u64, u64::MAX] {
        assert_eq!(catalog.product("acme", id).await.expect("lookup works"), None, "id {id}");
    }
    assert!(catalog.product("acme", 10).await.expect("lookup works").is_some());
}

#[test]
fn errors_have_clear_messages() {
    assert_eq!(
        CatalogError::UnknownTenant("umbrella".into()).to_string(),
        "unknown tenant `umbrella`"
    );
    assert_eq!(CatalogError::InvalidQuery("bad".into()).to_string(), "invalid query: bad");
    assert_eq!(CatalogError::InvalidUpdate("bad".into()).to_string(), "invalid update: bad");
}

#[test]
fn popular_ids_are_the_first_existing_ids() {
    let catalog = open(5);
    assert_eq!(catalog.popular_product_ids(3), vec![1, 2, 3]);
    assert_eq!(catalog.popular_product_ids(50), vec![1, 2, 3, 4, 5]);
    assert!(catalog.popular_product_ids(0).is_empty());
}

#[test]
fn products_serialize_as_plain_json() {
    let product = Product {
        id: 7,
        tenant: "acme".into(),
        name: "Kettle".into(),
        category: "kitchen".into(),
        price_cents: 1999,
        description: "Hot.".into(),
    };
    let json = serde_json::to_value(&product).expect("products serialize");
    assert_eq!(json["price_cents"], 1999);
    assert_eq!(serde_json::from_value::<Product>(json).expect("and deserialize"), product);
}
