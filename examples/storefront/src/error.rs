//! Errors: [`StorefrontError`] at start, [`ApiError`] per request.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use catalog::CatalogError;

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorefrontError {
    /// The catalog database could not be opened or seeded.
    #[error("could not open the catalog")]
    Catalog(#[from] CatalogError),
    /// The response cache could not be configured.
    #[error("could not configure the response cache")]
    Cache(#[from] cache_axum::ConfigError),
    /// The cache store could not be set up (an invalid Redis URL, or no
    /// tokio runtime to connect to Redis from).
    #[error("could not set up the cache store")]
    Store(#[from] cache_axum::StoreError),
    /// The TTL table (`--config`) could not be loaded: the message names
    /// the file, the route and the field.
    #[error("could not load the TTL table: {0}")]
    CacheTable(cache_axum::config::ConfigFileError),
}

impl From<cache_axum::config::ConfigFileError> for StorefrontError {
    fn from(e: cache_axum::config::ConfigFileError) -> Self {
        Self::CacheTable(e)
    }
}

/// An error answered to a client as `{"error": message}` with its status.
///
/// Server-side failures are logged in full and answered with a generic
/// message: database errors and panics never reach the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with `status` and a message for the client.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// `400 Bad Request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// `404 Not Found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// `500 Internal Server Error`, with nothing about the cause.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// The status answered.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message answered.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::UnknownTenant(_) | CatalogError::InvalidQuery(_) => Self::bad_request(error.to_string()),
            CatalogError::InvalidUpdate(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string()),
            error => {
                tracing::error!(error = &error as &dyn std::error::Error, "catalog query failed");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message }));
        (self.status, body).into_response()
    }
}
