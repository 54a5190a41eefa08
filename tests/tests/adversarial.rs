//! An adversarial property test at scale: the cache never hands a response
//! produced for one request to a request the application would tell apart.
//!
//! # The application
//!
//! One echo app, mounted on axum and on actix-web, each route behind the
//! cache with its own policy (TTL one hour, on a manual clock: nothing
//! expires during a run):
//!
//! | route            | policy                                                     |
//! |------------------|------------------------------------------------------------|
//! | `/t/{id}`        | `tenant_header("x-tenant-id")`, `vary(["accept-language"])` |
//! | `/p/{id}`        | `key_by_principal()`                                       |
//! | `/q`             | `query_deny(["utm_source"])`                               |
//! | `/plain/{*rest}` | the defaults                                               |
//!
//! Every body says exactly what the origin saw: the method, the raw path
//! (`uri.path()`), the raw query, every `x-tenant-id`, `Authorization`,
//! `Accept-Language` and `Cookie` field (bytes, in order), whether the
//! answer was declared `public`, and a serial number per origin call. Like a
//! correct app, it declares what else its answers depend on:
//!
//! - `Vary: Cookie` on every response, also to requests without a cookie
//!   (that answer depends on the cookie's absence). `Vary` rather than
//!   `Cache-Control: private`: `private` forbids storing, which would leave
//!   the cache's handling of cookie-dependent responses (variant selection
//!   on the combined field value) untested; with `Vary` every cookie value
//!   gets its own stored variant, which is what is checked.
//! - `Vary: Accept-Language` on `/plain` (the response's own `Vary`; `/t`
//!   declares it through its policy instead).
//! - An `ETag` derived from the body (FNV-1a of its bytes, so one per origin
//!   call) and a fixed `Last-Modified`.
//! - On the routes not keyed by principal, every other answer to a request
//!   with `Authorization` says `Cache-Control: public, max-age=60`: the app
//!   declares that answer shareable, independent of the principal.
//!
//! # What the app tells apart (the reference, written from the RFCs)
//!
//! Computed from what the origin saw (the body) for the response, and from
//! the request as it went on the wire for the request that received it; the
//! two must be equal. It shares no code with `cache-core`'s keys.
//!
//! - **Route**, and the **path** split at `/`, each segment percent-decoded
//!   to bytes (RFC 3986 §2.1: `%XX` with two hex digits is a byte, any other
//!   `%` is itself), so `%34%32` is `42`, `%2F` is not a separator, `%FF` is
//!   not `%FE`, a lone `%` is `%25`.
//! - The **query** split at `&`, empty pieces dropped, each piece split at
//!   its first `=` (`a` has no value, `a=` an empty one), names and values
//!   percent-decoded; a literal `+` stays distinct from every byte (a form
//!   decoder reads it as a space, a percent decoder as `+`: an app may tell
//!   `+` from both `%20` and `%2B`); parameters sorted stably by the name
//!   as a form decoder reads it, so that the values of one name keep their
//!   order for either kind of decoder (`?%2F=1&%2f=2` is not
//!   `?%2f=2&%2F=1`, nor `?x+y=1&x%20y=2` `?x%20y=2&x+y=1`). On `/q`, parameters
//!   whose decoded name is `utm_source` are dropped: the app declared, with
//!   `query_deny`, that it ignores them.
//! - On `/t`, every **`x-tenant-id`** field, in order: an app might read any
//!   of them (the cache must not serve a request that repeats it from
//!   storage at all: checked separately).
//! - On `/t` and `/plain`, **`Accept-Language`**, and on every route
//!   **`Cookie`**: the field lines combined into one value joined by `", "`
//!   (RFC 9110 §5.3, RFC 9111 §4.1), each line without its leading and
//!   trailing whitespace (RFC 9110 §5.5); absent differs from empty.
//! - The **principal**, every `Authorization` field in order: always on
//!   `/p`; elsewhere unless the response says `public` (the app declared
//!   that answer independent of the principal).
//! - Nothing else. `GET` and `HEAD` are one resource; conditionals are
//!   checked by the `ETag` they answer with; the tenant on routes other than
//!   `/t`, `Accept-Language` on `/p` and `/q`, `utm_source` on `/q` are
//!   ignored by the app, as its policies declare.
//!
//! # The requests
//!
//! [`REQUESTS_PER_ADAPTER`] per adapter, [`IN_FLIGHT`] at a time over real
//! HTTP, drawn from a seeded generator (request `i` is a function of the
//! seed and `i`; only the `ETag` an `If-None-Match` names depends on what
//! earlier responses said): percent-encoded path spellings (`%34%32` vs
//! `42`, `%2F`, `%2f`, lone `%`, `%FF`/`%FE`, `+`/`%20`/`%2B`, `%2E`),
//! query spellings (order, `%61` vs `a`, `+`/`%20`/`%2B`, `%FF`/`%FE`/`%ff`,
//! `%2F`/`%2f`/`/`, `a` vs `a=`, empty parameters, `utm_source` and
//! `utm%5Fsource`, names that decode alike), tenants (none, empty, case,
//! surrounding whitespace, non-UTF-8 bytes, repeated), principals (none,
//! two bearer tokens, case, repeated), `Accept-Language` (case, spacing,
//! repeated fields, empty values), cookies (one, two, in one or two field
//! lines), `GET` and `HEAD`, `If-None-Match` (the `ETag` last seen for the
//! same request, weak, in a list, any recent one, `*`) and
//! `If-Modified-Since` (after and before `Last-Modified`).
//!
//! # The checks, per response
//!
//! - The served response belongs to the request: a `200` body is parsed
//!   (and must be what the origin logged for its serial, with the `ETag` of
//!   its bytes); a `HEAD` or `304` is traced to its origin call by its
//!   `ETag`; the app's view of what that call saw must equal the app's view
//!   of the request.
//! - A `304` carries a known `ETag`, and only answers a condition that
//!   holds (`If-None-Match` naming that tag or `*`; without it,
//!   `If-Modified-Since` not before `Last-Modified`); a hit `200` whose
//!   `ETag` the request's `If-None-Match` names should have been a `304`.
//! - `X-Cache` and `Cache-Status` are single, consistent (`HIT` with `hit`
//!   and `ttl >= 0`; `MISS` with a miss `fwd`; `BYPASS` with
//!   `fwd=bypass|method`; `stored`, `collapsed` only on forwarded ones).
//! - A request that repeats the tenant header (`/t`) is answered by its own
//!   origin call, `BYPASS`; so is any request with `Authorization` on a
//!   route not keyed by principal (never from storage).
//! - Accounting: every origin call reaches exactly one request as its own
//!   (`MISS`/`BYPASS`, not collapsed); a hit or a collapsed answer reuses a
//!   call whose own answer said `stored`. The origin's call count gives the
//!   hit ratio.
//!
//! `ADVERSARIAL_SEED`, `ADVERSARIAL_REQUESTS` override the seed and the
//! count; `ADVERSARIAL_SABOTAGE=no-vary-cookie|no-vary-language` makes the
//! app omit a `Vary` it owes, to see the checker fail. Run with
//! `cargo test -p cache-tests --all-features --test adversarial -- --nocapture`
//! for the report.

