//! What is stored, under which key, for whom.

use http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH, SET_COOKIE, VARY};

use super::*;
use crate::{
    handlers::{big, echo, for_authorization, items, language, plain, status, status_only, tenant},
    origin::{OriginRequest, OriginResponse, text},
};

/// `/query`: `query {query:?}` behind a one-minute policy that leaves
/// `utm_source` out of the key.
fn with_query(app: App) -> App {
    app.route("/query", p().ttl("60s").query_deny(["utm_source"]), |req, _| async move {
        text(format!("query {:?}", req.query))
    })
}

/// A miss goes to the origin and is stored; the next request is a hit with
/// the same bytes and the RFC 9211 status.
pub async fn miss_then_hit<A: Adapter>() {
    let s = with_plain(App::new()).start::<A>().await;
    let first = get(&s, "/plain/1").await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "x-cache"), "MISS");
    assert_eq!(header(&first, "cache-status"), "cache; fwd=uri-miss; fwd-status=200; stored");
    assert_eq!(header(&first, "age"), "0");
    let etag = header(&first, "etag");
    assert_eq!(etag.len(), 34, "a generated strong ETag: {etag}");
    assert_eq!(first.text().await.unwrap(), "/plain/1 v0");

    s.cache.clock().advance(Duration::from_secs(7));
    let second = get(&s, "/plain/1").await;
    assert_eq!(header(&second, "x-cache"), "HIT");
    assert_eq!(header(&second, "cache-status"), "cache; hit; ttl=53");
    assert_eq!(header(&second, "age"), "7");
    assert_eq!(header(&second, "etag"), etag);
    assert_eq!(header(&second, "content-type"), "text/plain");
    assert_eq!(second.text().await.unwrap(), "/plain/1 v0");

    // Hits in the same second answer with the same headers; a later one
    // with its own age.
    let third = get(&s, "/plain/1").await;
    assert_eq!(header(&third, "cache-status"), "cache; hit; ttl=53");
    assert_eq!(header(&third, "age"), "7");
    s.cache.clock().advance(Duration::from_millis(2500));
    let fourth = get(&s, "/plain/1").await;
    assert_eq!(header(&fourth, "x-cache"), "HIT");
    assert_eq!(header(&fourth, "cache-status"), "cache; hit; ttl=50");
    assert_eq!(header(&fourth, "age"), "9");
    assert_eq!(header(&fourth, "etag"), etag);
    assert_eq!(fourth.text().await.unwrap(), "/plain/1 v0");
    assert_eq!(s.origin.calls("/plain/1"), 1);
}

/// Tenant ids that contain key separators, escapes, non-UTF-8 bytes or are
/// very long never share an entry with another tenant.
pub async fn tenants_are_isolated<A: Adapter>() {
    let s = App::new()
        .route(
            "/tenant/{id}",
            p().ttl("60s").tenant_header("x-tenant-id").tag("t:{tenant}:{id}"),
            tenant,
        )
        .start::<A>()
        .await;
    let long = "t".repeat(400);
    let tenants: Vec<Option<Vec<u8>>> = [
        "acme",
        "ACME",
        "acme:",
        ":acme",
        "a:cme",
        "acme%3A",
        "acme%",
        "acme=",
        "acme&x",
        "acme#1",
        "acme/tenant",
        "",
        long.as_str(),
    ]
    .iter()
    .map(|t| Some(t.as_bytes().to_vec()))
    .chain([
        Some(vec![0xff, 0xfe]),
        Some(vec![0xfe, 0xff]),
        Some(format!("{long}x").into_bytes()),
        None,
    ])
    .collect();
    let request = |tenant: &Option<Vec<u8>>| {
        let r = s.get("/tenant/1");
        match tenant {
            Some(t) => r.header(
                "x-tenant-id",
                reqwest::header::HeaderValue::from_bytes(t).expect("a valid header value"),
            ),
            None => r,
        }
    };
    let mut first_bodies = Vec::new();
    for t in &tenants {
        let r = request(t).send().await.unwrap();
        assert_eq!(header(&r, "x-cache"), "MISS", "tenant {t:?} was served another tenant's entry");
        first_bodies.push(r.text().await.unwrap());
    }
    for (t, body) in tenants.iter().zip(&first_bodies) {
        let r = request(t).send().await.unwrap();
        assert_eq!(header(&r, "x-cache"), "HIT");
        assert_eq!(
            header(&r, "vary"),
            "x-tenant-id",
            "caches further down must not share it across tenants"
        );
        assert_eq!(&r.text().await.unwrap(), body, "tenant {t:?}");
    }
    assert_eq!(s.origin.calls("/tenant/1"), tenants.len());

    // A repeated tenant header: the application could read either value,
    // so the request is neither served from nor stored in the cache.
    for _ in 0..2 {
        let r = s
            .get("/tenant/1")
            .header("x-tenant-id", "acme")
            .header("x-tenant-id", "globex")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "x-cache"), "BYPASS");
    }
    assert_eq!(s.origin.calls("/tenant/1"), tenants.len() + 2);
    // Requests the cache passes by still tell caches further down that
    // the response depends on the tenant.
    let range = s
        .get("/tenant/1")
        .header("x-tenant-id", "acme")
        .header("range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&range, "x-cache"), "BYPASS");
    assert_eq!(header(&range, "vary"), "x-tenant-id");
}

