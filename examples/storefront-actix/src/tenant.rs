//! [`Tenant`]: the tenant of an API request, from the `X-Tenant-ID` header.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use storefront::{TENANT_HEADER, TenantId};

use crate::error::ApiError;

/// A known tenant, read from `X-Tenant-ID` as the axum storefront's
/// [`TenantId`] extractor reads it.
///
/// As an extractor it runs inside the handler, hence behind the cache
/// middleware: only requests the cache could not answer are checked, and
/// the `400` it answers for a missing or unknown tenant is never stored.
/// Handlers take it first, so its `400` comes before any other rejection.
#[derive(Debug, Clone)]
pub(crate) struct Tenant(TenantId);

impl Tenant {
    /// The tenant's name.
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let value = req.headers().get(TENANT_HEADER).map(|value| value.as_bytes());
        ready(TenantId::from_header(value).map(Tenant).map_err(ApiError))
    }
}
