//! The routes, their cache middleware, and the scope-wide panic catcher.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{HttpRequest, Route, guard, web};
use cache_actix::{Cache, CacheMiddleware, Policies};
use catalog::Catalog;
use futures_util::FutureExt;
use storefront::{CATEGORIES, PRODUCT, PRODUCTS, policies};

use crate::error::{self, ApiError};
use crate::handlers;

/// The prefix of every API route: the scope their resources live in.
const API: &str = "/api/v1";

/// Registers every route on an `App` (or a scope of one), over `catalog`,
/// caching in `cache`.
///
/// Each request to the API meets exactly one cache middleware with a policy
/// for its route:
///
/// - the `/api/v1` scope is wrapped in a `CacheMiddleware` whose default is
///   no policy, with the policies of `/api/v1/products` and
///   `/api/v1/categories` by full route pattern;
/// - the `/api/v1/products/{id}` resource is wrapped in a `CacheMiddleware`
///   of its own, so its `PUT` gets that middleware's `Invalidator` too. The
///   scope's middleware has no policy for it and lets it through. (Were
///   there one, the scope's would serve the request and the resource's pass
///   it through: the outer middleware wins.)
///
/// It also registers the [`Catalog`] as `web::Data`, the JSON and query
/// extractor configs that answer rejections as JSON errors with the axum
/// storefront's statuses, and a default service answering `404` as JSON.
pub fn configure(config: &mut web::ServiceConfig, catalog: Catalog, cache: &Cache) {
    configure_with_table(config, catalog, cache, None);
}

/// [`configure`], with the policies of a TTL table (`--config cache.toml`)
/// when there is one: then the scope's middleware holds the whole table,
/// and the product resource has none of its own.
pub fn configure_with_table(config: &mut web::ServiceConfig, catalog: Catalog, cache: &Cache, cache_table: Option<&Policies>) {
    let (lists, product_policy) = match cache_table {
        Some(table) => (CacheMiddleware::new(cache, table.clone()), Policies::new(None)),
        None => (
            CacheMiddleware::new(cache, Policies::new(None))
                .route(PRODUCTS, policies::product_list())
                .route(CATEGORIES, policies::categories()),
            policies::product().into(),
        ),
    };
    let product = web::resource(in_api(PRODUCT))
        .app_data(error::product_path_config())
        .wrap(CacheMiddleware::new(cache, product_policy))
        .route(get().to(handlers::product))
        .route(web::put().to(handlers::update_product))
        .default_service(web::to(method_not_allowed));
    let api = web::scope(API)
        .wrap(lists)
        .wrap_fn(catch_panic)
        .service(
            web::resource(in_api(PRODUCTS))
                .route(get().to(handlers::list_products))
                .default_service(web::to(method_not_allowed)),
        )
        .service(product)
        .service(
            web::resource(in_api(CATEGORIES))
                .route(get().to(handlers::categories))
                .default_service(web::to(method_not_allowed)),
        );
    config
        .app_data(web::Data::new(catalog))
        // The categories handler reads through the same cache's data API.
        .app_data(web::Data::new(cache.clone()))
        .app_data(error::json_config())
        .app_data(error::query_config())
        .service(
            web::resource("/")
                .route(get().to(index))
                .default_service(web::to(method_not_allowed)),
        )
        .service(api)
        .default_service(web::to(not_found));
}

/// `pattern` relative to the API scope.
fn in_api(pattern: &'static str) -> &'static str {
    pattern.strip_prefix(API).expect("every API route is under the API scope")
}

/// A route for `GET` and `HEAD` (actix's `web::get()` leaves `HEAD` out).
fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// `GET /`: what there is to try, with this server's address filled in.
async fn index(req: HttpRequest) -> String {
    match req.headers().get(header::HOST).and_then(|host| host.to_str().ok()) {
        Some(host) => storefront::index_page(host),
        None => storefront::index_page(&req.app_config().local_addr().to_string()),
    }
}

/// Any other path.
async fn not_found(req: HttpRequest) -> ApiError {
    storefront::no_route(req.path()).into()
}

/// A known path with a method it does not serve.
async fn method_not_allowed() -> ApiError {
    storefront::not_allowed().into()
}

/// Answers a panic in a handler with a generic JSON `500` (as an error, which
/// actix turns into the response), so that the client gets a response that
/// says nothing about the panic.
///
/// It holds no clone of the request: a cache middleware inside needs the
/// only reference to it to forward the request to the handler.
fn catch_panic<S, B>(req: ServiceRequest, service: &S) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let called = panic::catch_unwind(AssertUnwindSafe(|| service.call(req)));
    async move {
        let outcome = match called {
            Ok(response) => AssertUnwindSafe(response).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        outcome.unwrap_or_else(|_panic| {
            tracing::error!("a request handler panicked");
            Err(ApiError(storefront::ApiError::internal()).into())
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::{App, HttpResponse, test};
    use cache_actix::{Cache, CachePolicy, MokaStore};

    use super::*;

    async fn panics() -> HttpResponse {
        panic!("a handler bug")
    }

    #[actix_web::test]
    async fn a_panic_behind_the_cache_is_a_generic_json_500() {
        let cache = Cache::new(MokaStore::new());
        let policy = CachePolicy::builder().ttl("1m").build().expect("a valid policy");
        let app = test::init_service(
            App::new().service(
                web::scope("/api")
                    .wrap(CacheMiddleware::new(&cache, policy))
                    .wrap_fn(catch_panic)
                    .route("/boom", web::get().to(panics)),
            ),
        )
        .await;
        for _ in 0..2 {
            let error = match test::try_call_service(&app, test::TestRequest::get().uri("/api/boom").to_request()).await {
                Ok(response) => panic!("answered {}", response.status()),
                Err(error) => error,
            };
            let response = error.as_response_error().error_response();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = actix_web::body::to_bytes(response.into_body()).await.expect("a full body");
            assert_eq!(body, r#"{"error":"internal server error"}"#);
        }
    }
}
