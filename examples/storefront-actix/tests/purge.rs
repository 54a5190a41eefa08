//! The actix-web storefront's purge API (`--purge-token`), through a real
//! TCP socket.

mod common;

use std::ops::Deref;

use reqwest::{Client, Method, Response, StatusCode};
use storefront_actix::Config;

const TOKEN: &str = "storefront-actix-purge-token";
const PRODUCT: &str = "/api/v1/products/42";

/// A running storefront with a client for it.
struct Server {
    running: common::Running,
    client: Client,
}

impl Deref for Server {
    type Target = common::Running;
    fn deref(&self) -> &common::Running {
        &self.running
    }
}

impl Server {
    fn start(purge_token: Option<&str>) -> Server {
        let config = Config {
            products_per_tenant: 50,
            purge_token: purge_token.map(|token| token.parse().expect("a valid token")),
            ..Config::default()
        };
        Server {
            running: common::start(config, 1),
            client: Client::new(),
        }
    }

    async fn x_cache(&self, tenant: &str, path: &str) -> String {
        let request = self.client.get(format!("{}{path}", self.base)).header("x-tenant-id", tenant);
        let response = request.send().await.expect("the server answers");
        assert_eq!(response.status(), StatusCode::OK);
        response.headers()["x-cache"].to_str().expect("ASCII").to_owned()
    }

    async fn send(&self, method: &str, path: &str, tenant: &str, body: &str) -> Response {
        let method = Method::from_bytes(method.as_bytes()).expect("a valid method");
        let request = self.client.request(method, format!("{}{path}", self.base));
        let request = request.header("x-tenant-id", tenant).bearer_auth(TOKEN).body(body.to_owned());
        request.send().await.expect("the server answers")
    }
}

async fn answer(response: Response) -> (StatusCode, String) {
    (response.status(), response.text().await.expect("a body"))
}

#[actix_web::test]
async fn purge_by_tag_and_by_url() {
    let server = Server::start(Some(TOKEN));
    for tenant in ["acme", "globex"] {
        server.x_cache(tenant, PRODUCT).await;
        assert_eq!(server.x_cache(tenant, PRODUCT).await, "HIT");
    }
    let purged = server.send("PURGE", PRODUCT, "acme", "").await;
    assert_eq!(answer(purged).await, (StatusCode::OK, r#"{"dropped":1}"#.to_owned()));
    assert_eq!(server.x_cache("acme", PRODUCT).await, "MISS");
    assert_eq!(server.x_cache("globex", PRODUCT).await, "HIT");

    let purged = server.send("POST", "/purge", "", r#"{"tags": ["product:globex:42"]}"#).await;
    assert_eq!(answer(purged).await, (StatusCode::OK, r#"{"dropped":1}"#.to_owned()));
    assert_eq!(server.x_cache("globex", PRODUCT).await, "MISS");
    assert_eq!(server.send("POST", "/purge", "", "{").await.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn without_a_token_there_is_no_purge_api() {
    let server = Server::start(None);
    server.x_cache("acme", PRODUCT).await;
    assert_eq!(
        server.send("POST", "/purge", "", r#"{"tags": ["product:acme:42"]}"#).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.send("PURGE", PRODUCT, "acme", "").await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(server.x_cache("acme", PRODUCT).await, "HIT");
}