use std::{
    collections::HashMap,
    fmt::Write as _,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::web;
use axum::{extract::State, routing::any};
use bytes::Bytes;
use cache_core::{Cache, CachePolicy, Clock, MokaStore};
use cache_tests::{Server, origin::Origin};
use futures_util::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};

/// The seed of the request generator (`ADVERSARIAL_SEED` overrides it).
const SEED: u64 = 0x5eed_ad5e_7a11_0001;
/// Requests sent to each adapter (`ADVERSARIAL_REQUESTS` overrides it):
/// 10^5 in all. A debug build runs 1,700 to 2,100 requests a second per
/// adapter on two cores (client, server, cache and checker), so the test
/// takes about a minute; `ADVERSARIAL_REQUESTS=100000` runs 10^5 per
/// adapter in two to four.
const REQUESTS_PER_ADAPTER: usize = 50_000;
/// Requests in flight at once.
const IN_FLIGHT: usize = 48;
/// Violations described in full in the failure message.
const SHOWN: usize = 12;

const LAST_MODIFIED: &str = "Sat, 01 Jan 2000 00:00:00 GMT";
/// After `Last-Modified`: a stored response is not modified since.
const IMS_LATER: &str = "Sun, 02 Jan 2000 00:00:00 GMT";
/// Before `Last-Modified`: never a 304.
const IMS_EARLIER: &str = "Fri, 31 Dec 1999 00:00:00 GMT";

const TENANT: HeaderName = HeaderName::from_static("x-tenant-id");

// ---------------------------------------------------------------------------
// The application
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Route {
    Tenant,
    Principal,
    Query,
    Plain,
}

impl Route {
    fn of(path: &[u8]) -> Option<Route> {
        if path.starts_with(b"/t/") {
            Some(Route::Tenant)
        } else if path.starts_with(b"/p/") {
            Some(Route::Principal)
        } else if path == b"/q" {
            Some(Route::Query)
        } else if path.starts_with(b"/plain/") {
            Some(Route::Plain)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::Tenant => "/t",
            Route::Principal => "/p",
            Route::Query => "/q",
            Route::Plain => "/plain",
        }
    }
}

fn policy(route: Route) -> CachePolicy {
    let builder = CachePolicy::builder().ttl("1h");
    let builder = match route {
        Route::Tenant => builder.tenant_header("x-tenant-id").vary(["accept-language"]),
        Route::Principal => builder.key_by_principal(),
        Route::Query => builder.query_deny(["utm_source"]),
        Route::Plain => builder,
    };
    builder.build().expect("a valid policy")
}

/// A `Vary` the app omits, to see the checker fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sabotage {
    None,
    NoVaryCookie,
    NoVaryLanguage,
}

/// The header fields the app reads, each as its field lines' bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Fields {
    tenant: Vec<Vec<u8>>,
    auth: Vec<Vec<u8>>,
    lang: Vec<Vec<u8>>,
    cookie: Vec<Vec<u8>>,
}

impl Fields {
    fn of(headers: &HeaderMap) -> Fields {
        let all = |name: &HeaderName| headers.get_all(name).iter().map(|v| v.as_bytes().to_vec()).collect();
        Fields {
            tenant: all(&TENANT),
            auth: all(&header::AUTHORIZATION),
            lang: all(&header::ACCEPT_LANGUAGE),
            cookie: all(&header::COOKIE),
        }
    }

    /// The fields as a server receives them: without leading and trailing
    /// whitespace (RFC 9110 §5.5).
    fn received(&self) -> Fields {
        let trim = |values: &Vec<Vec<u8>>| -> Vec<Vec<u8>> {
            values
                .iter()
                .map(|v| {
                    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(v.len());
                    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |e| e + 1);
                    v[start..end].to_vec()
                })
                .collect()
        };
        Fields {
            tenant: trim(&self.tenant),
            auth: trim(&self.auth),
            lang: trim(&self.lang),
            cookie: trim(&self.cookie),
        }
    }
}

