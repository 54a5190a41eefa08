//! Metrics and traces through real HTTP.
//!
//! This binary installs its own global `DebuggingRecorder` and a tracing
//! subscriber that captures the cache's spans. A snapshot of the recorder
//! drains it, so the tests run one at a time ([`serial`]) and each asserts
//! exactly what its own requests recorded.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Extension, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use cache_axum::{Cache, CacheLayer, CachePolicy, Clock, Invalidator, MokaStore};
use cache_core::{RedisStore, metrics::Outcome, store::BreakerState};
use cache_tests::redis_server::RedisServer;
use futures_util::future::join_all;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use reqwest::Client;
use tokio::sync::{Notify, watch};
use tracing_subscriber::{Layer, layer::SubscriberExt};

/// The recorder's snapshotter and the captured spans, installed once for
/// this binary.
struct Observed {
    metrics: Snapshotter,
    spans: Arc<Mutex<Vec<ClosedSpan>>>,
}

static OBSERVED: LazyLock<Observed> = LazyLock::new(|| {
    let recorder = DebuggingRecorder::new();
    let metrics = recorder.snapshotter();
    recorder.install().expect("this binary installs the only metrics recorder");
    let spans = Arc::new(Mutex::new(Vec::new()));
    let capture = Capture(Arc::clone(&spans)).with_filter(tracing_subscriber::EnvFilter::new("cache_core=debug"));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture))
        .expect("this binary installs the only tracing subscriber");
    Observed { metrics, spans }
});

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for the other tests of this binary to finish, then drains what
/// they recorded.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().await;
    OBSERVED.metrics.snapshot();
    guard
}

/// What was recorded since the last snapshot, by `name{label="value",...}`
/// with the labels in alphabetical order.
struct Recorded(HashMap<String, DebugValue>);

fn recorded() -> Recorded {
    let snapshot = OBSERVED.metrics.snapshot().into_vec();
    let by_key = snapshot
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key.labels().map(|l| format!("{}=\"{}\"", l.key(), l.value())).collect();
            labels.sort();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect();
    Recorded(by_key)
}

impl Recorded {
    fn counter(&self, key: &str) -> u64 {
        match self.0.get(key) {
            Some(DebugValue::Counter(n)) => *n,
            Some(other) => panic!("{key} is not a counter: {other:?}"),
            None => 0,
        }
    }

    fn gauge(&self, key: &str) -> f64 {
        match self.0.get(key) {
            Some(DebugValue::Gauge(value)) => value.into_inner(),
            other => panic!("{key} is not a gauge: {other:?}"),
        }
    }

    fn histogram(&self, key: &str) -> Vec<f64> {
        match self.0.get(key) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
            Some(other) => panic!("{key} is not a histogram: {other:?}"),
            None => Vec::new(),
        }
    }

    /// The keys of metric `name` with a non-zero value, sorted.
    fn keys(&self, name: &str) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .0
            .iter()
            .filter(|(key, value)| key.starts_with(&format!("{name}{{")) && **value != DebugValue::Counter(0))
            .map(|(key, _)| key.as_str())
            .collect();
        keys.sort_unstable();
        keys
    }
}

fn requests(route: &str, outcome: Outcome) -> String {
    format!("http_cache_requests_total{{outcome=\"{outcome}\",route=\"{route}\"}}")
}

fn operation(store: &str, op: &str) -> String {
    format!("http_cache_store_operation_seconds{{operation=\"{op}\",store=\"{store}\"}}")
}

/// Serves `router` on a free loopback port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
    let addr = listener.local_addr().expect("a bound listener has an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// What the test handlers share: whether the origin fails, a gate that
/// holds `/slow` while closed, and how many calls reached the origin.
#[derive(Clone)]
struct Origin {
    failing: Arc<AtomicBool>,
    gate: watch::Sender<bool>,
    calls: Arc<AtomicUsize>,
    entered: Arc<Notify>,
}

impl Default for Origin {
    fn default() -> Self {
        Origin {
            failing: Arc::default(),
            gate: watch::Sender::new(true),
            calls: Arc::default(),
            entered: Arc::default(),
        }
    }
}

async fn product(State(origin): State<Origin>, Path(id): Path<u64>) -> impl IntoResponse {
    origin.calls.fetch_add(1, Ordering::SeqCst);
    if origin.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new(), "down".to_owned());
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, "\"v1\"".parse().expect("a valid ETag"));
    (StatusCode::OK, headers, format!("product {id}"))
}

