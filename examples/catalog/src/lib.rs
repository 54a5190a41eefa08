//! The storefront demo's data layer: a product catalog for several tenants in an
//! embedded SQLite database, seeded deterministically at start: in memory
//! ([`Catalog::open`]), or in a file that several processes share
//! ([`Catalog::open_file`]).
//!
//! It is deliberately *not* a cache: it is the slow origin that the HTTP
//! response cache sits in front of. [`Catalog::with_latency`] makes every query
//! wait like a round trip to a networked database, and [`Catalog::queries`]
//! counts the work that reached it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), catalog::CatalogError> {
//! use catalog::{Catalog, ListQuery};
//!
//! let catalog = Catalog::open(100)?;
//! let query = ListQuery { sort: Some("-price".into()), limit: Some(5), ..ListQuery::default() };
//! let page = catalog.list_products("acme", &query).await?;
//! assert_eq!((page.items.len(), page.total), (5, 100));
//! assert_eq!(catalog.queries(), 1);
//! # Ok(())
//! # }
//! ```

mod catalog;
mod error;
mod fixtures;
mod model;
mod pool;
mod queries;
mod seed;
mod validate;

pub use catalog::Catalog;
pub use error::CatalogError;
pub use model::{Category, DEFAULT_PRODUCTS_PER_TENANT, ListQuery, Product, ProductPage, ProductUpdate, TENANTS};