/// `Set-Cookie`, `private` and `no-store` responses are never stored.
pub async fn uncacheable_responses_are_not_stored<A: Adapter>() {
    let s = App::new()
        .route("/cookie", p().ttl("60s"), |_, _| async {
            text("cookie body").header(SET_COOKIE, "session=abc")
        })
        .route("/private", p().ttl("60s"), |_, _| async {
            text("private body").header(CACHE_CONTROL, "private, max-age=60")
        })
        .route("/no-store", p().ttl("60s"), |_, _| async {
            text("no-store body").header(CACHE_CONTROL, "no-store")
        })
        .start::<A>()
        .await;
    for path in ["/cookie", "/private", "/no-store"] {
        for _ in 0..2 {
            let (status, x_cache, cache_status, _) = fetch(&s, path).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(x_cache, "MISS", "{path}");
            assert_eq!(cache_status, "cache; fwd=uri-miss; fwd-status=200", "{path}");
        }
        assert_eq!(s.origin.calls(path), 2, "{path} was served from the cache");
    }
    let r = get(&s, "/cookie").await;
    assert_eq!(header(&r, "set-cookie"), "session=abc", "the client still gets its cookie");
}

/// A response to an authenticated request is neither served from nor
/// stored in the shared cache, unless the origin marks it public.
pub async fn authorization_is_not_shared<A: Adapter>() {
    let s = App::new()
        .route("/auth", p().ttl("60s"), for_authorization)
        .route("/auth-revalidate", p().ttl("60s"), |req, origin| async move {
            for_authorization(req, origin)
                .await
                .header(CACHE_CONTROL, "max-age=0, must-revalidate")
        })
        .route("/auth-public", p().ttl("60s"), |_, _| async {
            text("public body").header(CACHE_CONTROL, "public, max-age=60")
        })
        .start::<A>()
        .await;
    let alice = s.get("/auth").header("authorization", "Bearer alice").send().await.unwrap();
    assert_eq!(header(&alice, "x-cache"), "BYPASS");
    assert_eq!(alice.text().await.unwrap(), "for Some(\"Bearer alice\")");
    let (_, x_cache, _, body) = fetch(&s, "/auth").await;
    assert_eq!(
        (x_cache.as_str(), body.as_str()),
        ("MISS", "for None"),
        "anonymous got alice's response"
    );
    let (_, x_cache, _, _) = fetch(&s, "/auth").await;
    assert_eq!(x_cache, "HIT");
    let bob = s.get("/auth").header("authorization", "Bearer bob").send().await.unwrap();
    assert_eq!(
        bob.text().await.unwrap(),
        "for Some(\"Bearer bob\")",
        "bob got the anonymous response"
    );
    assert_eq!(s.origin.calls("/auth"), 3);

    // `must-revalidate` with no lifetime does not make it shareable.
    let alice = s
        .get("/auth-revalidate")
        .header("authorization", "Bearer alice")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&alice, "cache-status"), "cache; fwd=bypass; fwd-status=200");
    let (_, _, _, body) = fetch(&s, "/auth-revalidate").await;
    assert_eq!(body, "for None", "an anonymous client got alice's response");

    let public = s.get("/auth-public").header("authorization", "Bearer alice").send().await.unwrap();
    assert_eq!(header(&public, "cache-status"), "cache; fwd=bypass; fwd-status=200; stored");
    let (_, x_cache, _, body) = fetch(&s, "/auth-public").await;
    assert_eq!((x_cache.as_str(), body.as_str()), ("HIT", "public body"));
    assert_eq!(s.origin.calls("/auth-public"), 1);
}

