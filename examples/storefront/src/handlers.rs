//! The request handlers: each reads the tenant, asks the catalog, answers JSON.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cache_axum::{Cache, CacheHints, Invalidator};
use catalog::{Catalog, ListQuery, ProductUpdate};
use serde::Serialize;

use crate::error::ApiError;
use crate::policies;
use crate::tenant::TenantId;

/// The result of an API handler.
type ApiResult = Result<Response, ApiError>;

/// `GET /api/v1/products`: one page of the tenant's products.
///
/// Tags the response `category:{tenant}:{category}` when filtered by category.
pub(crate) async fn list_products(
    tenant: TenantId,
    State(catalog): State<Catalog>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let page = catalog.list_products(tenant.as_str(), &query).await?;
    Ok((Extension(list_hints(tenant.as_str(), &query)), json(&page)).into_response())
}

/// `GET /api/v1/products/{id}`: one product, or `404`. Tagged from the id
/// it parsed ([`product_hints`]).
pub(crate) async fn product(tenant: TenantId, State(catalog): State<Catalog>, id: Result<Path<u64>, PathRejection>) -> ApiResult {
    let id = product_id(id)?;
    match catalog.product(tenant.as_str(), id).await? {
        Some(product) => Ok((Extension(product_hints(tenant.as_str(), id)), json(&product)).into_response()),
        None => Err(no_product(id)),
    }
}

/// `PUT /api/v1/products/{id}`: applies a [`ProductUpdate`], then drops the
/// cached copies of the product and of the tenant's lists.
pub(crate) async fn update_product(
    tenant: TenantId,
    State(catalog): State<Catalog>,
    Extension(invalidator): Extension<Invalidator>,
    id: Result<Path<u64>, PathRejection>,
    update: Result<Json<ProductUpdate>, JsonRejection>,
) -> ApiResult {
    let id = product_id(id)?;
    let Json(update) = update.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    let Some(product) = catalog.update_product(tenant.as_str(), id, &update).await? else {
        return Err(no_product(id));
    };
    invalidate_product(&invalidator, tenant.as_str(), id, update.category.is_some()).await;
    Ok(json(&product))
}

/// `GET /api/v1/categories`: the tenant's categories with product counts,
/// read through the data cache ([`policies::categories_data`]) when the
/// response cache misses.
pub(crate) async fn categories(tenant: TenantId, State(catalog): State<Catalog>, Extension(cache): Extension<Cache>) -> ApiResult {
    let tenant = tenant.as_str();
    let policy = policies::categories_data(tenant);
    let categories = cache.get_or_insert_with(tenant, &policy, || catalog.categories(tenant)).await?;
    Ok(json(&categories))
}

/// Any other path.
pub(crate) async fn not_found(uri: Uri) -> ApiError {
    no_route(uri.path())
}

/// A known path with a method it does not serve.
pub(crate) async fn method_not_allowed() -> ApiError {
    not_allowed()
}

/// The cache hints of a product list: tagged `category:{tenant}:{category}`
/// when filtered by category.
pub fn list_hints(tenant: &str, query: &ListQuery) -> CacheHints {
    match query.category.as_deref().filter(|c| !c.is_empty()) {
        Some(category) => CacheHints::new().tag(format!("category:{tenant}:{category}")),
        None => CacheHints::new(),
    }
}

/// The cache hints of a product: tagged `product:{tenant}:{id}` with the id
/// as the handler parsed it.
///
/// The policy's template `product:{tenant}:{id}` is filled from the path
/// segment, percent-decoded as `Path` decodes it; but `Path<u64>` also
/// answers `/products/042` and `/products/+42` for product 42, each under
/// its own cache key, whose template tag would be `product:acme:042`. The
/// tag from the parsed id makes [`invalidate_product`] reach every spelling
/// the handler accepts.
pub fn product_hints(tenant: &str, id: u64) -> CacheHints {
    CacheHints::new().tag(format!("product:{tenant}:{id}"))
}

/// Drops the product's entries and the tenant's lists, and the category
/// counts when its category changed. A store failure is logged: the update
/// is done, and the entries expire with their TTL.
pub async fn invalidate_product(invalidator: &Invalidator, tenant: &str, id: u64, category_changed: bool) {
    let mut tags = vec![format!("product:{tenant}:{id}"), format!("products:{tenant}")];
    if category_changed {
        tags.push(format!("categories:{tenant}"));
    }
    if let Err(error) = invalidator.tags(tags).await {
        tracing::warn!(
            error = &error as &dyn std::error::Error,
            tenant,
            id,
            "could not invalidate the cache after an update"
        );
    }
}

fn product_id(id: Result<Path<u64>, PathRejection>) -> Result<u64, ApiError> {
    id.map(|Path(id)| id).map_err(|_| bad_product_id())
}

/// `400`: the `{id}` of a product path is not a whole number.
pub fn bad_product_id() -> ApiError {
    ApiError::bad_request("product id must be a whole number")
}

/// `404`: the tenant has no product `id`.
pub fn no_product(id: u64) -> ApiError {
    ApiError::not_found(format!("no product with id {id}"))
}

/// `404`: no route for `path`.
pub fn no_route(path: &str) -> ApiError {
    ApiError::not_found(format!("no route for {path}"))
}

/// `405`: a known path with a method it does not serve.
pub fn not_allowed() -> ApiError {
    ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// `value` as a JSON response. The cache layer adds `Vary: x-tenant-id`,
/// since the policies key by tenant.
fn json<T: Serialize>(value: &T) -> Response {
    Json(value).into_response()
}
