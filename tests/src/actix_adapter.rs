//! The test app on actix-web, behind `cache-actix` middleware.

use std::{future::Future, time::Duration};

use actix_web::{
    App, HttpMessage, HttpRequest, HttpResponse, HttpServer,
    dev::{Service, ServiceRequest, ServiceResponse},
    http::{StatusCode as ActixStatus, header},
    web,
};
use cache_actix::{Cache, CacheMiddleware, Invalidator, Policies};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::{
    Adapter, Server,
    origin::{DEADLINE_HEADER, Origin, OriginBody, OriginRequest},
};

/// Mounts every test route as `web::resource(..).wrap(CacheMiddleware::new(..))`,
/// served by actix-web on its own thread with two workers.
#[derive(Debug)]
pub struct Actix;

impl Adapter for Actix {
    const BACKGROUND_REFRESH: bool = false;

    async fn start(cache: Cache, origin: Origin) -> Server {
        let (app_cache, app_origin) = (cache.clone(), origin.clone());
        serve(move || app(app_cache.clone(), app_origin.clone()), origin, cache)
    }

    async fn start_with_table(cache: Cache, origin: Origin, policies: Policies) -> Server {
        let (app_cache, app_origin) = (cache.clone(), origin.clone());
        serve(
            move || {
                App::new()
                    .app_data(web::Data::new(app_origin.clone()))
                    .wrap(CacheMiddleware::new(&app_cache, policies.clone()))
                    .wrap_fn(deadline)
                    .default_service(web::route().to(handle))
            },
            origin,
            cache,
        )
    }
}

/// Serves the apps `factory` makes (one per worker) on a free loopback
/// port, on a thread of its own with two workers.
pub fn serve<F, T, B>(factory: F, origin: Origin, cache: Cache) -> Server
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: actix_web::dev::ServiceFactory<ServiceRequest, Config = (), Response = ServiceResponse<B>, Error = actix_web::Error, InitError = ()>
        + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let addr = listener.local_addr().expect("a bound listener has an address");
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(factory)
                .workers(2)
                .listen(listener)
                .expect("actix takes the listener")
                .run();
            server.await
        })
    });
    Server::new(format!("http://{addr}"), origin, cache)
}

fn app(
    cache: Cache,
    origin: Origin,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let mut app = App::new().app_data(web::Data::new(origin.clone()));
    for (pattern, policy) in origin.clone().routes() {
        let resource = web::resource(pattern).route(web::route().to(handle));
        app = match policy {
            Some(policy) => app.service(resource.wrap(CacheMiddleware::new(&cache, policy)).wrap_fn(deadline)),
            None => app.service(resource.wrap_fn(deadline)),
        };
    }
    app
}

/// Drops the request's future after [`DEADLINE_HEADER`] milliseconds.
fn deadline<S, B>(req: ServiceRequest, service: &S) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let ms: Option<u64> = req.headers().get(DEADLINE_HEADER).and_then(|v| v.to_str().ok()?.parse().ok());
    let response = service.call(req);
    async move {
        match ms {
            Some(ms) => tokio::time::timeout(Duration::from_millis(ms), response)
                .await
                .unwrap_or_else(|_| Err(actix_web::error::ErrorGatewayTimeout("deadline"))),
            None => response.await,
        }
    }
}

/// The handler of every test route.
pub async fn handle(req: HttpRequest, origin: web::Data<Origin>) -> HttpResponse {
    let request = OriginRequest {
        method: Method::from_bytes(req.method().as_str().as_bytes()).unwrap_or(Method::GET),
        path: req.path().to_owned(),
        query: Some(req.query_string().to_owned()).filter(|q| !q.is_empty()),
        headers: to_http_headers(req.headers()),
        invalidator: req.extensions().get::<Invalidator>().cloned(),
    };
    let answer = origin.respond(req.match_pattern().as_deref(), request).await;
    let mut builder = HttpResponse::build(ActixStatus::from_u16(answer.status.as_u16()).unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR));
    for (name, value) in &answer.headers {
        builder.append_header((name.as_str(), value.as_bytes()));
    }
    let mut response = match answer.body {
        OriginBody::Full(bytes) => builder.body(bytes),
        OriginBody::Stream(stream) => builder.streaming(stream),
    };
    if let Some(hints) = answer.hints {
        response.extensions_mut().insert(hints);
    }
    response
}

fn to_http_headers(actix: &header::HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in actix.iter() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    headers
}