async fn update(State(origin): State<Origin>) -> &'static str {
    origin.calls.fetch_add(1, Ordering::SeqCst);
    "updated"
}

async fn slow(State(origin): State<Origin>) -> &'static str {
    origin.calls.fetch_add(1, Ordering::SeqCst);
    origin.entered.notify_one();
    let mut open = origin.gate.subscribe();
    open.wait_for(|open| *open).await.expect("the gate lives as long as the origin");
    "slow"
}

async fn invalidate(Extension(invalidator): Extension<Invalidator>, Path(id): Path<u64>) -> String {
    let dropped = invalidator.tag(format!("item:{id}")).await.expect("moka invalidates");
    dropped.to_string()
}

fn labelled(label: &str, ttl: &str) -> cache_axum::CachePolicyBuilder {
    CachePolicy::builder().label(label).ttl(ttl)
}

/// A GET with an optional tenant and extra headers; returns the status and
/// `X-Cache`.
async fn fetch(client: &Client, url: String, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the server answers");
    let x_cache = response
        .headers()
        .get("x-cache")
        .map_or("", |v| v.to_str().expect("ASCII"))
        .to_owned();
    (StatusCode::from_u16(response.status().as_u16()).expect("a valid status"), x_cache)
}

/// Every outcome but `coalesced` and `error` on one route, counted once
/// per request under the policy's label; a policy without a label counts
/// under `default`. Tenants and paths never become labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_by_route_label_and_outcome() {
    let _serial = serial().await;
    let cache = Cache::builder()
        .clock(Clock::manual())
        .store(MokaStore::new())
        .build()
        .expect("a cache");
    let origin = Origin::default();
    let products = labelled("/products/{id}", "60s")
        .tenant_header("x-tenant-id")
        .tag("product:{tenant}:{id}")
        .stale_if_error("5m")
        .build()
        .expect("a valid policy");
    let router = Router::new()
        .route("/products/{id}", get(product).put(update).layer(CacheLayer::new(&cache, products)))
        .route(
            "/plain/{id}",
            get(product).layer(CacheLayer::new(&cache, CachePolicy::with_ttl(Duration::from_secs(60)))),
        )
        .with_state(origin.clone());
    let base = serve(router).await;
    let client = Client::new();
    let acme = [("x-tenant-id", "acme")];
    let product_url = || format!("{base}/products/1");

    let expect = [
        (fetch(&client, product_url(), &acme).await, (StatusCode::OK, "MISS")),
        (fetch(&client, product_url(), &acme).await, (StatusCode::OK, "HIT")),
        (
            fetch(&client, product_url(), &[("x-tenant-id", "acme"), ("if-none-match", "\"v1\"")]).await,
            (StatusCode::NOT_MODIFIED, "HIT"),
        ),
        (
            fetch(&client, product_url(), &[("x-tenant-id", "globex")]).await,
            (StatusCode::OK, "MISS"),
        ),
        (
            fetch(&client, product_url(), &[("x-tenant-id", "acme"), ("range", "bytes=0-1")]).await,
            (StatusCode::OK, "BYPASS"),
        ),
    ];
    for (i, ((status, x_cache), (want_status, want_x_cache))) in expect.iter().enumerate() {
        assert_eq!((*status, x_cache.as_str()), (*want_status, *want_x_cache), "request {i}");
    }
    let put = client
        .put(product_url())
        .header("x-tenant-id", "acme")
        .send()
        .await
        .expect("an answer");
    assert_eq!(put.headers()["x-cache"], "BYPASS");
    assert_eq!(
        fetch(&client, product_url(), &acme).await,
        (StatusCode::OK, "MISS".into()),
        "the PUT dropped it"
    );
    cache.clock().advance(Duration::from_secs(70));
    origin.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        fetch(&client, product_url(), &acme).await,
        (StatusCode::OK, "STALE".into()),
        "stale-if-error"
    );
    origin.failing.store(false, Ordering::SeqCst);
    assert_eq!(fetch(&client, format!("{base}/plain/7"), &[]).await.1, "MISS");
    assert_eq!(fetch(&client, format!("{base}/plain/7"), &[]).await.1, "HIT");

    let m = recorded();
    let route = "/products/{id}";
    assert_eq!(m.counter(&requests(route, Outcome::Miss)), 3);
    assert_eq!(m.counter(&requests(route, Outcome::Hit)), 2);
    assert_eq!(m.counter(&requests(route, Outcome::Bypass)), 2);
    assert_eq!(m.counter(&requests(route, Outcome::Stale)), 1);
    assert_eq!(m.counter(&requests("default", Outcome::Miss)), 1);
    assert_eq!(m.counter(&requests("default", Outcome::Hit)), 1);
    let mut series = [
        requests("/products/{id}", Outcome::Bypass),
        requests("/products/{id}", Outcome::Hit),
        requests("/products/{id}", Outcome::Miss),
        requests("/products/{id}", Outcome::Stale),
        requests("default", Outcome::Hit),
        requests("default", Outcome::Miss),
    ];
    series.sort();
    assert_eq!(
        m.keys("http_cache_requests_total"),
        series,
        "one series per route label and outcome: no tenant, no path"
    );
    // The PUT dropped its route's tag and its URI's tag: one entry.
    assert_eq!(m.counter("http_cache_invalidations_total{kind=\"tag\"}"), 2);
    assert_eq!(m.counter("http_cache_invalidated_entries_total{kind=\"tag\"}"), 1);
}

