//! A catalog in a database file that several catalogs (standing for several
//! processes) open at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{SystemTime, UNIX_EPOCH};

use catalog::{Catalog, Category, ListQuery, ProductUpdate, TENANTS};

/// A database path unique to this test run, whose file (and its WAL and
/// shared-memory files) is deleted on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos());
        let unique = format!(
            "catalog-test-{name}-{}-{nanos}-{}.db",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self(std::env::temp_dir().join(unique))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

fn open(db: &TempDb, products_per_tenant: u64) -> Catalog {
    Catalog::open_file(db.path(), products_per_tenant).expect("the catalog file opens")
}

/// Products and categories of every tenant, as the catalog counts them.
async fn counts(catalog: &Catalog) -> Vec<(u64, Vec<Category>)> {
    let mut counts = Vec::new();
    for tenant in TENANTS {
        let page = catalog.list_products(tenant, &ListQuery::default()).await.expect("listing works");
        let categories = catalog.categories(tenant).await.expect("categories work");
        counts.push((page.total, categories));
    }
    counts
}

#[tokio::test]
async fn an_update_through_one_catalog_is_read_by_another_on_the_same_file() {
    let db = TempDb::new("update");
    let first = open(&db, 50);
    let second = open(&db, 50);
    let before = second.product("acme", 7).await.expect("lookup works").expect("product 7 exists");
    assert_eq!(first.product("acme", 7).await.expect("lookup works"), Some(before.clone()));

    let update = ProductUpdate {
        name: Some("Shared Zeppelin".into()),
        price_cents: Some(1999),
        ..ProductUpdate::default()
    };
    let updated = first
        .update_product("acme", 7, &update)
        .await
        .expect("update works")
        .expect("product 7 exists");

    assert_eq!((updated.name.as_str(), updated.price_cents), ("Shared Zeppelin", 1999));
    assert_eq!(second.product("acme", 7).await.expect("lookup works"), Some(updated.clone()));
    let found = second
        .list_products(
            "acme",
            &ListQuery {
                search: Some("zeppelin".into()),
                ..ListQuery::default()
            },
        )
        .await
        .expect("listing works");
    assert_eq!(found.items, vec![updated]);

    // And the other way round, after the first has read.
    let back = ProductUpdate {
        price_cents: Some(before.price_cents),
        ..ProductUpdate::default()
    };
    second.update_product("acme", 7, &back).await.expect("update works");
    let seen = first.product("acme", 7).await.expect("lookup works").expect("product 7 exists");
    assert_eq!(seen.price_cents, before.price_cents);
}

#[tokio::test]
async fn opening_a_seeded_file_keeps_its_data_and_does_not_seed_again() {
    let db = TempDb::new("reopen");
    let first = open(&db, 30);
    let expected = counts(&first).await;
    assert_eq!(expected[0].0, 30);
    let update = ProductUpdate {
        price_cents: Some(4242),
        ..ProductUpdate::default()
    };
    first.update_product("globex", 3, &update).await.expect("update works");

    // Reopened while the first is open, then after it is closed, and with
    // another products_per_tenant, which only a seeding would use.
    let second = open(&db, 30);
    assert_eq!(counts(&second).await, expected);
    drop((first, second));
    let third = open(&db, 500);
    assert_eq!(counts(&third).await, expected);
    assert_eq!(third.popular_product_ids(100), (1..=30).collect::<Vec<_>>());
    let kept = third.product("globex", 3).await.expect("lookup works").expect("product 3 exists");
    assert_eq!(kept.price_cents, 4242);
    assert_eq!(third.product("globex", 31).await.expect("lookup works"), None);
}

#[test]
fn two_catalogs_racing_to_open_a_fresh_file_both_succeed_and_it_is_seeded_once() {
    // Several rounds, each on a fresh file: the openers do not collide the same way every time.
    for round in 0..8 {
        let db = Arc::new(TempDb::new("race"));
        let start = Arc::new(Barrier::new(2));
        let openers: Vec<_> = (0..2)
            .map(|_| {
                let (db, start) = (Arc::clone(&db), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    Catalog::open_file(db.path(), 400)
                })
            })
            .collect();
        let catalogs: Vec<Catalog> = openers
            .into_iter()
            .map(|opener| opener.join().expect("the opener does not panic"))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|error| panic!("round {round}: an open failed: {error:?}"));

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let first = counts(&catalogs[0]).await;
            // A second seeding would have failed on the existing tables, or doubled the rows.
            assert!(first.iter().all(|(total, _)| *total == 400), "round {round}: {first:?}");
            assert_eq!(counts(&catalogs[1]).await, first, "round {round}");
            let update = ProductUpdate {
                price_cents: Some(1),
                ..ProductUpdate::default()
            };
            catalogs[1].update_product("initech", 400, &update).await.expect("update works");
            let seen = catalogs[0].product("initech", 400).await.expect("lookup works");
            assert_eq!(seen.map(|product| product.price_cents), Some(1), "round {round}");
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_through_two_catalogs_wait_for_each_other_instead_of_failing() {
    let db = TempDb::new("writers");
    let catalogs = [open(&db, 20), open(&db, 20)];
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..40_i64 {
        for (index, catalog) in catalogs.iter().enumerate() {
            let catalog = catalog.clone();
            tasks.spawn(async move {
                let update = ProductUpdate {
                    price_cents: Some(round * 10 + i64::try_from(index).expect("small")),
                    ..ProductUpdate::default()
                };
                let id = u64::try_from(round % 5 + 1).expect("positive");
                catalog.update_product("acme", id, &update).await?;
                catalog.list_products("acme", &ListQuery::default()).await.map(drop)
            });
        }
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("the task does not panic").expect("no write fails with SQLITE_BUSY");
    }
    for id in 1..=5 {
        let [first, second] = &catalogs;
        assert_eq!(
            first.product("acme", id).await.expect("lookup works"),
            second.product("acme", id).await.expect("lookup works")
        );
    }
}