/// What the origin saw on one call, as its body says.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Saw {
    serial: u64,
    method: String,
    path: Vec<u8>,
    query: Option<Vec<u8>>,
    fields: Fields,
    public: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Saw {
    fn encode(&self) -> String {
        let list = |name: &str, values: &[Vec<u8>]| {
            let mut line = name.to_owned();
            for v in values {
                line.push_str(" :");
                line.push_str(&hex(v));
            }
            line
        };
        let query: Vec<Vec<u8>> = self.query.iter().cloned().collect();
        [
            format!("serial {}", self.serial),
            format!("method {}", self.method),
            format!("path {}", hex(&self.path)),
            list("query", &query),
            list("tenant", &self.fields.tenant),
            list("auth", &self.fields.auth),
            list("lang", &self.fields.lang),
            list("cookie", &self.fields.cookie),
            format!("public {}", u8::from(self.public)),
        ]
        .join("\n")
    }

    fn decode(body: &[u8]) -> Option<Saw> {
        let text = std::str::from_utf8(body).ok()?;
        let mut lines = text.split('\n');
        let mut line = |name: &str| -> Option<Vec<&str>> {
            let mut words = lines.next()?.split(' ');
            (words.next()? == name).then(|| words.collect())
        };
        let single = |words: Vec<&str>| -> Option<String> { (words.len() == 1).then(|| words[0].to_owned()) };
        let list = |words: Vec<&str>| -> Option<Vec<Vec<u8>>> { words.iter().map(|w| unhex(w.strip_prefix(':')?)).collect() };
        let serial = single(line("serial")?)?.parse().ok()?;
        let method = single(line("method")?)?;
        let path = unhex(&single(line("path")?)?)?;
        let mut query = list(line("query")?)?;
        if query.len() > 1 {
            return None;
        }
        let fields = Fields {
            tenant: list(line("tenant")?)?,
            auth: list(line("auth")?)?,
            lang: list(line("lang")?)?,
            cookie: list(line("cookie")?)?,
        };
        let public = match single(line("public")?)?.as_str() {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        if lines.next().is_some() {
            return None;
        }
        Some(Saw {
            serial,
            method,
            path,
            query: query.pop(),
            fields,
            public,
        })
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn etag_of(body: &[u8]) -> String {
    format!("\"{:016x}\"", fnv1a(body))
}

/// The echo app: answers every request with what it saw, and logs each
/// call by serial and by `ETag`.
struct EchoApp {
    sabotage: Sabotage,
    calls: AtomicU64,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    by_serial: HashMap<u64, Arc<Saw>>,
    by_etag: HashMap<String, u64>,
}

impl EchoApp {
    fn new(sabotage: Sabotage) -> Arc<Self> {
        Arc::new(EchoApp {
            sabotage,
            calls: AtomicU64::new(0),
            log: Mutex::new(Log::default()),
        })
    }

    fn respond(&self, method: &str, path: &str, query: Option<&str>, headers: &HeaderMap) -> (HeaderMap, Bytes) {
        let serial = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let fields = Fields::of(headers);
        let route = Route::of(path.as_bytes());
        let public = route != Some(Route::Principal) && !fields.auth.is_empty() && serial.is_multiple_of(2);
        let saw = Saw {
            serial,
            method: method.to_owned(),
            path: path.as_bytes().to_vec(),
            query: query.map(|q| q.as_bytes().to_vec()),
            fields,
            public,
        };
        let body = saw.encode();
        let etag = etag_of(body.as_bytes());
        {
            let mut log = self.log.lock().expect("the log lock");
            log.by_etag.insert(etag.clone(), serial);
            log.by_serial.insert(serial, Arc::new(saw));
        }
        let mut out = HeaderMap::new();
        out.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        out.insert(header::ETAG, HeaderValue::from_str(&etag).expect("a quoted hex tag"));
        out.insert(header::LAST_MODIFIED, HeaderValue::from_static(LAST_MODIFIED));
        if self.sabotage != Sabotage::NoVaryCookie {
            out.append(header::VARY, HeaderValue::from_static("cookie"));
        }
        if route == Some(Route::Plain) && self.sabotage != Sabotage::NoVaryLanguage {
            out.append(header::VARY, HeaderValue::from_static("accept-language"));
        }
        if public {
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
        }
        (out, Bytes::from(body))
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn saw(&self, serial: u64) -> Option<Arc<Saw>> {
        self.log.lock().expect("the log lock").by_serial.get(&serial).cloned()
    }

    fn serial_of_etag(&self, etag: &str) -> Option<u64> {
        self.log.lock().expect("the log lock").by_etag.get(etag).copied()
    }
}

const ROUTES: [Route; 4] = [Route::Tenant, Route::Principal, Route::Query, Route::Plain];

async fn axum_handler(State(app): State<Arc<EchoApp>>, req: axum::extract::Request) -> axum::response::Response {
    let (parts, _) = req.into_parts();
    let (headers, body) = app.respond(parts.method.as_str(), parts.uri.path(), parts.uri.query(), &parts.headers);
    let mut response = axum::response::Response::new(axum::body::Body::from(body));
    *response.headers_mut() = headers;
    response
}

async fn start_axum(cache: Cache, app: Arc<EchoApp>) -> Server {
    let mut router = axum::Router::new();
    for route in ROUTES {
        let pattern = match route {
            Route::Tenant => "/t/{id}",
            Route::Principal => "/p/{id}",
            Route::Query => "/q",
            Route::Plain => "/plain/{*rest}",
        };
        router = router.route(pattern, any(axum_handler).layer(cache_axum::CacheLayer::new(&cache, policy(route))));
    }
    cache_tests::axum_adapter::serve(router.with_state(app), Origin::default(), cache).await
}

async fn actix_handler(req: actix_web::HttpRequest, app: web::Data<EchoApp>) -> actix_web::HttpResponse {
    let mut headers = HeaderMap::new();
    for (name, value) in req.headers() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    let query = Some(req.query_string()).filter(|q| !q.is_empty());
    let (out, body) = app.respond(req.method().as_str(), req.path(), query, &headers);
    let mut builder = actix_web::HttpResponse::Ok();
    for (name, value) in &out {
        builder.append_header((name.as_str(), value.as_bytes()));
    }
    builder.body(body)
}

fn start_actix(cache: Cache, app: Arc<EchoApp>) -> Server {
    let app_cache = cache.clone();
    cache_tests::actix_adapter::serve(
        move || {
            let mut actix_app = actix_web::App::new().app_data(web::Data::from(Arc::clone(&app)));
            for route in ROUTES {
                let pattern = match route {
                    Route::Tenant => "/t/{id}",
                    Route::Principal => "/p/{id}",
                    Route::Query => "/q",
                    Route::Plain => "/plain/{rest:.*}",
                };
                actix_app = actix_app.service(
                    web::resource(pattern)
                        .route(web::route().to(actix_handler))
                        .wrap(cache_actix::CacheMiddleware::new(&app_cache, policy(route))),
                );
            }
            actix_app
        },
        Origin::default(),
        cache,
    )
}

// ---------------------------------------------------------------------------
// The reference: what the app tells apart
// ---------------------------------------------------------------------------

/// A literal `+` in a query, distinct from every decoded byte.
const PLUS: u16 = 0x100;

/// RFC 3986 §2.1 percent-decoding: `%` and two hex digits is a byte; any
/// other `%` is itself. With `plus`, a literal `+` becomes [`PLUS`].
fn percent_decode(piece: &[u8], plus: bool) -> Vec<u16> {
    let digit = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(piece.len());
    let mut i = 0;
    while i < piece.len() {
        if piece[i] == b'%'
            && let (Some(hi), Some(lo)) = (piece.get(i + 1).and_then(|&b| digit(b)), piece.get(i + 2).and_then(|&b| digit(b)))
        {
            out.push(u16::try_from(hi * 16 + lo).expect("a byte"));
            i += 3;
            continue;
        }
        out.push(if plus && piece[i] == b'+' { PLUS } else { u16::from(piece[i]) });
        i += 1;
    }
    out
}

/// The field lines of one header as one value, joined by `", "`.
fn combined(values: &[Vec<u8>]) -> Option<Vec<u8>> {
    let (first, rest) = values.split_first()?;
    let mut out = first.clone();
    for v in rest {
        out.extend_from_slice(b", ");
        out.extend_from_slice(v);
    }
    Some(out)
}

type Param = (Vec<u16>, Option<Vec<u16>>);

/// Everything the app's answer depends on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct View {
    route: Route,
    segments: Vec<Vec<u8>>,
    params: Vec<Param>,
    tenant: Vec<Vec<u8>>,
    language: Option<Vec<u8>>,
    cookie: Option<Vec<u8>>,
    /// `None` when the answer does not depend on the principal.
    principal: Option<Vec<Vec<u8>>>,
}

fn view(path: &[u8], query: Option<&[u8]>, fields: &Fields, public: bool) -> Option<View> {
    let route = Route::of(path)?;
    let segments = path
        .split(|&b| b == b'/')
        .map(|s| {
            percent_decode(s, false)
                .into_iter()
                .map(|b| u8::try_from(b).expect("a byte"))
                .collect()
        })
        .collect();
    let utm_source: Vec<u16> = b"utm_source".iter().map(|&b| u16::from(b)).collect();
    let mut params: Vec<Param> = query
        .unwrap_or_default()
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (percent_decode(&piece[..eq], true), Some(percent_decode(&piece[eq + 1..], true))),
            None => (percent_decode(piece, true), None),
        })
        .filter(|(name, _)| !(route == Route::Query && *name == utm_source))
        .collect();
    // Stably, by the name as a form decoder reads it (`+` a space): the
    // values of one name keep their order for both kinds of decoder.
    params.sort_by_key(|(name, _)| {
        name.iter()
            .map(|&t| if t == PLUS { u16::from(b' ') } else { t })
            .collect::<Vec<_>>()
    });
    Some(View {
        route,
        segments,
        params,
        tenant: if route == Route::Tenant {
            fields.tenant.clone()
        } else {
            Vec::new()
        },
        language: if matches!(route, Route::Tenant | Route::Plain) {
            combined(&fields.lang)
        } else {
            None
        },
        cookie: combined(&fields.cookie),
        principal: (route == Route::Principal || !public).then(|| fields.auth.clone()),
    })
}

/// The parts of the app's view in which two requests differ.
fn differences(a: Option<&View>, b: Option<&View>) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return "route".to_owned();
    };
    let parts = [
        ("route", a.route != b.route),
        ("path", a.segments != b.segments),
        ("query", a.params != b.params),
        ("tenant", a.tenant != b.tenant),
        ("accept-language", a.language != b.language),
        ("cookie", a.cookie != b.cookie),
        ("principal", a.principal != b.principal),
    ];
    let names: Vec<&str> = parts.iter().filter(|(_, differ)| *differ).map(|(name, _)| *name).collect();
    names.join(", ")
}