/// Responses that are fetched and not stored are counted by route label and
/// reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_not_stored_are_counted_by_reason() {
    let _serial = serial().await;
    let cache = Cache::new(MokaStore::new());
    let policy = || CachePolicy::with_ttl(Duration::from_secs(60));
    let router = Router::new()
        .route(
            "/cookie",
            get(|| async { ([(header::SET_COOKIE, "session=1")], "personal") }).layer(CacheLayer::new(&cache, policy())),
        )
        .route(
            "/private",
            get(|| async { ([(header::CACHE_CONTROL, "private")], "personal") })
                .layer(CacheLayer::new(&cache, labelled("private", "60s").build().expect("a valid policy"))),
        )
        .route("/plain", get(|| async { "shared" }).layer(CacheLayer::new(&cache, policy())));
    let base = serve(router).await;
    let client = Client::new();
    for _ in 0..2 {
        assert_eq!(fetch(&client, format!("{base}/cookie"), &[]).await.1, "MISS");
    }
    assert_eq!(fetch(&client, format!("{base}/private"), &[]).await.1, "MISS");
    let no_store = [("cache-control", "no-store")];
    assert_eq!(fetch(&client, format!("{base}/plain"), &no_store).await.1, "MISS");
    assert_eq!(fetch(&client, format!("{base}/plain"), &[]).await.1, "MISS");
    assert_eq!(fetch(&client, format!("{base}/plain"), &[]).await.1, "HIT");

    let m = recorded();
    let not_stored = |route: &str, reason: &str| format!("http_cache_not_stored_total{{reason=\"{reason}\",route=\"{route}\"}}");
    assert_eq!(m.counter(&not_stored("default", "set_cookie")), 2);
    assert_eq!(m.counter(&not_stored("private", "cache_control")), 1);
    assert_eq!(m.counter(&not_stored("default", "request_no_store")), 1);
    let mut series = [
        not_stored("default", "request_no_store"),
        not_stored("default", "set_cookie"),
        not_stored("private", "cache_control"),
    ];
    series.sort();
    assert_eq!(m.keys("http_cache_not_stored_total"), series);
}

