//! The error type returned by every fallible [`Catalog`](crate::Catalog) method.

/// Everything that can go wrong when talking to the catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The tenant is not one of [`TENANTS`](crate::TENANTS).
    #[error("unknown tenant `{0}`")]
    UnknownTenant(String),
    /// A [`ListQuery`](crate::ListQuery) parameter is invalid (unknown sort, page 0, ...).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A [`ProductUpdate`](crate::ProductUpdate) failed validation.
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
    /// SQLite reported an error.
    #[error("database error")]
    Database(#[source] rusqlite::Error),
    /// The blocking task running the query panicked or was cancelled
    /// (for example because the runtime is shutting down).
    #[error("database worker failed")]
    Worker(#[source] tokio::task::JoinError),
}

impl From<rusqlite::Error> for CatalogError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Database(error)
    }
}