fn view_hash(v: &View) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

/// SplitMix64: small, seedable, good enough to draw requests.
struct Rng(u64);

impl Rng {
    fn for_request(seed: u64, salt: u64, index: usize) -> Rng {
        let mut rng = Rng(seed ^ salt.rotate_left(29) ^ (index as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, weighted: &'a [(u32, T)]) -> &'a T {
        let total: u32 = weighted.iter().map(|(w, _)| w).sum();
        let mut at = (self.next() % u64::from(total)) as u32;
        for (w, item) in weighted {
            if at < *w {
                return item;
            }
            at -= w;
        }
        unreachable!("the draw is below the total weight")
    }
}

const ROUTE_WEIGHTS: &[(u32, Route)] = &[(30, Route::Tenant), (20, Route::Principal), (20, Route::Query), (30, Route::Plain)];

/// How often (in percent) each part of a request is drawn from its table of
/// rare spellings rather than its common one: rare enough that the key space
/// stays small and most requests can hit, common enough that every rare
/// spelling meets the common ones thousands of times.
const RARE: usize = 7;

/// Spellings of a `{id}` segment: `42` four ways and `7` two ways...
const IDS: &[(u32, &str)] = &[(30, "42"), (6, "%34%32"), (4, "4%32"), (3, "%342"), (20, "7"), (4, "%37")];
/// ... and neighbours that differ by one byte or in how a reserved byte is
/// escaped.
const RARE_IDS: &[(u32, &str)] = &[
    (2, "4%2F2"),
    (2, "4%2f2"),
    (2, "%FF"),
    (2, "%ff"),
    (2, "%FE"),
    (2, "100%"),
    (2, "100%25"),
    (1, "%%32F"),
    (1, "%252F"),
    (1, "%2F"),
    (2, "x+y"),
    (2, "x%20y"),
    (1, "x%2By"),
    (2, "%C3%BC"),
    (1, "ü"),
    (1, "a%2Eb"),
    (1, "a.b"),
];

/// Spellings of `/plain/{*rest}`.
const RESTS: &[(u32, &str)] = &[(25, "a/b"), (5, "%61/b"), (4, "a/%62"), (15, "42"), (4, "%34%32")];
const RARE_RESTS: &[(u32, &str)] = &[
    (5, "a%2Fb"),
    (3, "a%2fb"),
    (3, "a/b/"),
    (2, "100%"),
    (2, "100%25"),
    (2, "%FF"),
    (2, "%FE"),
    (2, "x+y"),
    (2, "x%20y"),
    (1, "%%32F"),
    (1, "%252F"),
    (1, "a;b"),
    (1, "a%3Bb"),
];

/// Query parameters, as spelled on the wire.
const PARAMS: &[(u32, &str)] = &[(30, "a=1"), (6, "%61=1"), (4, "a=%31"), (15, "b=2"), (4, ""), (6, "utm_source=x")];
const RARE_PARAMS: &[(u32, &str)] = &[
    (6, "a=2"),
    (3, "b=x+y"),
    (3, "b=x%20y"),
    (2, "b=x%2By"),
    (2, "c=%FF"),
    (2, "c=%FE"),
    (2, "c=%ff"),
    (2, "d=%2F"),
    (2, "d=/"),
    (2, "d=%2f"),
    (3, "e"),
    (3, "e="),
    (3, "utm_source=y"),
    (2, "utm%5Fsource=z"),
    (2, "%2F=1"),
    (2, "%2f=2"),
];

/// Pairs of parameters whose names decode alike.
const SAME_NAME: &[(u32, (&str, &str))] = &[
    (1, ("a=1", "a=2")),
    (1, ("a=1", "%61=2")),
    (1, ("%2F=1", "%2f=2")),
    (1, ("t%5B%5D=x", "t%5b%5d=y")),
    (1, ("x+y=1", "x%20y=2")),
];

type Lines = &'static [&'static [u8]];

const TENANTS: &[(u32, Lines)] = &[(15, &[]), (30, &[b"acme"]), (20, &[b"globex"]), (5, &[b" acme\t"])];
const RARE_TENANTS: &[(u32, Lines)] = &[
    (4, &[b""]),
    (3, &[b"ACME"]),
    (3, &[b"\xff"]),
    (3, &[b"\xfe"]),
    (3, &[b"acme", b"globex"]),
    (2, &[b"acme", b"acme"]),
    (2, &[b"globex", b"acme"]),
];

/// On `/p`; elsewhere a request carries `Authorization` once in ten.
const PRINCIPALS: &[(u32, Lines)] = &[(20, &[]), (40, &[b"Bearer alice"]), (40, &[b"Bearer bob"])];
const RARE_PRINCIPALS: &[(u32, Lines)] = &[
    (2, &[b"bearer alice"]),
    (2, &[b"Bearer alice", b"Bearer bob"]),
    (1, &[b"Bearer bob", b"Bearer alice"]),
];

const LANGUAGES: &[(u32, Lines)] = &[
    (40, &[]),
    (25, &[b"en"]),
    (10, &[b"fr"]),
    (3, &[b" en"]),
    (5, &[b"en, fr"]),
    (5, &[b"en", b"fr"]),
];
const RARE_LANGUAGES: &[(u32, Lines)] = &[
    (3, &[b"EN"]),
    (3, &[b"en,fr"]),
    (3, &[b""]),
    (2, &[b"en", b""]),
    (2, &[b"fr", b"en"]),
];

/// Cookies stay RFC 6265 values (no comma in one field line), so that
/// `", "` joins field lines unambiguously.
const COOKIES: &[(u32, Lines)] = &[(94, &[]), (4, &[b"sid=1"]), (2, &[b"sid=2"])];
const RARE_COOKIES: &[(u32, Lines)] = &[
    (5, &[b"sid=1; theme=dark"]),
    (5, &[b"sid=1", b"theme=dark"]),
    (3, &[b"theme=dark", b"sid=1"]),
    (2, &[b""]),
    (2, &[b"SID=1"]),
];

#[derive(Clone, Copy, Debug)]
enum Conditional {
    None,
    /// `If-None-Match` with the `ETag` last seen for the same request.
    Same,
    /// The same, weak.
    SameWeak,
    /// The same, second in a list.
    SameListed,
    /// `If-None-Match` with any recently seen `ETag`.
    Recent,
    Star,
    /// `If-Modified-Since` after `Last-Modified`.
    Later,
    /// `If-Modified-Since` before `Last-Modified`.
    Earlier,
    /// `If-None-Match` with the same request's `ETag`, and an earlier
    /// `If-Modified-Since` (which `If-None-Match` overrides).
    SameAndEarlier,
}

const CONDITIONALS: &[(u32, Conditional)] = &[
    (72, Conditional::None),
    (8, Conditional::Same),
    (3, Conditional::SameWeak),
    (2, Conditional::SameListed),
    (4, Conditional::Recent),
    (2, Conditional::Star),
    (5, Conditional::Later),
    (2, Conditional::Earlier),
    (2, Conditional::SameAndEarlier),
];

/// One generated request, before it is sent.
struct Spec {
    method: Method,
    target: String,
    fields: Fields,
    conditional: Conditional,
}

impl Rng {
    /// From `rare` [`RARE`] percent of the time, else from `common`.
    fn draw<'a, T>(&mut self, common: &'a [(u32, T)], rare: &'a [(u32, T)]) -> &'a T {
        if self.below(100) < RARE {
            self.pick(rare)
        } else {
            self.pick(common)
        }
    }

    fn lines(&mut self, common: &[(u32, Lines)], rare: &[(u32, Lines)]) -> Vec<Vec<u8>> {
        self.draw(common, rare).iter().map(|l| l.to_vec()).collect()
    }
}

fn generate(rng: &mut Rng) -> Spec {
    let method = if rng.below(100) < 15 { Method::HEAD } else { Method::GET };
    let route = *rng.pick(ROUTE_WEIGHTS);
    let mut target = match route {
        Route::Tenant => format!("/t/{}", rng.draw(IDS, RARE_IDS)),
        Route::Principal => format!("/p/{}", rng.draw(IDS, RARE_IDS)),
        Route::Query => "/q".to_owned(),
        Route::Plain => format!("/plain/{}", rng.draw(RESTS, RARE_RESTS)),
    };
    // Most requests have no query, or one that is empty; `/q` always has
    // parameters.
    match rng.below(100) {
        n if n < 55 && route != Route::Query => {}
        n if n < 60 && route != Route::Query => target.push_str(if n % 2 == 0 { "?" } else { "?&" }),
        // Two values for one name, in either order, the name spelled alike
        // or not: the app reads them in order.
        _ if rng.below(100) < RARE => {
            let (first, second) = *rng.pick(SAME_NAME);
            let (first, second) = if rng.below(2) == 0 { (first, second) } else { (second, first) };
            target.push('?');
            target.push_str(first);
            target.push('&');
            target.push_str(second);
        }
        n => {
            let count = if n % 3 == 0 { 2 } else { 1 } + usize::from(rng.below(100) < RARE);
            let params: Vec<&str> = (0..count).map(|_| *rng.draw(PARAMS, RARE_PARAMS)).collect();
            target.push('?');
            target.push_str(&params.join("&"));
        }
    }
    let auth = match route {
        Route::Principal => rng.lines(PRINCIPALS, RARE_PRINCIPALS),
        _ if rng.below(100) < 10 => rng.lines(&PRINCIPALS[1..], RARE_PRINCIPALS),
        _ => Vec::new(),
    };
    let fields = Fields {
        tenant: rng.lines(TENANTS, RARE_TENANTS),
        auth,
        // `/plain` varies on it by its responses' `Vary`, which keeps one
        // variant per key: mostly none there, or variants would evict each
        // other.
        lang: match route {
            Route::Plain if rng.below(100) < 90 => Vec::new(),
            _ => rng.lines(LANGUAGES, RARE_LANGUAGES),
        },
        cookie: rng.lines(COOKIES, RARE_COOKIES),
    };
    Spec {
        method,
        target,
        fields,
        conditional: *rng.pick(CONDITIONALS),
    }
}

// ---------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum XCache {
    Hit,
    Miss,
    Bypass,
}

/// What the cache says it did.
#[derive(Clone, Copy, Debug)]
struct Said {
    x_cache: XCache,
    stored: bool,
    collapsed: bool,
    /// `fwd=vary-miss`: an entry for the key, stored for other values of
    /// the headers its response varies on.
    vary_miss: bool,
}

impl Said {
    /// Whether the response is the answer of an origin call made for this
    /// request.
    fn own_call(self) -> bool {
        self.x_cache != XCache::Hit && !self.collapsed
    }
}

fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(format!("not exactly one {name}"));
    };
    value.to_str().map_err(|_| format!("{name} is not ASCII"))
}