/// A policy keyed by principal stores one response per credential.
pub async fn principal_keyed_responses<A: Adapter>() {
    let s = App::new()
        .route("/principal", p().ttl("60s").key_by_principal(), for_authorization)
        .start::<A>()
        .await;
    let as_user = |who: Option<&'static str>| {
        let r = s.get("/principal");
        match who {
            Some(w) => r.header("authorization", w),
            None => r,
        }
    };
    for who in [Some("Bearer alice"), Some("Bearer bob"), None] {
        let first = as_user(who).send().await.unwrap();
        assert_eq!(header(&first, "x-cache"), "MISS");
        let first = first.text().await.unwrap();
        let again = as_user(who).send().await.unwrap();
        assert_eq!(header(&again, "x-cache"), "HIT");
        assert_eq!(again.text().await.unwrap(), first);
        assert_eq!(first, format!("for {:?}", who.map(http::HeaderValue::from_static)));
    }
    assert_eq!(s.origin.calls("/principal"), 3);

    // Repeated credentials: the application might read either, so the
    // request is neither answered from nor stored under alice's key.
    let twice = || {
        s.get("/principal")
            .header("authorization", "Bearer alice")
            .header("authorization", "Bearer bob")
            .send()
    };
    assert_eq!(header(&twice().await.unwrap(), "cache-status"), "cache; fwd=bypass");
    assert_eq!(header(&twice().await.unwrap(), "cache-status"), "cache; fwd=bypass");
    assert_eq!(s.origin.calls("/principal"), 5);
    assert_eq!(header(&as_user(Some("Bearer alice")).send().await.unwrap(), "x-cache"), "HIT");
}

/// Headers named by the policy's `vary` keep one entry per value.
pub async fn policy_vary_keeps_variants<A: Adapter>() {
    let s = App::new()
        .route("/vary-policy", p().ttl("60s").vary(["accept-language"]), language)
        .start::<A>()
        .await;
    assert_eq!(with_lang(&s, "/vary-policy", "en").await.0, "MISS");
    assert_eq!(with_lang(&s, "/vary-policy", "fr").await.0, "MISS");
    let (x, _, body) = with_lang(&s, "/vary-policy", "en").await;
    assert_eq!((x.as_str(), body.as_str()), ("HIT", "lang Some(\"en\")"));
    let (x, _, body) = with_lang(&s, "/vary-policy", "fr").await;
    assert_eq!((x.as_str(), body.as_str()), ("HIT", "lang Some(\"fr\")"));
    let r = s.get("/vary-policy").send().await.unwrap();
    assert_eq!(header(&r, "vary"), "accept-language");
    assert_eq!(s.origin.calls("/vary-policy"), 3);
}

/// A response's own `Vary` is honoured: a request with other values of the
/// varied headers is not served the stored response.
pub async fn response_vary_is_honoured<A: Adapter>() {
    let s = App::new()
        .route("/vary-response", p().ttl("60s"), |req, origin| async move {
            language(req, origin).await.header(VARY, "Accept-Language")
        })
        .start::<A>()
        .await;
    assert_eq!(with_lang(&s, "/vary-response", "en").await.0, "MISS");
    assert_eq!(with_lang(&s, "/vary-response", "en").await.0, "HIT");
    let (x, cs, body) = with_lang(&s, "/vary-response", "fr").await;
    assert_eq!(x, "MISS");
    assert_eq!(cs, "cache; fwd=vary-miss; fwd-status=200; stored");
    assert_eq!(body, "lang Some(\"fr\")");
    assert_eq!(s.origin.calls("/vary-response"), 2);
}

