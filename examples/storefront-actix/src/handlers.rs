//! The request handlers: each reads the tenant, asks the catalog, answers
//! JSON — the axum storefront's handlers, with actix-web extractors.

use actix_web::{HttpResponse, web};
use cache_actix::{Cache, Invalidator};
use catalog::{Catalog, ListQuery, ProductUpdate};

use crate::error::ApiError;
use crate::tenant::Tenant;

/// The result of an API handler.
type ApiResult = Result<HttpResponse, ApiError>;

/// `GET /api/v1/products`: one page of the tenant's products.
///
/// Tags the response `category:{tenant}:{category}` when filtered by
/// category, with a `CacheHints` in the response's extensions (the cache
/// middleware takes it out before the client sees the response).
pub(crate) async fn list_products(tenant: Tenant, catalog: web::Data<Catalog>, query: web::Query<ListQuery>) -> ApiResult {
    let page = catalog.list_products(tenant.as_str(), &query).await?;
    let mut response = HttpResponse::Ok().json(&page);
    response.extensions_mut().insert(storefront::list_hints(tenant.as_str(), &query));
    Ok(response)
}

/// `GET /api/v1/products/{id}`: one product, or `404`.
pub(crate) async fn product(tenant: Tenant, catalog: web::Data<Catalog>, id: web::Path<u64>) -> ApiResult {
    let id = id.into_inner();
    match catalog.product(tenant.as_str(), id).await? {
        Some(product) => {
            // Tagged from the parsed id: `/products/042` is product 42 too.
            let mut response = HttpResponse::Ok().json(&product);
            response.extensions_mut().insert(storefront::product_hints(tenant.as_str(), id));
            Ok(response)
        }
        None => Err(storefront::no_product(id).into()),
    }
}

/// `PUT /api/v1/products/{id}`: applies a [`ProductUpdate`], then drops the
/// cached copies of the product and of the tenant's lists (and of the
/// category counts when the category changes) through the [`Invalidator`]
/// the cache middleware gave the request.
pub(crate) async fn update_product(
    tenant: Tenant,
    catalog: web::Data<Catalog>,
    invalidator: web::ReqData<Invalidator>,
    id: web::Path<u64>,
    update: web::Json<ProductUpdate>,
) -> ApiResult {
    let id = id.into_inner();
    let Some(product) = catalog.update_product(tenant.as_str(), id, &update).await? else {
        return Err(storefront::no_product(id).into());
    };
    storefront::invalidate_product(&invalidator, tenant.as_str(), id, update.category.is_some()).await;
    Ok(HttpResponse::Ok().json(&product))
}

/// `GET /api/v1/categories`: the tenant's categories with product counts,
/// read through the data cache ([`storefront::policies::categories_data`])
/// when the response cache misses, as the axum storefront does.
pub(crate) async fn categories(tenant: Tenant, catalog: web::Data<Catalog>, cache: web::Data<Cache>) -> ApiResult {
    let tenant = tenant.as_str();
    let policy = storefront::policies::categories_data(tenant);
    let categories = cache.get_or_insert_with(tenant, &policy, || catalog.categories(tenant)).await?;
    Ok(HttpResponse::Ok().json(categories))
}
