//! [`Catalog`]: the async facade over the pooled database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::CatalogError;
use crate::model::{Category, ListQuery, Product, ProductPage, ProductUpdate};
use crate::pool::{Access, Pool};
use crate::{queries, validate};

/// The product catalog of every tenant: an in-memory SQLite database seeded
/// at start, playing the slow origin that an HTTP cache sits in front of.
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
        let pool = Arc::new(Pool::open(products_per_tenant)?);
        let shared = Shared {
            pool,
            queries: AtomicU64::new(0),
            products_per_tenant,
        };
        Ok(Self {
            shared: Arc::new(shared),
            latency: Duration::ZERO,
        })
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
