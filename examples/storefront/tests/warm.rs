//! `storefront --warm`: the cache is warm before the first request.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::Client;

/// Kills the storefront when the test ends, passing or failing.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn warmed_products_are_hits_from_the_first_request() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("an address")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--products-per-tenant",
            "20",
            "--warm",
            "--warm-products",
            "5",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the storefront binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let _running = Running(child);
    let mut summary = None;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("stdout is text");
        if line.starts_with("warmed ") {
            summary = Some(line);
        } else if line.starts_with("storefront listening") {
            break;
        }
    }
    // Keep reading what the storefront prints after it listens.
    std::thread::spawn(move || lines.for_each(drop));
    // 3 tenants × (5 products + 3 list pages + the category tree).
    let summary = summary.expect("a one-line summary before listening");
    assert!(
        summary.starts_with("warmed 27 requests: 27 stored, 0 already cached, 0 not stored, 0 failed"),
        "{summary}"
    );

    let client = Client::new();
    for (tenant, id) in [("acme", 1), ("globex", 5), ("initech", 3)] {
        let r = client
            .get(format!("http://127.0.0.1:{port}/api/v1/products/{id}"))
            .header("x-tenant-id", tenant)
            .send()
            .await
            .expect("the storefront answers");
        assert_eq!(r.headers()["x-cache"], "HIT", "{tenant} product {id}");
    }
    let cold = client
        .get(format!("http://127.0.0.1:{port}/api/v1/products/6"))
        .header("x-tenant-id", "acme")
        .send()
        .await
        .expect("the storefront answers");
    assert_eq!(cold.headers()["x-cache"], "MISS", "only the first 5 products are warmed");
}