/// Query parameters are keyed in sorted order; denied ones are ignored.
pub async fn query_order_is_normalised<A: Adapter>() {
    let s = with_query(App::new()).start::<A>().await;
    let (_, x, _, body) = fetch(&s, "/query?a=1&b=2").await;
    assert_eq!((x.as_str(), body.as_str()), ("MISS", "query Some(\"a=1&b=2\")"));
    for path in ["/query?b=2&a=1", "/query?a=1&utm_source=mail&b=2", "/query?b=2&a=%31"] {
        let (_, x, _, body) = fetch(&s, path).await;
        assert_eq!((x.as_str(), body.as_str()), ("HIT", "query Some(\"a=1&b=2\")"), "{path}");
    }
    assert_eq!(fetch(&s, "/query?a=1&b=3").await.1, "MISS");
    assert_eq!(s.origin.calls("/query"), 2);
}

/// A body over the policy's limit streams through: the client reads the
/// first bytes while the origin is still holding back the rest, and
/// nothing is stored.
pub async fn large_streaming_body_passes_through<A: Adapter>() {
    let s = App::new().route("/big", p().ttl("60s").max_body_size(1024), big).start::<A>().await;
    for round in 1..=2 {
        let mut r = tokio::time::timeout(PATIENCE, get(&s, "/big"))
            .await
            .expect("headers arrive before the body ends");
        assert_eq!(header(&r, "x-cache"), "MISS");
        assert_eq!(header(&r, "cache-status"), "cache; fwd=uri-miss; fwd-status=200");
        let mut received = Vec::new();
        while received.len() < BIG_FIRST_CHUNK {
            let chunk = tokio::time::timeout(PATIENCE, r.chunk())
                .await
                .expect("the first bytes arrive while the origin holds the rest: the body is not buffered")
                .unwrap()
                .expect("more body");
            received.extend_from_slice(&chunk);
        }
        s.origin.release_stream();
        while let Some(chunk) = tokio::time::timeout(PATIENCE, r.chunk()).await.unwrap().unwrap() {
            received.extend_from_slice(&chunk);
        }
        assert_eq!(received.len(), BIG_FIRST_CHUNK + 3);
        assert!(received.ends_with(b"END"));
        assert_eq!(s.origin.calls("/big"), round);
    }
}

/// An alias of a URL (unreserved characters percent-escaped) shares its
/// key, and tag templates are filled from the decoded path parameter, as
/// the framework's `Path` extractor decodes it: an update reaches every
/// spelling.
pub async fn aliases_share_keys_and_tags<A: Adapter>() {
    let s = App::new()
        .route("/items/{id}", p().ttl("60s").tag("item:{id}"), items)
        .start::<A>()
        .await;
    assert_eq!(fetch(&s, "/items/%34%32").await.1, "MISS");
    assert_eq!(fetch(&s, "/items/42").await.1, "HIT", "the same resource, the same key");
    let put = s.request(Method::PUT, "/items/42").send().await.unwrap();
    assert_eq!(put.text().await.unwrap(), "dropped 1");
    let (_, x, _, body) = fetch(&s, "/items/%34%32").await;
    assert_eq!((x.as_str(), body.as_str()), ("MISS", "/items/%34%32 v1"));

    // A reserved character escaped is another path, with a decoded tag.
    assert_eq!(fetch(&s, "/items/a%2Fb").await.1, "MISS");
    assert_eq!(fetch(&s, "/items/a%2Fb").await.1, "HIT");
    assert_eq!(fetch(&s, "/items/a/b").await.0, StatusCode::NOT_FOUND, "not the same route");
    assert_eq!(s.cache.invalidator().tag("item:a/b").await.unwrap(), 1);
    assert_eq!(fetch(&s, "/items/a%2Fb").await.1, "MISS");
    // Decoded once, as `Path` decodes it: `%2541` is `%41`, not `A`.
    assert_eq!(fetch(&s, "/items/%2541").await.1, "MISS");
    assert_eq!(s.cache.invalidator().tag("item:A").await.unwrap(), 0);
    assert_eq!(s.cache.invalidator().tag("item:%41").await.unwrap(), 1);
    assert_eq!(s.origin.calls("/items/"), 6);
}