/// `X-Cache` and `Cache-Status`, checked against each other.
fn said(headers: &HeaderMap) -> Result<Said, String> {
    let x_cache = match single_header(headers, "x-cache")? {
        "HIT" => XCache::Hit,
        "MISS" => XCache::Miss,
        "BYPASS" => XCache::Bypass,
        other => return Err(format!("X-Cache {other:?}")),
    };
    let status = single_header(headers, "cache-status")?;
    let mut members = status.split(';').map(str::trim);
    if members.next() != Some(cache_core::cache_status::DEFAULT_NAME) || status.contains(',') {
        return Err(format!("Cache-Status {status:?} is not this cache's one member"));
    }
    let (mut hit, mut fwd, mut ttl, mut stored, mut collapsed) = (false, None, None, false, false);
    for param in members {
        match param.split_once('=') {
            None if param == "hit" => hit = true,
            None if param == "stored" => stored = true,
            None if param == "collapsed" => collapsed = true,
            Some(("fwd", f)) => fwd = Some(f),
            Some(("ttl", t)) => ttl = t.parse::<i64>().ok(),
            Some(("fwd-status", _)) => {}
            _ => return Err(format!("Cache-Status {status:?}: unknown parameter {param:?}")),
        }
    }
    let consistent = match x_cache {
        XCache::Hit => hit && fwd.is_none() && ttl.is_some_and(|t| t >= 0) && !stored && !collapsed,
        XCache::Miss => !hit && matches!(fwd, Some("uri-miss" | "vary-miss" | "request")) && ttl.is_none(),
        XCache::Bypass => !hit && matches!(fwd, Some("bypass" | "method")) && ttl.is_none() && !collapsed,
    };
    if !consistent {
        return Err(format!("X-Cache {x_cache:?} with Cache-Status {status:?}"));
    }
    Ok(Said {
        x_cache,
        stored,
        collapsed,
        vary_miss: fwd == Some("vary-miss"),
    })
}

