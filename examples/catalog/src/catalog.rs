//! [`Catalog`]: the async facade over the pooled database.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::CatalogError;
use crate::model::{Category, ListQuery, Product, ProductPage, ProductUpdate};
use crate::pool::{Access, Pool};
use crate::{queries, validate};

/// The product catalog of every tenant: a SQLite database seeded at start,
/// in memory ([`Catalog::open`]) or in a file that several processes share
/// ([`Catalog::open_file`]), playing the slow origin that an HTTP cache sits
/// in front of.
///
/// Cloning is cheap; clones share the database and the query counter.
/// Each query first waits for the configured latency, then runs on a pooled
/// connection on a blocking thread, so the futures are `Send` and many
/// queries proceed concurrently.
#[derive(Clone, Debug)]
pub struct Catalog {
    shared: Arc<Shared>,
    latency: Duration,
}

#[derive(Debug)]
struct Shared {
    pool: Arc<Pool>,
    queries: AtomicU64,
    products_per_tenant: u64,
}

impl Catalog {
    /// Opens an in-memory database seeded with `products_per_tenant` products
    /// (ids `1..=products_per_tenant`) for each of [`TENANTS`](crate::TENANTS).
    ///
    /// The data is the same on every start. Each call gets its own database.
    pub fn open(products_per_tenant: u64) -> Result<Self, CatalogError> {
        let pool = Pool::open(products_per_tenant)?;
        Ok(Self::with_pool(pool, products_per_tenant))
    }

    /// Opens the SQLite database file at `path`, which several catalogs,
    /// in this process or in others, may share: an update through one is
    /// seen by every later read through the others.
    ///
    /// The file is created if missing and seeded like [`Catalog::open`]'s
    /// database if it has no schema yet; the check and the seeding are one
    /// transaction holding the write lock, so of several processes opening
    /// a fresh file at once exactly one seeds it. A file that is already
    /// seeded keeps its data (with every update made so far), and
    /// `products_per_tenant` is then ignored: [`Catalog::popular_product_ids`]
    /// follows the products the file holds.
    ///
    /// The database is put in WAL mode, so reads do not wait for writes;
    /// writes wait up to 5 s for the write lock another connection holds
    /// (another process's update, or its seeding) before failing with
    /// [`CatalogError::Database`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use catalog::{Catalog, ProductUpdate};
    ///
    /// let path = std::env::temp_dir().join(format!("catalog-doc-{}.db", std::process::id()));
    /// let first = Catalog::open_file(&path, 100)?;
    /// let second = Catalog::open_file(&path, 100)?; // already seeded: not seeded again
    /// let update = ProductUpdate { price_cents: Some(1999), ..ProductUpdate::default() };
    /// first.update_product("acme", 42, &update).await?;
    /// assert_eq!(second.product("acme", 42).await?.map(|p| p.price_cents), Some(1999));
    /// # drop((first, second));
    /// # for suffix in ["", "-wal", "-shm"] {
    /// #     let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    /// # }
    /// # Ok(())
    /// # }
    /// ```
    pub fn open_file(path: impl AsRef<Path>, products_per_tenant: u64) -> Result<Self, CatalogError> {
        let (pool, products_per_tenant) = Pool::open_file(path.as_ref(), products_per_tenant)?;
        Ok(Self::with_pool(pool, products_per_tenant))
    }

    fn with_pool(pool: Pool, products_per_tenant: u64) -> Self {
        let shared = Shared {
            pool: Arc::new(pool),
            queries: AtomicU64::new(0),
            products_per_tenant,
        };
        Self {
            shared: Arc::new(shared),
            latency: Duration::ZERO,
        }
    }

    /// Adds `latency` of delay to every query (stands for a networked database).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// One page of the tenant's products, filtered, searched and sorted as `query` says.
    ///
    /// An unknown sort or page 0 is [`CatalogError::InvalidQuery`]; an unknown
    /// category simply matches nothing.
    pub async fn list_products(&self, tenant: &str, query: &ListQuery) -> Result<ProductPage, CatalogError> {
        let tenant = validate::tenant(tenant)?;
        let query = validate::list_query(query)?;
        tracing::debug!(tenant, ?query, "list products");
        self.query(Access::Read, move |connection| queries::list_products(connection, tenant, &query))
            .await
    }

    /// The tenant's product `id`, or `None` if it has none with that id.
    pub async fn product(&self, tenant: &str, id: u64) -> Result<Option<Product>, CatalogError> {
        let tenant = validate::tenant(tenant)?;
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        tracing::debug!(tenant, id, "get product");
        self.query(Access::Read, move |connection| queries::product(connection, tenant, id))
            .await
    }

    /// Applies `update` to the tenant's product `id` and returns the product as
    /// stored afterwards, or `None` when the product does not exist.
    ///
    /// The name must not be blank and at most 200 characters long, the price
    /// not negative and the category an existing category of the tenant;
    /// otherwise [`CatalogError::InvalidUpdate`]. The change is visible to every
    /// later read.
    pub async fn update_product(&self, tenant: &str, id: u64, update: &ProductUpdate) -> Result<Option<Product>, CatalogError> {
        let tenant = validate::tenant(tenant)?;
        validate::update(update)?;
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        tracing::debug!(tenant, id, ?update, "update product");
        let update = update.clone();
        self.query(Access::Write, move |connection| {
            queries::update_product(connection, tenant, id, &update)
        })
        .await
    }

    /// The tenant's categories ordered by id, each with its product count.
    pub async fn categories(&self, tenant: &str) -> Result<Vec<Category>, CatalogError> {
        let tenant = validate::tenant(tenant)?;
        tracing::debug!(tenant, "list categories");
        self.query(Access::Read, move |connection| queries::categories(connection, tenant))
            .await
    }

    /// Number of queries executed so far (tests count origin work with it).
    ///
    /// Each call of an async method that reaches the database counts once;
    /// calls rejected before that (unknown tenant, invalid query) do not.
    pub fn queries(&self) -> u64 {
        self.shared.queries.load(Ordering::Relaxed)
    }

    /// Product ids most worth warming: the first `n` ids (every tenant has them),
    /// fewer if the catalog holds fewer products per tenant.
    pub fn popular_product_ids(&self, n: usize) -> Vec<u64> {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        (1..=n.min(self.shared.products_per_tenant)).collect()
    }

    /// Waits for the simulated latency, counts the query, then runs `job` on the pool.
    async fn query<T, F>(&self, access: Access, job: F) -> Result<T, CatalogError>
    where
        F: FnOnce(&mut rusqlite::Connection) -> Result<T, CatalogError> + Send + 'static,
        T: Send + 'static,
    {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        self.shared.queries.fetch_add(1, Ordering::Relaxed);
        self.shared.pool.run(access, job).await
    }
}
