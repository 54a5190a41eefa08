//! [`ApiError`]: the storefront's errors as actix-web errors, and the
//! extractor configs whose rejections answer like the axum storefront's.

use std::fmt;

use actix_web::body::BoxBody;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder, ResponseError, web};
use catalog::CatalogError;

/// A [`storefront::ApiError`] as an actix-web error: answered as
/// `{"error": message}` with its status.
///
/// Catalog errors convert like the axum storefront's: bad queries are
/// `400`, invalid updates `422`, anything else a logged, generic `500`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub storefront::ApiError);

impl From<storefront::ApiError> for ApiError {
    fn from(error: storefront::ApiError) -> Self {
        ApiError(error)
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        ApiError(error.into())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.message())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(serde_json::json!({ "error": self.0.message() }))
    }
}

impl Responder for ApiError {
    type Body = BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}

/// An [`ApiError`] with an actix status and a message.
fn api_error(status: StatusCode, message: impl Into<String>) -> actix_web::Error {
    let status = storefront_status(status);
    ApiError(storefront::ApiError::new(status, message)).into()
}

/// The status as the `http` 1 type [`storefront::ApiError`] holds
/// (actix-web 4 is on `http` 0.2).
fn storefront_status(status: StatusCode) -> http::StatusCode {
    http::StatusCode::from_u16(status.as_u16()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// JSON bodies: `415` without a JSON content type, `400` for malformed
/// JSON, `422` for JSON that is not a [`catalog::ProductUpdate`] (unknown or
/// mistyped fields), `413` over the size limit — as axum's `Json` answers.
pub(crate) fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().error_handler(|error, _req| match error {
        JsonPayloadError::ContentType => api_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected request with `Content-Type: application/json`",
        ),
        JsonPayloadError::Deserialize(error) if error.is_data() => api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Failed to deserialize the JSON body into the target type: {error}"),
        ),
        JsonPayloadError::Deserialize(error) => api_error(
            StatusCode::BAD_REQUEST,
            format!("Failed to parse the request body as JSON: {error}"),
        ),
        error => api_error(error.status_code(), error.to_string()),
    })
}

/// Query strings that do not fit [`catalog::ListQuery`] are `400`.
pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _req| match error {
        QueryPayloadError::Deserialize(error) => api_error(StatusCode::BAD_REQUEST, format!("Failed to deserialize query string: {error}")),
        error => api_error(StatusCode::BAD_REQUEST, error.to_string()),
    })
}

/// A product id that is not a whole number is `400` (actix's default is `404`).
pub(crate) fn product_path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_error: PathError, _req| ApiError(storefront::bad_product_id()).into())
}
