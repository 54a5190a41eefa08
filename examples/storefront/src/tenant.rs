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
}

impl<S: Send + Sync> FromRequestParts<S> for TenantId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(TENANT_HEADER) else {
            return Err(ApiError::bad_request("missing X-Tenant-ID header"));
        };
        let known = catalog::TENANTS.iter().find(|tenant| tenant.as_bytes() == value.as_bytes());
        match known {
            Some(tenant) => Ok(TenantId((*tenant).to_owned())),
            None => Err(ApiError::bad_request(format!(
                "unknown tenant in X-Tenant-ID; expected one of: {}",
                catalog::TENANTS.join(", ")
            ))),
        }
    }
}
