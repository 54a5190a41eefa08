//! The storefront's purge API (`--purge-token`), through a real TCP socket.

use clap::Parser;
use reqwest::{Client, Method, Response, StatusCode};
use storefront::cli::Options;
use storefront::{App, Config};
use tokio::net::TcpListener;

const TOKEN: &str = "storefront-purge-token";
const PRODUCT: &str = "/api/v1/products/42";

struct Server {
    base: String,
    client: Client,
}

impl Server {
    async fn start(purge_token: Option<&str>) -> Server {
        let config = Config {
            products_per_tenant: 50,
            purge_token: purge_token.map(|token| token.parse().expect("a valid token")),
            ..Config::default()
        };
        let App { router, .. } = storefront::app(&config).expect("the app builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("a bound address"));
        tokio::spawn(storefront::serve(listener, router));
        Server {
            base,
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

#[tokio::test]
async fn purge_by_tag_and_by_url() {
    let server = Server::start(Some(TOKEN)).await;
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
}

#[tokio::test]
async fn without_a_token_there_is_no_purge_api() {
    let server = Server::start(None).await;
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

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    options: Options,
}

#[test]
fn purge_token_flag() {
    let parse = |args: &[&str]| Args::try_parse_from(std::iter::once("storefront").chain(args.iter().copied()));
    let args = parse(&["--purge-token", TOKEN]).expect("the flag parses");
    let config = args.options.config(Config::default().listen);
    assert_eq!(config.purge_token, Some(TOKEN.parse().expect("a valid token")));
    assert!(!format!("{args:?} {config:?}").contains(TOKEN), "the token is never shown");
    assert_eq!(
        parse(&[])
            .expect("no flags parse")
            .options
            .config(Config::default().listen)
            .purge_token,
        None
    );
    assert!(parse(&["--purge-token", "two words"]).is_err());
}

/// The binary takes its token from `STOREFRONT_PURGE_TOKEN`, so that it
/// need not appear on the command line.
#[tokio::test]
async fn the_binary_reads_the_token_from_the_environment() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("an address")
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--products-per-tenant", "20"])
        .env("STOREFRONT_PURGE_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the storefront binary starts");
    let client = Client::new();
    let purge = |token: &'static str| {
        client
            .post(format!("http://127.0.0.1:{port}/purge"))
            .bearer_auth(token)
            .json(&serde_json::json!({"tags": ["products:acme"]}))
            .send()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let answer = loop {
        match purge(TOKEN).await {
            Ok(response) => break response,
            Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            Err(e) => panic!("the storefront never answered: {e}"),
        }
    };
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(purge("wrong").await.expect("answers").status(), StatusCode::UNAUTHORIZED);
    let _ = child.kill();
    let _ = child.wait();
}
