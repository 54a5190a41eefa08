//! `caching-proxy --config FILE` (and `--no-metrics`): the binary with a TTL
//! table, in front of an upstream that sends no caching headers at all.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::{Router, extract::State, http::Uri};

/// Kills the proxy when the test ends, passing or failing.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An upstream answering every path with its path and a count of the
/// requests it got, and no `Cache-Control`, `Expires` or validators.
async fn upstream() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .fallback(|State(calls): State<Arc<AtomicUsize>>, uri: Uri| async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            format!("{} #{n}", uri.path())
        })
        .with_state(Arc::clone(&calls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), calls)
}

/// A TOML file in the temp dir, removed on drop.
struct TableFile(PathBuf);

impl TableFile {
    fn new(contents: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("caching-proxy-{}-{nanos}.toml", std::process::id()));
        std::fs::write(&path, contents).expect("a writable temp dir");
        TableFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for TableFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn proxy(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caching-proxy"));
    command.args(["--listen", "127.0.0.1:0"]).args(args).env("RUST_LOG", "warn");
    command
}

#[tokio::test]
async fn the_table_sets_policies_by_path_and_other_paths_keep_rfc9111() {
    let (upstream, calls) = upstream().await;
    let table = TableFile::new(
        r#"
        [defaults]
        ttl = "10m"
        namespace = "api"

        [[route]]
        path = "/api/products/{id}"
        tags = ["product:{id}"]
        invalidated_by = [{ method = "POST", path = "/api/products/{id}/reviews" }]

        [[route]]
        path = "/api/*"
        cache = false
        "#,
    );
    let mut child = proxy(&[
        "--upstream",
        &upstream,
        "--config",
        table.path(),
        "--no-metrics",
        "--purge-token",
        "s3cret",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("the proxy binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let _running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").expect("text");
    let base = first
        .strip_prefix("caching-proxy on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    std::thread::spawn(move || lines.for_each(drop));

    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("{base}{path}"));
        async move {
            let r = request.send().await.expect("the proxy answers");
            let x_cache = r
                .headers()
                .get("x-cache")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (x_cache, r.text().await.expect("a body"))
        }
    };
    // In the table: kept 10 minutes though the upstream says nothing.
    assert_eq!(get("/api/products/1").await, ("MISS".to_owned(), "/api/products/1 #1".to_owned()));
    assert_eq!(get("/api/products/1").await, ("HIT".to_owned(), "/api/products/1 #1".to_owned()));
    // `cache = false`: forwarded every time, untouched.
    assert_eq!(get("/api/orders").await, (String::new(), "/api/orders #2".to_owned()));
    assert_eq!(get("/api/orders").await, (String::new(), "/api/orders #3".to_owned()));
    // Not in the table: RFC 9111, and without freshness nothing is reused.
    assert_eq!(get("/about").await.1, "/about #4");
    assert_eq!(get("/about").await.1, "/about #5");
    // The rule: a POST on the product's reviews drops the product.
    let post = client
        .post(format!("{base}/api/products/1/reviews"))
        .send()
        .await
        .expect("the proxy answers");
    assert_eq!(post.text().await.unwrap(), "/api/products/1/reviews #6");
    assert_eq!(get("/api/products/1").await, ("MISS".to_owned(), "/api/products/1 #7".to_owned()));
    // --no-metrics: the upstream's own /metrics, not the proxy's.
    assert_eq!(get("/metrics").await.1, "/metrics #8");
    assert_eq!(calls.load(Ordering::SeqCst), 8);
    // PURGE finds the entry under the table's policy (its own namespace).
    assert_eq!(get("/api/products/1").await.0, "HIT");
    let purge = client
        .request(reqwest::Method::from_bytes(b"PURGE").unwrap(), format!("{base}/api/products/1"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("the proxy answers");
    assert_eq!(purge.status(), reqwest::StatusCode::OK);
    assert_eq!(purge.text().await.unwrap(), r#"{"dropped":1}"#);
    assert_eq!(get("/api/products/1").await, ("MISS".to_owned(), "/api/products/1 #9".to_owned()));
}

#[test]
fn a_mistake_in_the_table_stops_the_start_and_names_file_route_and_field() {
    let table = TableFile::new("[[route]]\npath = \"/a\"\n\n[[route]]\npath = \"/b/{id}\"\nttl = \"ten minutes\"\n");
    let path = table.path().to_owned();
    let output = proxy(&["--upstream", "http://127.0.0.1:9", "--config", &path])
        .stdin(Stdio::null())
        .output()
        .expect("the proxy binary runs");
    assert!(!output.status.success(), "the proxy must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("{path}: route 2 (/b/{{id}}): ttl: invalid duration `ten minutes`");
    assert!(stderr.contains(&expected), "stderr {stderr:?} lacks {expected:?}");
}