/// Whether an `If-None-Match` value names `etag` (weak comparison) or is `*`.
fn none_match_names(inm: &str, etag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    inm.trim() == "*" || inm.split(',').any(|t| opaque(t) == opaque(etag))
}

/// A request as it went on the wire.
struct Sent {
    index: usize,
    method: Method,
    path: String,
    query: Option<String>,
    /// As generated; the view uses [`Fields::received`].
    fields: Fields,
    if_none_match: Option<String>,
    if_modified_since: Option<&'static str>,
}

impl Sent {
    fn describe(&self) -> String {
        let lines = |values: &[Vec<u8>]| {
            values
                .iter()
                .map(|v| format!("{:?}", String::from_utf8_lossy(v)))
                .collect::<Vec<_>>()
        };
        format!(
            "request #{} {} {}{} tenant={:?} authorization={:?} accept-language={:?} cookie={:?} if-none-match={:?} if-modified-since={:?}",
            self.index,
            self.method,
            self.path,
            self.query.as_ref().map(|q| format!("?{q}")).unwrap_or_default(),
            lines(&self.fields.tenant),
            lines(&self.fields.auth),
            lines(&self.fields.lang),
            lines(&self.fields.cookie),
            self.if_none_match,
            self.if_modified_since,
        )
    }
}

fn describe_saw(saw: &Saw) -> String {
    let lines = |values: &[Vec<u8>]| {
        values
            .iter()
            .map(|v| format!("{:?}", String::from_utf8_lossy(v)))
            .collect::<Vec<_>>()
    };
    format!(
        "origin call #{} saw {} {}{} tenant={:?} authorization={:?} accept-language={:?} cookie={:?} public={}",
        saw.serial,
        saw.method,
        String::from_utf8_lossy(&saw.path),
        saw.query
            .as_ref()
            .map(|q| format!("?{}", String::from_utf8_lossy(q)))
            .unwrap_or_default(),
        lines(&saw.fields.tenant),
        lines(&saw.fields.auth),
        lines(&saw.fields.lang),
        lines(&saw.fields.cookie),
        saw.public,
    )
}

#[derive(Default, Debug)]
struct Shapes {
    requests: u64,
    by_route: [u64; 4],
    tenant: u64,
    repeated_tenant: u64,
    non_utf8_tenant: u64,
    principal: u64,
    repeated_principal: u64,
    language: u64,
    repeated_language: u64,
    cookie: u64,
    head: u64,
    if_none_match: u64,
    if_modified_since: u64,
    percent_escapes: u64,
    plus: u64,
    status_200: u64,
    status_304: u64,
    hit: u64,
    miss: u64,
    bypass: u64,
    collapsed: u64,
    vary_miss: u64,
}

#[derive(Default)]
struct Served {
    /// Responses that were the answer of this call's own request.
    own: u32,
    stored: bool,
    /// Hits and collapsed answers of this call, by request index.
    reused_by: Vec<usize>,
}

#[derive(Default)]
struct CheckState {
    shapes: Shapes,
    calls: HashMap<u64, Served>,
    /// By kind, the count and the first few descriptions.
    violations: HashMap<String, (u64, Vec<String>)>,
    /// The `ETag` last seen for a request's view (counting the principal).
    etag_by_view: HashMap<u64, String>,
    recent_etags: Vec<String>,
}

struct Checker {
    app: Arc<EchoApp>,
    state: Mutex<CheckState>,
}

impl Checker {
    fn violation(state: &mut CheckState, kind: impl Into<String>, detail: String) {
        let entry = state.violations.entry(kind.into()).or_default();
        entry.0 += 1;
        if entry.1.len() < SHOWN {
            entry.1.push(detail);
        }
    }

    /// The `If-None-Match` for a request whose view (counting the principal)
    /// hashes to `strict`.
    fn if_none_match(&self, conditional: Conditional, strict: u64, rng: &mut Rng) -> Option<String> {
        let state = self.state.lock().expect("the checker lock");
        let same = state.etag_by_view.get(&strict);
        match conditional {
            Conditional::Same | Conditional::SameAndEarlier => same.cloned(),
            Conditional::SameWeak => same.map(|e| format!("W/{e}")),
            Conditional::SameListed => same.map(|e| format!("\"nope\", {e}")),
            Conditional::Recent if !state.recent_etags.is_empty() => Some(state.recent_etags[rng.below(state.recent_etags.len())].clone()),
            Conditional::Star => Some("*".to_owned()),
            _ => None,
        }
    }