/// Query parameters are keyed by their bytes: values that a lossy decoder
/// would merge (`%FF` and `%FE` both read as U+FFFD), or that a form
/// decoder would (`+` and `%20`), are different requests.
pub async fn query_bytes_are_keyed<A: Adapter>() {
    let s = with_query(App::new()).start::<A>().await;
    for (i, query) in ["search=%FF", "search=%FE", "search=a+b", "search=a%20b", "search", "search="]
        .iter()
        .enumerate()
    {
        let (_, x, _, body) = fetch(&s, &format!("/query?{query}")).await;
        assert_eq!((x.as_str(), body), ("MISS", format!("query Some({query:?})")), "{query}");
        assert_eq!(s.origin.calls("/query"), i + 1);
    }
    let (_, x, _, body) = fetch(&s, "/query?search=%46%46").await;
    assert_eq!((x.as_str(), body.as_str()), ("MISS", "query Some(\"search=%46%46\")"));
    assert_eq!(fetch(&s, "/query?search=FF").await.1, "HIT", "unreserved escapes are decoded");
}

/// `/stripped`: `xfh {x-forwarded-host:?}`, validated by `ETag: "s1"`: a
/// revalidation that reaches it with the cache's `If-None-Match` gets a
/// `304`.
async fn stripped(req: OriginRequest, _origin: Origin) -> OriginResponse {
    let r = match req.headers.get(IF_NONE_MATCH) {
        Some(v) if v == "\"s1\"" => status_only(StatusCode::NOT_MODIFIED),
        _ => text(format!("xfh {:?}", req.headers.get("x-forwarded-host"))),
    };
    r.header(ETAG, "\"s1\"")
}

/// What reaches the handler unkeyed cannot shape a stored response: a
/// policy strips the headers it names from requests whose responses may be
/// stored, and a `GET` with a body is passed through, neither served from
/// nor stored in the cache.
pub async fn unkeyed_request_parts_do_not_shape_stored_responses<A: Adapter>() {
    let s = with_plain(App::new())
        .route("/stripped", p().ttl("60s").strip_request_headers(["x-forwarded-host"]), stripped)
        .start::<A>()
        .await;
    let r = s.get("/stripped").header("x-forwarded-host", "evil.example").send().await.unwrap();
    assert_eq!(header(&r, "x-cache"), "MISS");
    assert_eq!(r.text().await.unwrap(), "xfh None", "stripped before the origin");
    let (_, x_cache, _, body) = fetch(&s, "/stripped").await;
    assert_eq!((x_cache.as_str(), body.as_str()), ("HIT", "xfh None"));
    // A revalidation is forwarded as the engine built it too: stripped,
    // with the cache's validator (as many headers as the client sent).
    s.cache.clock().advance(Duration::from_secs(61));
    let r = s.get("/stripped").header("x-forwarded-host", "evil.example").send().await.unwrap();
    assert_eq!(header(&r, "cache-status"), "cache; fwd=stale; fwd-status=304; stored");
    assert_eq!(r.text().await.unwrap(), "xfh None", "the revalidation reached the origin as sent");
    let (_, x_cache, _, body) = fetch(&s, "/stripped").await;
    assert_eq!((x_cache.as_str(), body.as_str()), ("HIT", "xfh None"));

    fetch(&s, "/plain/9").await;
    let r = s.get("/plain/9").body("a body").send().await.unwrap();
    assert_eq!(header(&r, "cache-status"), "cache; fwd=bypass");
    assert_eq!(s.origin.calls("/plain/9"), 2);
    assert_eq!(fetch(&s, "/plain/9").await.1, "HIT", "the bypass stored nothing");
}

/// Per-status TTLs, and statuses outside the cacheable set.
pub async fn per_status_ttl<A: Adapter>() {
    let s = App::new()
        .route("/status/{code}", p().ttl("60s").status_ttl(StatusCode::NOT_FOUND, "5s"), status)
        .start::<A>()
        .await;
    let (status, x, _, _) = fetch(&s, "/status/404").await;
    assert_eq!((status, x.as_str()), (StatusCode::NOT_FOUND, "MISS"));
    assert_eq!(fetch(&s, "/status/404").await.2, "cache; hit; ttl=5");
    s.cache.clock().advance(Duration::from_secs(5));
    assert_eq!(fetch(&s, "/status/404").await.1, "MISS");
    for _ in 0..2 {
        let (status, x, _, _) = fetch(&s, "/status/500").await;
        assert_eq!((status, x.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "MISS"));
    }
    assert_eq!(s.origin.calls("/status/500"), 2);
}

