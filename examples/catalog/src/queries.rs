//! The SQL behind each catalog operation, run synchronously on one connection.

use rusqlite::types::{Type, Value};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params, params_from_iter};

use crate::error::CatalogError;
use crate::model::{Category, Product, ProductPage, ProductUpdate};
use crate::validate::ValidQuery;

const PRODUCT_COLUMNS: &str = "tenant, id, name, category, price_cents, description";

/// Reads a column holding a non-negative integer (an id or a count).
fn get_u64(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|error| rusqlite::Error::FromSqlConversionFailure(index, Type::Integer, error.into()))
}

fn product_from_row(row: &Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        tenant: row.get(0)?,
        id: get_u64(row, 1)?,
        name: row.get(2)?,
        category: row.get(3)?,
        price_cents: row.get(4)?,
        description: row.get(5)?,
    })
}

/// The `WHERE` clause of a listing and its parameters.
fn list_filter(tenant: &str, query: &ValidQuery) -> (String, Vec<Value>) {
    let mut clause = String::from("tenant = ?");
    let mut values = vec![Value::Text(tenant.to_owned())];
    if let Some(category) = &query.category {
        clause.push_str(" AND category = ?");
        values.push(Value::Text(category.clone()));
    }
    if let Some(search) = &query.search {
        // instr, unlike LIKE, needs no escaping of `%` and `_`.
        clause.push_str(" AND instr(lower(name), lower(?)) > 0");
        values.push(Value::Text(search.clone()));
    }
    (clause, values)
}

/// One page of the tenant's products matching `query`, and the total number of matches.
///
/// Both statements read one snapshot (a `DEFERRED` transaction), so that a
/// write committed between them by a connection outside the pool's gate
/// (another process sharing the database file) cannot make them disagree.
pub(crate) fn list_products(connection: &Connection, tenant: &str, query: &ValidQuery) -> Result<ProductPage, CatalogError> {
    let snapshot = Transaction::new_unchecked(connection, TransactionBehavior::Deferred)?;
    let (filter, mut values) = list_filter(tenant, query);
    let total = snapshot
        .prepare_cached(&format!("SELECT COUNT(*) FROM products WHERE {filter}"))?
        .query_row(params_from_iter(&values), |row| get_u64(row, 0))?;
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE {filter} ORDER BY {} LIMIT ? OFFSET ?",
        query.sort.order_by()
    );
    values.extend([Value::Integer(query.limit.into()), Value::Integer(query.offset())]);
    let items = snapshot
        .prepare_cached(&sql)?
        .query_map(params_from_iter(&values), product_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    snapshot.commit()?;
    Ok(ProductPage {
        items,
        page: query.page,
        limit: query.limit,
        total,
    })
}

/// The tenant's product `id`, if it exists.
pub(crate) fn product(connection: &Connection, tenant: &str, id: i64) -> Result<Option<Product>, CatalogError> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant = ?1 AND id = ?2");
    let product = connection
        .prepare_cached(&sql)?
        .query_row(params![tenant, id], product_from_row)
        .optional()?;
    Ok(product)
}

/// The tenant's categories, ordered by slug, with their product counts.
pub(crate) fn categories(connection: &Connection, tenant: &str) -> Result<Vec<Category>, CatalogError> {
    let mut statement = connection.prepare_cached(
        "SELECT c.id, c.name,
                (SELECT COUNT(*) FROM products p WHERE p.tenant = c.tenant AND p.category = c.id)
         FROM categories c WHERE c.tenant = ?1 ORDER BY c.id",
    )?;
    let categories = statement
        .query_map([tenant], |row| {
            Ok(Category {
                id: row.get(0)?,
                name: row.get(1)?,
                product_count: get_u64(row, 2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(categories)
}

fn category_exists(connection: &Connection, tenant: &str, category: &str) -> rusqlite::Result<bool> {
    connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM categories WHERE tenant = ?1 AND id = ?2)")?
        .query_row([tenant, category], |row| row.get(0))
}

/// Applies an already field-checked `update` to the tenant's product `id` in one
/// transaction; `None` if the product does not exist.
pub(crate) fn update_product(
    connection: &mut Connection,
    tenant: &str,
    id: i64,
    update: &ProductUpdate,
) -> Result<Option<Product>, CatalogError> {
    let transaction = connection.transaction()?;
    if product(&transaction, tenant, id)?.is_none() {
        return Ok(None);
    }
    if let Some(category) = &update.category
        && !category_exists(&transaction, tenant, category)?
    {
        return Err(CatalogError::InvalidUpdate(format!(
            "unknown category `{category}` for tenant `{tenant}`"
        )));
    }
    transaction
        .prepare_cached(
            "UPDATE products SET name = coalesce(?3, name), category = coalesce(?4, category),
                                 price_cents = coalesce(?5, price_cents)
             WHERE tenant = ?1 AND id = ?2",
        )?
        .execute(params![tenant, id, update.name, update.category, update.price_cents])?;
    let updated = product(&transaction, tenant, id)?;
    transaction.commit()?;
    Ok(updated)
}