    fn check(&self, sent: &Sent, strict: u64, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
        let mut guard = self.state.lock().expect("the checker lock");
        let state = &mut *guard;
        let received = sent.fields.received();
        let route = Route::of(sent.path.as_bytes()).expect("generated paths are routed");
        let s = &mut state.shapes;
        s.requests += 1;
        s.by_route[ROUTES.iter().position(|r| *r == route).expect("a route")] += 1;
        s.tenant += u64::from(!sent.fields.tenant.is_empty());
        s.repeated_tenant += u64::from(sent.fields.tenant.len() > 1);
        s.non_utf8_tenant += u64::from(sent.fields.tenant.iter().any(|t| std::str::from_utf8(t).is_err()));
        s.principal += u64::from(!sent.fields.auth.is_empty());
        s.repeated_principal += u64::from(sent.fields.auth.len() > 1);
        s.language += u64::from(!sent.fields.lang.is_empty());
        s.repeated_language += u64::from(sent.fields.lang.len() > 1);
        s.cookie += u64::from(!sent.fields.cookie.is_empty());
        s.head += u64::from(sent.method == Method::HEAD);
        s.if_none_match += u64::from(sent.if_none_match.is_some());
        s.if_modified_since += u64::from(sent.if_modified_since.is_some());
        s.percent_escapes += u64::from(sent.path.contains('%') || sent.query.as_deref().is_some_and(|q| q.contains('%')));
        s.plus += u64::from(sent.query.as_deref().is_some_and(|q| q.contains('+')));

        let said = match said(headers) {
            Ok(said) => said,
            Err(e) => {
                Self::violation(state, "cache headers", format!("{e}\n    {}", sent.describe()));
                return;
            }
        };
        let s = &mut state.shapes;
        match said.x_cache {
            XCache::Hit => s.hit += 1,
            XCache::Miss => s.miss += 1,
            XCache::Bypass => s.bypass += 1,
        }
        s.collapsed += u64::from(said.collapsed);
        s.vary_miss += u64::from(said.vary_miss);
        let etag = headers.get(header::ETAG).and_then(|e| e.to_str().ok()).map(str::to_owned);
        let context = || format!("{status} {said:?} etag={etag:?}\n    {}", sent.describe());

        // Which origin call the response comes from.
        let serial = match (status, &sent.method) {
            (StatusCode::OK, &Method::GET) => {
                state.shapes.status_200 += 1;
                let Some(saw) = Saw::decode(body) else {
                    let body = String::from_utf8_lossy(body).into_owned();
                    Self::violation(state, "body not from the origin", format!("{}\n    body {body:?}", context()));
                    return;
                };
                if self.app.saw(saw.serial).as_deref() != Some(&saw) {
                    Self::violation(state, "body differs from the origin's log", context());
                    return;
                }
                if etag.as_deref() != Some(etag_of(body).as_str()) {
                    Self::violation(state, "ETag is not the body's", context());
                    return;
                }
                saw.serial
            }
            (StatusCode::OK | StatusCode::NOT_MODIFIED, _) => {
                if status == StatusCode::OK {
                    state.shapes.status_200 += 1;
                    if !body.is_empty() {
                        Self::violation(state, "HEAD with a body", context());
                    }
                } else {
                    state.shapes.status_304 += 1;
                }
                let Some(serial) = etag.as_deref().and_then(|e| self.app.serial_of_etag(e)) else {
                    Self::violation(state, "ETag of no origin call", context());
                    return;
                };
                serial
            }
            _ => {
                Self::violation(state, "unexpected status", context());
                return;
            }
        };
        let saw = self.app.saw(serial).expect("logged before it was answered");

        // The property: the app cannot tell the two requests apart.
        let served = view(&saw.path, saw.query.as_deref(), &saw.fields, saw.public);
        let asked = view(
            sent.path.as_bytes(),
            sent.query.as_deref().map(str::as_bytes),
            &received,
            saw.public,
        );
        if served != asked {
            Self::violation(
                state,
                format!(
                    "response of a request the app tells apart (by {})",
                    differences(served.as_ref(), asked.as_ref())
                ),
                format!("{}\n    served: {}", context(), describe_saw(&saw)),
            );
        }

        // Conditionals.
        let etag = etag.clone().unwrap_or_default();
        if status == StatusCode::NOT_MODIFIED {
            let holds = match (&sent.if_none_match, sent.if_modified_since) {
                (Some(inm), _) => none_match_names(inm, &etag),
                (None, Some(ims)) => ims == IMS_LATER,
                (None, None) => false,
            };
            if !holds {
                Self::violation(state, "304 for a condition that does not hold", context());
            }
        } else if said.x_cache == XCache::Hit && sent.if_none_match.as_deref().is_some_and(|inm| none_match_names(inm, &etag)) {
            Self::violation(state, "hit 200 where If-None-Match names its ETag", context());
        }

        // What must never come from storage.
        let repeated_tenant = route == Route::Tenant && received.tenant.len() > 1;
        if repeated_tenant && !(said.own_call() && said.x_cache == XCache::Bypass) {
            Self::violation(state, "repeated tenant header not bypassed", context());
        }
        if route != Route::Principal && !received.auth.is_empty() && !said.own_call() {
            Self::violation(
                state,
                "Authorization answered from storage on a route not keyed by principal",
                context(),
            );
        }

        // Accounting.
        let call = state.calls.entry(serial).or_default();
        if said.own_call() {
            call.own += 1;
            call.stored |= said.stored;
        } else {
            call.reused_by.push(sent.index);
        }
        if !etag.is_empty() && served == asked {
            state.etag_by_view.insert(strict, etag.clone());
            if state.recent_etags.len() < 1024 {
                state.recent_etags.push(etag);
            } else {
                let at = sent.index % 1024;
                state.recent_etags[at] = etag;
            }
        }
    }

    /// The checks that need every response: each origin call reached its own
    /// request once, and only stored calls were reused.
    fn finish(&self) {
        let calls = self.app.calls();
        let mut guard = self.state.lock().expect("the checker lock");
        let state = &mut *guard;
        let mut problems = Vec::new();
        for serial in 1..=calls {
            let served = state.calls.get(&serial);
            let own = served.map_or(0, |s| s.own);
            if own != 1 {
                problems.push((
                    "origin call not answered to exactly one request",
                    format!("call #{serial}: {own} times"),
                ));
            }
            if let Some(served) = served
                && !served.reused_by.is_empty()
                && !served.stored
            {
                problems.push((
                    "reused response that was not stored",
                    format!(
                        "call #{serial} reused by requests {:?}",
                        &served.reused_by[..served.reused_by.len().min(5)]
                    ),
                ));
            }
        }
        for (kind, detail) in problems {
            Self::violation(state, kind, detail);
        }
    }
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

struct Config {
    seed: u64,
    requests: usize,
    sabotage: Sabotage,
}

impl Config {
    fn from_env() -> Config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let seed = var("ADVERSARIAL_SEED").map_or(SEED, |s| {
            let s = s.trim_start_matches("0x");
            u64::from_str_radix(s, 16).expect("ADVERSARIAL_SEED is a hex number")
        });
        let requests = var("ADVERSARIAL_REQUESTS").map_or(REQUESTS_PER_ADAPTER, |n| n.parse().expect("ADVERSARIAL_REQUESTS is a number"));
        let sabotage = match var("ADVERSARIAL_SABOTAGE").as_deref() {
            None => Sabotage::None,
            Some("no-vary-cookie") => Sabotage::NoVaryCookie,
            Some("no-vary-language") => Sabotage::NoVaryLanguage,
            Some(other) => panic!("unknown ADVERSARIAL_SABOTAGE {other:?}"),
        };
        Config { seed, requests, sabotage }
    }
}

