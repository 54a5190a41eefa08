//! A small pool of connections to one database: a shared-cache in-memory
//! database of this process ([`Pool::open`]), or a database file that
//! several processes share ([`Pool::open_file`]).
//!
//! Each query runs on a tokio blocking thread with a connection of its own, so
//! as many reads as there are connections run at once. Waiting for a
//! connection is async.
//!
//! **In memory**, the connections share one cache (SQLite still serializes
//! the individual b-tree steps of a shared cache, but no query waits for a
//! whole other query). In shared-cache mode SQLite answers a read/write
//! conflict on a table with `SQLITE_LOCKED` instead of waiting, so a
//! reader/writer gate orders them: reads share it, a write holds it alone. A
//! blocking task takes the gate only once it holds its connection and
//! releases both when done, so nothing deadlocks.
//!
//! **In a file**, each connection has its own page cache and the database is
//! in WAL mode: readers read a snapshot and neither wait for the writer nor
//! make it wait, so no conflict ends in `SQLITE_LOCKED` and the pool has no
//! gate (which could not order the other processes' connections anyway).
//! Writers, in this process or another, exclude each other with file locks;
//! the loser of a race gets `SQLITE_BUSY`, which the busy timeout turns into
//! waiting (up to [`BUSY_TIMEOUT`]). A transaction that reads before it
//! writes would get `SQLITE_BUSY` without waiting when another connection
//! wrote in between (its snapshot is stale), so every transaction on a file
//! connection is `IMMEDIATE`: it takes the write lock, waiting if need be,
//! before reading.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::CatalogError;
use crate::seed;

/// Distinguishes the databases of several catalogs in one process.
static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);

/// How long a connection to a database file waits for another connection's
/// lock (another process's write, a seeding) before failing with `SQLITE_BUSY`.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a job only reads or also writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// Connections to one database; see the module docs.
#[derive(Debug)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// Orders reads and writes on a shared cache; `None` for a file.
    gate: Option<RwLock<()>>,
}

impl Pool {
    /// Opens a new in-memory database, seeds it, and opens the pool's connections to it.
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
        Ok(Self::new(idle, Some(RwLock::new(()))))
    }

    /// Opens (creating it if need be) the database file at `path` in WAL
    /// mode, seeds it unless it already has a schema, and opens the pool's
    /// connections to it. Returns the pool and the number of products per
    /// tenant the file holds.
    pub(crate) fn open_file(path: &Path, products_per_tenant: u64) -> Result<(Self, u64), CatalogError> {
        let mut first = open_file_connection(path)?;
        let journal_mode = enable_wal(&first)?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), journal_mode, "the catalog file is not in WAL mode; reads and writes will wait for each other");
        }
        let products_per_tenant = seed::seed_if_empty(&mut first, products_per_tenant)?;
        let size = pool_size();
        let mut idle = Vec::with_capacity(size);
        idle.push(first);
        for _ in 1..size {
            idle.push(open_file_connection(path)?);
        }
        Ok((Self::new(idle, None), products_per_tenant))
    }

    fn new(idle: Vec<Connection>, gate: Option<RwLock<()>>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(idle.len())),
            idle: Mutex::new(idle),
            gate,
        }
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

/// A connection to the shared-cache in-memory database at `uri`.
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

/// A connection to the database file at `path`, created if missing: waits
/// for other connections' locks, and begins every transaction `IMMEDIATE`.
fn open_file_connection(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.set_transaction_behavior(TransactionBehavior::Immediate);
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// Puts the database in WAL mode (a no-op when it is already), returning
/// the journal mode it is in afterwards.
///
/// The switch reads the file header, then upgrades to an exclusive lock. A
/// connection that already reads is not given the busy handler (two such
/// connections would wait for each other forever), so when another
/// connection switches at the same moment, SQLite answers `SQLITE_BUSY` at
/// once: retry then, within [`BUSY_TIMEOUT`].
fn enable_wal(connection: &Connection) -> rusqlite::Result<String> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(error, _)) if error.code == ErrorCode::DatabaseBusy && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result,
        }
    }
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
        let Some(gate) = &self.pool.gate else {
            return job(connection);
        };
        // The gate guards no data, so a poisoned gate is as good as a healthy one.
        match access {
            Access::Read => {
                let _shared = gate.read().unwrap_or_else(PoisonError::into_inner);
                job(connection)
            }
            Access::Write => {
                let _exclusive = gate.write().unwrap_or_else(PoisonError::into_inner);
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
