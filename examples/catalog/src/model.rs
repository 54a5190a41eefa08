//! The public data types: what the catalog stores and how it is queried.

use serde::{Deserialize, Serialize};

/// The tenants every catalog is seeded with.
pub const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

/// Products seeded per tenant by the demo apps (3 × 4,000 = 12,000 in total).
pub const DEFAULT_PRODUCTS_PER_TENANT: u64 = 4_000;

/// One product of one tenant. The same `id` exists in every tenant with different data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Product {
    /// Identifier, unique within its tenant (1..=N).
    pub id: u64,
    /// The tenant owning this product.
    pub tenant: String,
    /// Display name.
    pub name: String,
    /// Slug of the product's [`Category`].
    pub category: String,
    /// Price in cents, never negative.
    pub price_cents: i64,
    /// Free text description.
    pub description: String,
}

/// A product category of one tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Category {
    /// Slug, e.g. `"books"`; what [`Product::category`] refers to.
    pub id: String,
    /// Display name, e.g. `"Books"`.
    pub name: String,
    /// Number of the tenant's products in this category.
    pub product_count: u64,
}

/// Parameters of [`Catalog::list_products`](crate::Catalog::list_products),
/// usually deserialized from a query string.
///
/// Empty strings are treated like absent values.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    /// Only products of this category slug.
    pub category: Option<String>,
    /// 1-based page number, default 1; 0 is rejected.
    pub page: Option<u32>,
    /// Page size, default 20, clamped to `1..=100`.
    pub limit: Option<u32>,
    /// Case-insensitive (ASCII) substring the product name must contain.
    pub search: Option<String>,
    /// One of `id` (default), `name`, `-name`, `price`, `-price`; `-` means descending.
    /// Ties are broken by ascending id.
    pub sort: Option<String>,
}

/// One page of a product listing.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProductPage {
    /// The products on this page, at most `limit`.
    pub items: Vec<Product>,
    /// The 1-based page number.
    pub page: u32,
    /// The effective page size (after clamping).
    pub limit: u32,
    /// Number of products matching the filters over all pages.
    pub total: u64,
}

/// A partial update of a product; absent fields are left unchanged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    /// New name: not blank, at most 200 characters.
    pub name: Option<String>,
    /// New category: an existing category slug of the product's tenant.
    pub category: Option<String>,
    /// New price in cents, not negative.
    pub price_cents: Option<i64>,
}