/// Concurrent misses on one key: one `miss`, and every request that shared
/// its response is `coalesced`, as its `Cache-Status` says (`collapsed`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_requests_are_counted() {
    let _serial = serial().await;
    let cache = Cache::new(MokaStore::new());
    let origin = Origin::default();
    origin.gate.send_replace(false);
    let router = Router::new()
        .route(
            "/slow",
            get(slow).layer(CacheLayer::new(&cache, labelled("/slow", "60s").build().expect("valid"))),
        )
        .with_state(origin.clone());
    let base = serve(router).await;
    let client = Client::builder().pool_max_idle_per_host(64).build().expect("a client");
    let entered = origin.entered.notified();
    let all = tokio::spawn(join_all((0..20).map(|_| {
        let request = client.get(format!("{base}/slow"));
        async move {
            let response = request.send().await.expect("an answer");
            let cache_status = response.headers()["cache-status"].to_str().expect("ASCII").to_owned();
            let x_cache = response.headers()["x-cache"].to_str().expect("ASCII").to_owned();
            (x_cache, cache_status)
        }
    })));
    entered.await;
    // Let the others queue behind the first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    origin.gate.send_replace(true);
    let responses = tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("they finish")
        .expect("no panic");

    assert_eq!(origin.calls.load(Ordering::SeqCst), 1);
    let collapsed = responses.iter().filter(|(_, cs)| cs.ends_with("; collapsed")).count() as u64;
    let hits = responses.iter().filter(|(x, _)| x == "HIT").count() as u64;
    assert!(collapsed > 0, "no request waited on the first");
    let m = recorded();
    assert_eq!(m.counter(&requests("/slow", Outcome::Miss)), 1);
    assert_eq!(m.counter(&requests("/slow", Outcome::Coalesced)), collapsed);
    assert_eq!(m.counter(&requests("/slow", Outcome::Hit)), hits);
    assert_eq!(1 + collapsed + hits, 20);
}

/// An origin that fails (an error, not a response) with nothing stored to
/// answer instead counts as `error`; on actix-web, whose services can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_errors_are_counted() {
    use actix_web::{App, HttpResponse, HttpServer, dev::ServiceResponse, web};

    let _serial = serial().await;
    let cache = Cache::new(MokaStore::new());
    let failing = Arc::new(AtomicBool::new(true));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    let (app_cache, app_failing) = (cache.clone(), Arc::clone(&failing));
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let failing = Arc::clone(&app_failing);
                let policy = labelled("/fragile", "60s").build().expect("valid");
                App::new().service(
                    web::resource("/fragile")
                        .route(web::get().to(|| async { HttpResponse::Ok().body("fine") }))
                        // The origin's service fails while `failing` holds.
                        .wrap_fn(move |req, service| {
                            use actix_web::dev::Service;
                            let fail = failing.load(Ordering::SeqCst);
                            let response = service.call(req);
                            async move {
                                if fail {
                                    return Err::<ServiceResponse, _>(actix_web::error::ErrorBadGateway("origin down"));
                                }
                                response.await
                            }
                        })
                        .wrap(cache_actix::CacheMiddleware::new(&app_cache, policy)),
                )
            })
            .workers(1)
            .listen(listener)
            .expect("actix takes the listener")
            .run()
            .await
        })
    });
    let client = Client::new();
    assert_eq!(fetch(&client, format!("{base}/fragile"), &[]).await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(fetch(&client, format!("{base}/fragile"), &[]).await.0, StatusCode::BAD_GATEWAY);
    failing.store(false, Ordering::SeqCst);
    assert_eq!(
        fetch(&client, format!("{base}/fragile"), &[]).await,
        (StatusCode::OK, "MISS".into())
    );
    assert_eq!(fetch(&client, format!("{base}/fragile"), &[]).await, (StatusCode::OK, "HIT".into()));

    let m = recorded();
    assert_eq!(m.counter(&requests("/fragile", Outcome::Error)), 2);
    assert_eq!(m.counter(&requests("/fragile", Outcome::Miss)), 1);
    assert_eq!(m.counter(&requests("/fragile", Outcome::Hit)), 1);
}