/// A route without a policy is not touched.
pub async fn uncached_route_is_untouched<A: Adapter>() {
    let s = App::new().uncached("/uncached", echo).start::<A>().await;
    for _ in 0..2 {
        let r = get(&s, "/uncached").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("x-cache").is_none());
        assert!(r.headers().get("cache-status").is_none());
    }
    assert_eq!(s.origin.calls("/uncached"), 2);
}

/// A TOML TTL table behind one layer over every path: path patterns choose
/// the policies (first match wins, wildcards, `cache = false`), defaults
/// fill the routes, and `invalidated_by` rules drop the tags of the tenant
/// on unsafe requests to paths no route caches.
pub async fn toml_table<A: Adapter>() {
    const TABLE: &str = r#"
        [defaults]
        ttl = "60s"
        tenant_header = "x-tenant-id"

        [[route]]
        path = "/plain/{id}"
        tags = ["plain:{tenant}:{id}"]
        invalidated_by = [{ method = "POST", path = "/orders/{id}" }]

        [[route]]
        path = "/assets/private/*"
        cache = false

        [[route]]
        path = "/assets/*"
        ttl = "1h"
    "#;
    let policies = Policies::from_toml_str(TABLE, "cache.toml").expect("a valid table");
    // No framework routes: every request reaches the fallback.
    let s = App::new()
        .fallback(|req, origin| async move {
            if req.path.starts_with("/plain/") {
                plain(req, origin).await
            } else {
                echo(req, origin).await
            }
        })
        .start_with_table::<A>(policies)
        .await;
    let fetch = |method: Method, path: &'static str, tenant: &'static str| {
        let request = s.request(method, path).header("x-tenant-id", tenant);
        async move {
            let r = request.send().await.expect("the app answers");
            (header(&r, "x-cache"), header(&r, "cache-status"), r.text().await.expect("a body"))
        }
    };
    let (x, cs, body) = fetch(Method::GET, "/plain/1", "acme").await;
    assert_eq!(
        (x.as_str(), cs.as_str(), body.as_str()),
        ("MISS", "cache; fwd=uri-miss; fwd-status=200; stored", "/plain/1 v0")
    );
    for (path, tenant) in [("/plain/1", "globex"), ("/plain/2", "acme")] {
        assert_eq!(fetch(Method::GET, path, tenant).await.0, "MISS");
    }
    let (x, cs, _) = fetch(Method::GET, "/plain/1", "acme").await;
    assert_eq!((x.as_str(), cs.as_str()), ("HIT", "cache; hit; ttl=60"), "the defaults' TTL");
    assert_eq!(s.origin.calls("/plain/"), 3);

    let (x, cs, _) = fetch(Method::GET, "/assets/site/app.js", "acme").await;
    assert_eq!((x.as_str(), cs.as_str()), ("MISS", "cache; fwd=uri-miss; fwd-status=200; stored"));
    let (x, cs, _) = fetch(Method::GET, "/assets/site/app.js", "acme").await;
    assert_eq!((x.as_str(), cs.as_str()), ("HIT", "cache; hit; ttl=3600"), "the route's own TTL");

    for path in ["/assets/private/key", "/elsewhere"] {
        for _ in 0..2 {
            let (x, cs, body) = fetch(Method::GET, path, "acme").await;
            assert_eq!((x.as_str(), cs.as_str(), body), ("", "", format!("GET {path}")), "untouched");
        }
        assert_eq!(s.origin.calls(path), 2);
    }

    // No route caches /orders/{id}; the rule drops acme's plain:acme:1 only.
    let (x, _, body) = fetch(Method::POST, "/orders/1", "acme").await;
    assert_eq!((x.as_str(), body.as_str()), ("BYPASS", "POST /orders/1"));
    assert_eq!(fetch(Method::GET, "/plain/1", "acme").await.0, "MISS");
    assert_eq!(fetch(Method::GET, "/plain/1", "globex").await.0, "HIT");
    assert_eq!(fetch(Method::GET, "/plain/2", "acme").await.0, "HIT");
    assert_eq!(s.origin.calls("/plain/"), 4);
}
