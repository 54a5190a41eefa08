//! The behaviour suite through the actix-web adapter, and what only actix
//! has: scope and app-level middleware with per-resource policies.

use actix_web::{App, web};
use cache_actix::{CacheMiddleware, Policies};
use cache_tests::{
    actix_adapter::{Actix, handle, serve},
    origin::Origin,
    support::{assert_route_overrides, cache_status, manual_cache, policy},
};

cache_tests::behaviour_suite!(Actix);

/// A scope-level middleware: a default policy, per-resource overrides by
/// full pattern, and a resource left uncached.
#[tokio::test]
async fn scope_policy_with_resource_overrides() {
    let (cache, origin) = (manual_cache(), Origin::default());
    let (c, o) = (cache.clone(), origin.clone());
    let s = serve(
        move || {
            let table = CacheMiddleware::new(&c, policy("60s"))
                .route("/plain/{id}", policy("1h"))
                .route("/uncached", None);
            App::new().app_data(web::Data::new(o.clone())).service(
                web::scope("")
                    .wrap(table)
                    .route("/plain/{id}", web::get().to(handle))
                    .route("/etag", web::get().to(handle))
                    .route("/uncached", web::get().to(handle)),
            )
        },
        origin,
        cache,
    );
    assert_route_overrides(&s).await;
}

/// An app-level middleware around a resource-level one: the outer serves,
/// once; a scope without a default lets the resource's own policy apply.
#[tokio::test]
async fn nested_middleware_serves_once() {
    let (cache, origin) = (manual_cache(), Origin::default());
    let (c, o) = (cache.clone(), origin.clone());
    let s = serve(
        move || {
            App::new()
                .app_data(web::Data::new(o.clone()))
                .wrap(CacheMiddleware::new(&c, policy("60s")))
                .service(web::resource("/plain/{id}").wrap(CacheMiddleware::new(&c, policy("1h"))).to(handle))
                .service(
                    web::scope("/api")
                        .wrap(CacheMiddleware::new(&c, Policies::new(None)))
                        .service(web::resource("/items/{id}").wrap(CacheMiddleware::new(&c, policy("2h"))).to(handle)),
                )
        },
        origin,
        cache,
    );
    assert_eq!(cache_status(&s, "/plain/2").await, "cache; fwd=uri-miss; fwd-status=200; stored");
    assert_eq!(cache_status(&s, "/plain/2").await, "cache; hit; ttl=60");
    assert_eq!(s.origin.calls("/plain/2"), 1);
}
