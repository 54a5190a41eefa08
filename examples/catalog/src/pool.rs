//! A small pool of connections to one shared-cache in-memory database.
//!
//! Each query runs on a tokio blocking thread with a connection of its own, so
//! as many reads as there are connections run at once (SQLite still serializes
//! the individual b-tree steps of a shared cache, but no query waits for a
//! whole other query). In shared-cache mode SQLite answers a read/write
//! conflict on a table with `SQLITE_LOCKED` instead of waiting, so a
//! reader/writer gate orders them: reads share it, a write holds it alone.
//! Waiting for a connection is async; a blocking task takes the gate only once
//! it holds its connection and releases both when done, so nothing deadlocks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::CatalogError;
use crate::seed;

/// Distinguishes the databases of several catalogs in one process.
static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);

/// Whether a job only reads or also writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// Connections to one in-memory database; see the module docs.
#[derive(Debug)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    gate: RwLock<()>,
}

impl Pool {
    /// Opens a new database, seeds it, and opens the pool's connections to it.
    pub(crate) fn open(products_per_tenant: u64) -> Result<Self, CatalogError> {
        let uri = format!(
            "file:catalog-{}-{}?mode=memory&cache=shared",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
        );
        let mut first = open_connection(&uri)?;
        seed::seed(&mut first, products_per_tenant)?;
        let size = pool_size();
        let mut idle = Vec::with_capacity(size);
        idle.push(first);
        for _ in 1..size {
            idle.push(open_connection(&uri)?);
        }
        Ok(Self {
            idle: Mutex::new(idle),
            permits: Arc::new(Semaphore::new(size)),
            gate: RwLock::new(()),
        })
    }

    /// Runs `job` on a pooled connection on a blocking thread.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, access: Access, job: F) -> Result<T, CatalogError>
    where
        F: FnOnce(&mut Connection) -> Result<T, CatalogError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the pool never closes its semaphore");
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || Lease::new(&pool, permit).run(access, job))
            .await
            .map_err(CatalogError::Worker)?
    }
}

/// Connections in the pool: one per available core, at least 2 and at most 8.
fn pool_size() -> usize {
    std::thread::available_parallelism().map_or(4, usize::from).clamp(2, 8)
}

fn open_connection(uri: &str) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_SHARED_CACHE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(uri, flags)?;
    // Every filter/sort combination of a listing is its own statement.
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// A connection taken from the pool; given back on drop, even when the job panics.
struct Lease<'pool> {
    pool: &'pool Pool,
    connection: Option<Connection>,
    // Released after `drop` has returned the connection, keeping
    // "a permit guarantees an idle connection" true.
    _permit: OwnedSemaphorePermit,
}

impl<'pool> Lease<'pool> {
    fn new(pool: &'pool Pool, permit: OwnedSemaphorePermit) -> Self {
        let connection = pool.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        Self {
            pool,
            connection,
            _permit: permit,
        }
    }

    fn run<T>(mut self, access: Access, job: impl FnOnce(&mut Connection) -> Result<T, CatalogError>) -> Result<T, CatalogError> {
        let connection = self.connection.as_mut().expect("a semaphore permit guarantees an idle connection");
        // The gate guards no data, so a poisoned gate is as good as a healthy one.
        match access {
            Access::Read => {
                let _shared = self.pool.gate.read().unwrap_or_else(PoisonError::into_inner);
                job(connection)
            }
            Access::Write => {
                let _exclusive = self.pool.gate.write().unwrap_or_else(PoisonError::into_inner);
                job(connection)
            }
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(connection);
        }
    }
}
