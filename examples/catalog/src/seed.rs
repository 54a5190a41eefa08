//! Schema creation and seeding of a fresh database.

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use crate::fixtures;
use crate::model::TENANTS;

const SCHEMA: &str = "
CREATE TABLE categories (
    tenant TEXT NOT NULL,
    id     TEXT NOT NULL,
    name   TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE TABLE products (
    tenant      TEXT    NOT NULL,
    id          INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    description TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX products_by_category ON products (tenant, category);
";

/// Creates the schema and inserts every tenant's categories and
/// `products_per_tenant` products, in one transaction.
pub(crate) fn seed(connection: &mut Connection, products_per_tenant: u64) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    let transaction = connection.transaction()?;
    create_and_fill(&transaction, products_per_tenant)?;
    transaction.commit()?;
    log_seeded(products_per_tenant, started);
    Ok(())
}

/// Seeds the database as [`seed`] does unless it already has a schema, and
/// returns the number of products per tenant it holds afterwards: the
/// smallest count of any tenant, so that ids `1..=n` exist for every tenant.
///
/// The check and the seeding happen in one `BEGIN IMMEDIATE` transaction,
/// which holds the database's write lock from the start: of several
/// connections (or processes) opening a fresh database at once, exactly one
/// seeds it, and the others wait for it (within their busy timeout) and then
/// find the schema.
pub(crate) fn seed_if_empty(connection: &mut Connection, products_per_tenant: u64) -> rusqlite::Result<u64> {
    let started = std::time::Instant::now();
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let has_schema: bool = transaction.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_schema)", [], |row| row.get(0))?;
    if !has_schema {
        create_and_fill(&transaction, products_per_tenant)?;
        transaction.commit()?;
        log_seeded(products_per_tenant, started);
        return Ok(products_per_tenant);
    }
    let held: i64 = transaction.query_row(
        "SELECT coalesce(min(n), 0) FROM (SELECT count(*) AS n FROM products GROUP BY tenant)",
        [],
        |row| row.get(0),
    )?;
    transaction.commit()?;
    let held = u64::try_from(held).unwrap_or(0);
    tracing::info!(products_per_tenant = held, "catalog already seeded");
    Ok(held)
}

/// Creates the schema and inserts the seed data, within `transaction`.
fn create_and_fill(transaction: &Transaction<'_>, products_per_tenant: u64) -> rusqlite::Result<()> {
    transaction.execute_batch(SCHEMA)?;
    insert_categories(transaction)?;
    insert_products(transaction, products_per_tenant)
}

fn log_seeded(products_per_tenant: u64, started: std::time::Instant) {
    tracing::info!(
        tenants = TENANTS.len(),
        products_per_tenant,
        elapsed_ms = started.elapsed().as_millis(),
        "catalog seeded"
    );
}

fn insert_categories(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut insert = transaction.prepare("INSERT INTO categories (tenant, id, name) VALUES (?1, ?2, ?3)")?;
    for (tenant_index, tenant) in TENANTS.iter().enumerate() {
        for (id, name) in fixtures::categories(tenant_index) {
            insert.execute(params![tenant, id, name])?;
        }
    }
    Ok(())
}

fn insert_products(transaction: &Transaction<'_>, products_per_tenant: u64) -> rusqlite::Result<()> {
    let mut insert = transaction.prepare(
        "INSERT INTO products (tenant, id, name, category, price_cents, description)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for tenant_index in 0..TENANTS.len() {
        for id in 1..=products_per_tenant {
            let product = fixtures::product(tenant_index, id);
            let sql_id = i64::try_from(id).map_err(|error| rusqlite::Error::ToSqlConversionFailure(error.into()))?;
            insert.execute(params![
                product.tenant,
                sql_id,
                product.name,
                product.category,
                product.price_cents,
                product.description
            ])?;
        }
    }
    Ok(())
}