/// The moka store's operations are timed, its size sampled, and
/// invalidations counted by kind with the entries they dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_operations_sizes_and_invalidations() {
    let _serial = serial().await;
    let cache = Cache::new(MokaStore::new());
    let policy = labelled("/items/{id}", "60s").tag("item:{id}").build().expect("valid");
    let router = Router::new()
        .route("/items/{id}", get(product).layer(CacheLayer::new(&cache, policy.clone())))
        .route(
            "/invalidate/{id}",
            get(invalidate).layer(CacheLayer::new(&cache, cache_axum::Policies::new(None))),
        )
        .with_state(Origin::default());
    let base = serve(router).await;
    let client = Client::new();
    for id in 1..=3 {
        assert_eq!(fetch(&client, format!("{base}/items/{id}"), &[]).await.1, "MISS");
        assert_eq!(fetch(&client, format!("{base}/items/{id}"), &[]).await.1, "HIT");
    }
    cache.record_metrics();
    let m = recorded();
    assert_eq!(m.gauge("http_cache_store_entries{store=\"moka\"}"), 3.0);
    assert!(m.gauge("http_cache_store_bytes{store=\"moka\"}") > 0.0);
    assert_eq!(m.histogram(&operation("moka", "put")).len(), 3);
    let gets = m.histogram(&operation("moka", "get"));
    assert!(gets.len() >= 6, "one read per request at least: {}", gets.len());
    assert!(gets.iter().all(|s| (0.0..1.0).contains(s)), "{gets:?}");
    assert_eq!(m.counter(&requests("/items/{id}", Outcome::Miss)), 3);
    assert_eq!(m.counter(&requests("/items/{id}", Outcome::Hit)), 3);

    // A tag from a handler, a key and a prefix from code.
    assert_eq!(
        client
            .get(format!("{base}/invalidate/1"))
            .send()
            .await
            .expect("an answer")
            .text()
            .await
            .expect("a body"),
        "1"
    );
    let (parts, ()) = http::Request::get("/items/2").body(()).expect("a request").into_parts();
    assert!(
        cache
            .invalidator()
            .key(policy.key().build(&parts).as_str())
            .await
            .expect("moka deletes")
    );
    assert!(!cache.invalidator().key("no such key").await.expect("moka deletes"));
    let prefix = policy.key().prefix(None, "/items/");
    assert_eq!(cache.invalidator().prefix(&prefix).await.expect("moka scans"), 1);
    cache.record_metrics();
    let m = recorded();
    for (kind, invalidations, dropped) in [("tag", 1, 1), ("key", 2, 1), ("prefix", 1, 1)] {
        assert_eq!(
            m.counter(&format!("http_cache_invalidations_total{{kind=\"{kind}\"}}")),
            invalidations,
            "{kind}"
        );
        assert_eq!(
            m.counter(&format!("http_cache_invalidated_entries_total{{kind=\"{kind}\"}}")),
            dropped,
            "{kind}"
        );
    }
    for op in ["invalidate_tags", "invalidate_prefix"] {
        assert_eq!(m.histogram(&operation("moka", op)).len(), 1, "{op}");
    }
    assert_eq!(m.histogram(&operation("moka", "delete")).len(), 2);
    assert_eq!(m.gauge("http_cache_store_entries{store=\"moka\"}"), 0.0);
    assert_eq!(m.gauge("http_cache_store_bytes{store=\"moka\"}"), 0.0);
}