struct Outcome {
    adapter: &'static str,
    elapsed: Duration,
    calls: u64,
    checker: Checker,
}

fn manual_cache() -> Cache {
    Cache::builder()
        .store(MokaStore::new())
        .clock(Clock::manual())
        .build()
        .expect("a valid cache")
}

async fn send(server: &Server, checker: &Checker, config: &Config, salt: u64, index: usize) {
    let mut rng = Rng::for_request(config.seed, salt, index);
    let spec = generate(&mut rng);
    let mut request = server
        .request(spec.method.clone(), &spec.target)
        .build()
        .unwrap_or_else(|e| panic!("request #{index} {}: {e}", spec.target));
    for (name, lines) in [
        (TENANT, &spec.fields.tenant),
        (header::AUTHORIZATION, &spec.fields.auth),
        (header::ACCEPT_LANGUAGE, &spec.fields.lang),
        (header::COOKIE, &spec.fields.cookie),
    ] {
        for line in lines {
            let value = HeaderValue::from_bytes(line).expect("generated values are valid field values");
            request.headers_mut().append(name.clone(), value);
        }
    }
    let path = request.url().path().to_owned();
    let query = request.url().query().map(str::to_owned);
    let strict = view(path.as_bytes(), query.as_deref().map(str::as_bytes), &spec.fields.received(), false)
        .map(|v| view_hash(&v))
        .expect("generated paths are routed");
    let if_none_match = checker.if_none_match(spec.conditional, strict, &mut rng);
    let if_modified_since = match spec.conditional {
        Conditional::Later => Some(IMS_LATER),
        Conditional::Earlier | Conditional::SameAndEarlier => Some(IMS_EARLIER),
        _ => None,
    };
    if let Some(inm) = &if_none_match {
        request
            .headers_mut()
            .insert(header::IF_NONE_MATCH, HeaderValue::from_str(inm).expect("ETags are ASCII"));
    }
    if let Some(ims) = if_modified_since {
        request
            .headers_mut()
            .insert(header::IF_MODIFIED_SINCE, HeaderValue::from_static(ims));
    }
    let sent = Sent {
        index,
        method: spec.method,
        path,
        query,
        fields: spec.fields,
        if_none_match,
        if_modified_since,
    };
    let response = server
        .client
        .execute(request)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", sent.describe()));
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_else(|e| panic!("{}: {e}", sent.describe()));
    checker.check(&sent, strict, status, &headers, &body);
}

async fn run(adapter: &'static str, salt: u64, server: Server, app: Arc<EchoApp>, config: &Config) -> Outcome {
    let checker = Checker {
        app: Arc::clone(&app),
        state: Mutex::new(CheckState::default()),
    };
    let started = Instant::now();
    futures_util::stream::iter(0..config.requests)
        .map(|index| send(&server, &checker, config, salt, index))
        .buffer_unordered(IN_FLIGHT)
        .for_each(|()| async {})
        .await;
    let elapsed = started.elapsed();
    checker.finish();
    Outcome {
        adapter,
        elapsed,
        calls: app.calls(),
        checker,
    }
}

fn report(outcome: &Outcome, config: &Config) -> (u64, String) {
    let state = outcome.checker.state.lock().expect("the checker lock");
    let s = &state.shapes;
    let pct = |n: u64| 100.0 * n as f64 / s.requests.max(1) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} requests in {:.1?} ({:.0}/s), {} origin calls, hit ratio {:.1}% (seed {:#x}, {IN_FLIGHT} in flight)",
        outcome.adapter,
        s.requests,
        outcome.elapsed,
        s.requests as f64 / outcome.elapsed.as_secs_f64(),
        outcome.calls,
        100.0 * (1.0 - outcome.calls as f64 / s.requests.max(1) as f64),
        config.seed,
    );
    let _ = writeln!(
        out,
        "  routes {} {} / {} {} / {} {} / {} {}",
        ROUTES[0].name(),
        s.by_route[0],
        ROUTES[1].name(),
        s.by_route[1],
        ROUTES[2].name(),
        s.by_route[2],
        ROUTES[3].name(),
        s.by_route[3]
    );
    let _ = writeln!(
        out,
        "  tenant {:.1}% (repeated {}, non-UTF-8 {}), principal {:.1}% (repeated {}), accept-language {:.1}% (repeated {}), cookie {:.1}%",
        pct(s.tenant),
        s.repeated_tenant,
        s.non_utf8_tenant,
        pct(s.principal),
        s.repeated_principal,
        pct(s.language),
        s.repeated_language,
        pct(s.cookie),
    );
    let _ = writeln!(
        out,
        "  HEAD {:.1}%, If-None-Match {:.1}%, If-Modified-Since {:.1}%, percent-escapes {:.1}%, '+' in query {:.1}%",
        pct(s.head),
        pct(s.if_none_match),
        pct(s.if_modified_since),
        pct(s.percent_escapes),
        pct(s.plus),
    );
    let _ = writeln!(
        out,
        "  answers: 200 {} / 304 {}; HIT {} / MISS {} (vary-miss {}, collapsed {}) / BYPASS {}",
        s.status_200, s.status_304, s.hit, s.miss, s.vary_miss, s.collapsed, s.bypass
    );
    let mut total = 0;
    let mut kinds: Vec<_> = state.violations.iter().collect();
    kinds.sort_by_key(|(kind, _)| *kind);
    for (kind, (count, shown)) in kinds {
        total += count;
        let _ = writeln!(out, "  VIOLATION x{count}: {kind}");
        for detail in shown {
            let _ = writeln!(out, "    - {detail}");
        }
    }
    (total, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_reach_only_requests_the_app_cannot_tell_apart() {
    let config = Config::from_env();
    let started = Instant::now();

    let app = EchoApp::new(config.sabotage);
    let cache = manual_cache();
    let server = start_axum(cache, Arc::clone(&app)).await;
    let axum = run("axum", 1, server, app, &config).await;

    let app = EchoApp::new(config.sabotage);
    let cache = manual_cache();
    let server = start_actix(cache, Arc::clone(&app));
    let actix = run("actix", 2, server, app, &config).await;

    let mut violations = 0;
    let mut text = String::new();
    for outcome in [&axum, &actix] {
        let (count, lines) = report(outcome, &config);
        violations += count;
        text.push_str(&lines);
    }
    println!("{text}total wall time {:.1?}", started.elapsed());
    assert!(
        violations == 0,
        "{violations} violations (seed {:#x}, sabotage {:?}; rerun with ADVERSARIAL_SEED={:x}):\n{text}",
        config.seed,
        config.sabotage,
        config.seed,
    );
}
