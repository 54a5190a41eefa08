//! [`TenantId`]: the tenant of an API request, from the `X-Tenant-ID` header.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;

/// The request header naming the tenant.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// A known tenant (one of [`catalog::TENANTS`]), read from `X-Tenant-ID`.
///
/// As an extractor it runs inside the handler, hence behind the cache layer:
/// only requests the cache could not answer are checked, and the `400` it
/// answers for a missing or unknown tenant is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantId(pub String);

impl TenantId {
    /// The tenant's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tenant named by the value of an `X-Tenant-ID` header (`None`:
    /// no such header); `400` for a missing or unknown tenant.
    pub fn from_header(value: Option<&[u8]>) -> Result<Self, ApiError> {
        let Some(value) = value else {
            return Err(ApiError::bad_request("missing X-Tenant-ID header"));
        };
        let known = catalog::TENANTS.iter().find(|tenant| tenant.as_bytes() == value);
        match known {
            Some(tenant) => Ok(TenantId((*tenant).to_owned())),
            None => Err(ApiError::bad_request(format!(
                "unknown tenant in X-Tenant-ID; expected one of: {}",
                catalog::TENANTS.join(", ")
            ))),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_header(parts.headers.get(TENANT_HEADER).map(|value| value.as_bytes()))
    }
}