/// A Redis store: its operations are timed, its failures counted, and its
/// circuit breaker reported as it opens and closes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_operations_errors_and_breaker() {
    let _serial = serial().await;
    let mut server = RedisServer::start();
    let port = server.port();
    let store = RedisStore::builder(server.url())
        .response_timeout(Duration::from_millis(300))
        .failure_threshold(2)
        .cool_down(Duration::from_millis(300))
        .connect()
        .await
        .expect("connects");
    let cache = Cache::new(store.clone());
    let router = Router::new()
        .route(
            "/r/{id}",
            get(product).layer(CacheLayer::new(&cache, labelled("/r/{id}", "60s").build().expect("valid"))),
        )
        .with_state(Origin::default());
    let base = serve(router).await;
    let client = Client::new();
    assert_eq!(fetch(&client, format!("{base}/r/1"), &[]).await.1, "MISS");
    assert_eq!(fetch(&client, format!("{base}/r/1"), &[]).await.1, "HIT");
    cache.record_metrics();
    let m = recorded();
    assert!(m.histogram(&operation("redis", "get")).len() >= 2, "one read per request at least");
    assert_eq!(m.histogram(&operation("redis", "put")).len(), 1);
    assert_eq!(m.gauge("http_cache_breaker_state{store=\"redis\"}"), 0.0);
    assert!(m.keys("http_cache_store_errors_total").is_empty());

    server.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.breaker_state() != BreakerState::Open {
        assert!(Instant::now() < deadline, "the breaker never opened");
        assert_eq!(fetch(&client, format!("{base}/r/1"), &[]).await, (StatusCode::OK, "MISS".into()));
    }
    let m = recorded();
    assert_eq!(m.counter("http_cache_breaker_transitions_total{state=\"open\",store=\"redis\"}"), 1);
    assert_eq!(m.gauge("http_cache_breaker_state{store=\"redis\"}"), 2.0);
    let failures: u64 = m
        .keys("http_cache_store_errors_total")
        .iter()
        .filter(|key| key.contains("store=\"redis\"") && !key.contains("circuit_open"))
        .map(|key| m.counter(key))
        .sum();
    assert_eq!(failures, store.breaker_stats().failures, "each failure counted once");

    let _restarted = RedisServer::start_on(port, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fetch(&client, format!("{base}/r/1"), &[]).await.1 != "HIT" {
        assert!(Instant::now() < deadline, "the cache never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.breaker_state(), BreakerState::Closed);
    cache.record_metrics();
    let m = recorded();
    let stats = store.breaker_stats();
    let transitions = |state: &str| {
        m.counter(&format!(
            "http_cache_breaker_transitions_total{{state=\"{state}\",store=\"redis\"}}"
        ))
    };
    assert_eq!(
        transitions("open"),
        stats.opened - 1,
        "opened again after a failed probe, as the stats count"
    );
    assert_eq!(transitions("closed"), stats.closed);
    assert!(transitions("half_open") >= 1, "probed after the cool-down");
    assert_eq!(m.gauge("http_cache_breaker_state{store=\"redis\"}"), 0.0);
}

/// Each request runs in an `http_cache` span with its route label, a short
/// hash of its key and its outcome, and neither the key nor the path nor
/// the tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_run_in_spans_with_route_key_hash_and_outcome() {
    let _serial = serial().await;
    let cache = Cache::new(MokaStore::new());
    let policy = labelled("/traced/{id}", "60s").tenant_header("x-tenant-id").build().expect("valid");
    let router = Router::new()
        .route("/traced/{id}", get(product).layer(CacheLayer::new(&cache, policy)))
        .with_state(Origin::default());
    let base = serve(router).await;
    let client = Client::new();
    let tenant = [("x-tenant-id", "tenant-4242")];
    assert_eq!(fetch(&client, format!("{base}/traced/31337"), &tenant).await.1, "MISS");
    assert_eq!(fetch(&client, format!("{base}/traced/31337"), &tenant).await.1, "HIT");
    assert_eq!(
        fetch(&client, format!("{base}/traced/31337"), &[("x-tenant-id", "other")]).await.1,
        "MISS"
    );

    let spans: Vec<ClosedSpan> = OBSERVED
        .spans
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|s| s.fields.get("route").map(String::as_str) == Some("/traced/{id}"))
        .cloned()
        .collect();
    let outcomes: Vec<&str> = spans.iter().map(|s| s.fields["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["miss", "hit", "miss"]);
    assert!(spans.iter().all(|s| s.name == "http_cache"));
    let keys: Vec<&str> = spans.iter().map(|s| s.fields["key"].as_str()).collect();
    assert!(
        keys.iter().all(|k| k.len() == 16 && k.bytes().all(|b| b.is_ascii_hexdigit())),
        "{keys:?}"
    );
    assert_eq!(keys[0], keys[1], "one key, one hash");
    assert_ne!(keys[0], keys[2], "another tenant, another key");
    for span in &spans {
        for value in span.fields.values() {
            assert!(!value.contains("4242") && !value.contains("31337"), "{span:?}");
        }
    }
}

/// A closed span: its name and fields.
#[derive(Debug, Clone)]
struct ClosedSpan {
    name: &'static str,
    fields: BTreeMap<String, String>,
}

/// Records the fields of every span and keeps them when it closes.
struct Capture(Arc<Mutex<Vec<ClosedSpan>>>);

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S> Layer<S> for Capture
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let fields = span.extensions_mut().remove::<Fields>().unwrap_or_default();
        self.0.lock().expect("not poisoned").push(ClosedSpan {
            name: span.name(),
            fields: fields.0,
        });
    }
}
