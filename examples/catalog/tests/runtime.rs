//! Query counting, simulated latency and behaviour under concurrent load.

use std::time::Duration;

use catalog::{Catalog, ListQuery, ProductUpdate, TENANTS};
use tokio::time::Instant;

const LATENCY: Duration = Duration::from_millis(40);

fn open(products_per_tenant: u64) -> Catalog {
    Catalog::open(products_per_tenant).expect("an in-memory catalog opens")
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn futures_are_send_and_the_catalog_is_shareable() {
    fn assert_shareable<T: Send + Sync + Clone + 'static>() {}
    assert_shareable::<Catalog>();
    let catalog = open(1);
    let query = ListQuery::default();
    let update = ProductUpdate::default();
    assert_send(&catalog.list_products("acme", &query));
    assert_send(&catalog.product("acme", 1));
    assert_send(&catalog.update_product("acme", 1, &update));
    assert_send(&catalog.categories("acme"));
}

#[tokio::test]
async fn every_database_call_counts_once_and_clones_share_the_count() {
    let catalog = open(30);
    let clone = catalog.clone().with_latency(Duration::ZERO);
    assert_eq!(catalog.queries(), 0);
    catalog.list_products("acme", &ListQuery::default()).await.expect("listing works");
    catalog.product("acme", 1).await.expect("lookup works");
    clone.product("acme", 999).await.expect("lookup works");
    clone.categories("globex").await.expect("categories work");
    let update = ProductUpdate {
        price_cents: Some(5),
        ..ProductUpdate::default()
    };
    catalog.update_product("initech", 2, &update).await.expect("update works");
    assert_eq!((catalog.queries(), clone.queries()), (5, 5));
    assert_eq!(open(1).queries(), 0);
}

#[tokio::test(start_paused = true)]
async fn latency_is_waited_before_each_query() {
    let catalog = open(10).with_latency(LATENCY);
    let task = tokio::spawn({
        let catalog = catalog.clone();
        async move { catalog.product("acme", 1).await }
    });
    tokio::task::yield_now().await;
    tokio::time::advance(LATENCY - Duration::from_millis(1)).await;
    assert!(!task.is_finished());
    assert_eq!(catalog.queries(), 0, "the query waits for the latency first");
    tokio::time::advance(Duration::from_millis(1)).await;
    let product = task.await.expect("the task completes").expect("lookup works");
    assert!(product.is_some());
    assert_eq!(catalog.queries(), 1);
}

#[tokio::test(start_paused = true)]
async fn sequential_queries_each_pay_the_latency() {
    let catalog = open(10).with_latency(LATENCY);
    let start = Instant::now();
    catalog.categories("acme").await.expect("categories work");
    catalog.list_products("acme", &ListQuery::default()).await.expect("listing works");
    catalog
        .update_product("acme", 1, &ProductUpdate::default())
        .await
        .expect("update works");
    assert!(start.elapsed() >= LATENCY * 3, "{:?}", start.elapsed());
    assert!(start.elapsed() < LATENCY * 4, "{:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn concurrent_queries_overlap_their_latency() {
    let catalog = open(10).with_latency(LATENCY);
    let start = Instant::now();
    let tasks: Vec<_> = (1..=100)
        .map(|id| {
            let catalog = catalog.clone();
            tokio::spawn(async move { catalog.product("globex", id % 10 + 1).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.expect("the task completes").expect("lookup works").is_some());
    }
    assert!(start.elapsed() < LATENCY * 2, "{:?}", start.elapsed());
    assert_eq!(catalog.queries(), 100);
}

/// One request of the load test: mostly reads, every tenth one a write.
async fn request(catalog: Catalog, n: u64) {
    let tenant = TENANTS[(n % 3) as usize];
    let id = n % 200 + 1;
    match n % 10 {
        0 => {
            let update = ProductUpdate {
                price_cents: Some(n as i64),
                ..ProductUpdate::default()
            };
            let updated = catalog.update_product(tenant, id, &update).await.expect("update works");
            assert_eq!(updated.expect("the product exists").price_cents, n as i64);
        }
        1..=3 => {
            let query = ListQuery {
                page: Some((n % 5 + 1) as u32),
                sort: Some("-price".into()),
                ..ListQuery::default()
            };
            assert_eq!(catalog.list_products(tenant, &query).await.expect("listing works").total, 200);
        }
        4 => assert_eq!(catalog.categories(tenant).await.expect("categories work").len(), 12),
        _ => assert!(catalog.product(tenant, id).await.expect("lookup works").is_some()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_concurrent_requests_neither_fail_nor_deadlock() {
    let catalog = open(200).with_latency(Duration::from_millis(2));
    let load = async {
        let tasks: Vec<_> = (0..500).map(|n| tokio::spawn(request(catalog.clone(), n))).collect();
        for task in tasks {
            task.await.expect("no request panics");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), load)
        .await
        .expect("the load finishes without deadlock");
    assert_eq!(catalog.queries(), 500);
}
