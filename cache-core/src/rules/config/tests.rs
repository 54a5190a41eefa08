use http::{Request, StatusCode};
use proptest::prelude::*;

use super::{fields::POLICY_FIELDS, *};
use crate::CacheMode;

fn load(source: &str) -> Result<Policies, ConfigFileError> {
    Policies::from_toml_str(source, "cache.toml")
}

fn err(source: &str) -> String {
    load(source).unwrap_err().to_string()
}

const TABLE: &str = r#"
        [defaults]
        namespace = "shop"
        tenant_header = "x-tenant-id"
        ttl = "10m"
        status_ttl = { 404 = "30s" }

        [[route]]
        path = "/api/v1/products/{id}"
        ttl = "1h"
        status_ttl = { 410 = "5m" }
        tags = ["product:{tenant}:{id}"]
        invalidated_by = [{ method = "PUT", path = "/api/v1/products/{id}" }]

        [[route]]
        path = "/api/v1/products"
        tags = ["products:{tenant}"]
        invalidated_by = [{ methods = ["put", "DELETE"], path = "/api/v1/products/{id}" }, { path = "/api/v1/orders" }]

        [[route]]
        path = "/admin/*"
        cache = false

        [[route]]
        path = "/*"
        mode = "rfc9111"
    "#;

fn parts(method: &str, uri: &str) -> http::request::Parts {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("x-tenant-id", "acme")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

#[test]
fn routes_take_defaults_and_first_match_wins() {
    let policies = load(TABLE).unwrap();
    let get = |path: &str| policies.select(None, &Method::GET, path).map(|s| s.policy().clone());
    let product = get("/api/v1/products/7").unwrap();
    assert_eq!(product.ttl().as_secs(), 3600);
    assert_eq!(product.inner().ttl_for(StatusCode::NOT_FOUND).as_secs(), 30, "merged status_ttl");
    assert_eq!(product.inner().ttl_for(StatusCode::GONE).as_secs(), 300);
    assert_eq!(product.inner().key.namespace, "shop");
    assert_eq!(product.label(), "/api/v1/products/{id}", "labelled by its path");
    assert_eq!(get("/api/v1/products").unwrap().ttl().as_secs(), 600);
    assert!(get("/admin/users").is_none(), "cache = false");
    assert_eq!(get("/other").unwrap().mode(), CacheMode::Rfc9111, "the catch-all");
    // By framework pattern too.
    let framework = policies.select(Some("/api/v1/products/{id}"), &Method::GET, "/x/y").unwrap();
    assert_eq!(framework.policy().ttl().as_secs(), 3600);
}

#[test]
fn unsafe_requests_carry_the_rules_tags() {
    let policies = load(TABLE).unwrap();
    let put = parts("PUT", "/api/v1/products/7");
    let selection = policies.select(None, &put.method, put.uri.path()).unwrap();
    let route = selection.route_match(&put, crate::RouteMatch::default());
    assert_eq!(route.get("id"), Some("7"));
    assert_eq!(route.invalidations(), ["product:acme:7", "products:acme"]);
    // A POST on a path no route caches, covered by a rule.
    let post = parts("POST", "/api/v1/orders");
    let selection = policies.select(None, &post.method, post.uri.path()).unwrap();
    assert_eq!(
        selection.route_match(&post, crate::RouteMatch::default()).invalidations(),
        ["products:acme"]
    );
    let get = parts("GET", "/api/v1/products/7");
    let selection = policies.select(None, &get.method, get.uri.path()).unwrap();
    assert!(selection.route_match(&get, crate::RouteMatch::default()).invalidations().is_empty());
}

#[test]
fn errors_name_the_file_the_route_and_the_field() {
    let cases = [
        (
            "[[route]]\npath = \"/a\"\nttl = \"1x\"",
            "cache.toml: route 1 (/a): ttl: invalid duration `1x`",
        ),
        (
            "[[route]]\npath = \"/a\"\ntll = \"1m\"",
            "cache.toml: route 1 (/a): tll: unknown field; expected one of mode, ttl,",
        ),
        (
            "[[route]]\npath = \"/a\"\nttl = 5",
            "cache.toml: route 1 (/a): ttl: expected a duration such as",
        ),
        ("[[route]]\nttl = \"5m\"", "cache.toml: route 1: path: missing"),
        ("[[route]]\npath = \"a\"", "cache.toml: route 1 (a): path: `a`: must start with `/`"),
        ("[defaults]\nttl = \"zz\"", "cache.toml: defaults: ttl: invalid duration `zz`"),
        (
            "[defaults]\npath = \"/a\"",
            "cache.toml: defaults: path: only a [[route]] takes this field",
        ),
        (
            "[[route]]\npath = \"/a\"\nmode = \"lru\"",
            "cache.toml: route 1 (/a): mode: `lru`: expected",
        ),
        (
            "[[route]]\npath = \"/a\"\nstatus_ttl = { 999x = \"1m\" }",
            "cache.toml: route 1 (/a): status_ttl: `999x` is not an HTTP status code",
        ),
        (
            "[[route]]\npath = \"/a\"\ntags = [\"p:{\"]",
            "cache.toml: route 1 (/a): tags: `p:{`",
        ),
        (
            "[[route]]\npath = \"/a\"\ntenant_header = \"bad header\"",
            "cache.toml: route 1 (/a): tenant_header:",
        ),
        (
            "[[route]]\npath = \"/a\"\ntags = [\"a\"]\ninvalidated_by = [{ method = \"GET\", path = \"/a\" }]",
            "cache.toml: route 1 (/a): invalidated_by[1].method: `GET` is a safe method",
        ),
        (
            "[[route]]\npath = \"/a\"\ninvalidated_by = [{ path = \"/a\" }]",
            "cache.toml: route 1 (/a): invalidated_by[1].tags: no tags to drop",
        ),
        (
            "[[route]]\npath = \"/a\"\ntags = [\"a\"]\ninvalidated_by = [{ path = \"/a\", tag = \"x\" }]",
            "cache.toml: route 1 (/a): invalidated_by[1].tag: unknown field",
        ),
        (
            "[[route]]\npath = \"/a\"\n\n[[route]]\npath = \"/b\"\ncache = 1",
            "cache.toml: route 2 (/b): cache: expected true or false",
        ),
        ("surprise = 1", "cache.toml: surprise: unknown top-level key"),
        ("[[route]\npath = 1", "cache.toml: line 1, column"),
    ];
    for (source, expected) in cases {
        let message = err(source);
        assert!(
            message.starts_with(expected),
            "{source:?}\n  gave {message:?}\n  expected {expected:?}"
        );
    }
}

/// The TOML table above, in YAML.
const YAML: &str = r#"
defaults:
  namespace: shop
  tenant_header: x-tenant-id
  ttl: 10m
  status_ttl: { 404: 30s }
route:
  - path: "/api/v1/products/{id}"
    ttl: 1h
    status_ttl: { "410": 5m }
    tags: ["product:{tenant}:{id}"]
    invalidated_by: [{ method: PUT, path: "/api/v1/products/{id}" }]
  - path: /api/v1/products
    tags: ["products:{tenant}"]
    invalidated_by:
      - { methods: [put, DELETE], path: "/api/v1/products/{id}" }
      - { path: /api/v1/orders }
  - path: /admin/*
    cache: false
  - path: /*
    mode: rfc9111
"#;

/// A selected policy's TTL, 404 TTL, label and mode, and the tags a
/// `PUT` of the path drops.
type Selected = (u64, u64, String, CacheMode, Vec<String>);

/// What a table selects for a few requests, to compare loaders.
fn selected(policies: &Policies) -> Vec<Option<Selected>> {
    ["/api/v1/products/7", "/api/v1/products", "/admin/users", "/other"]
        .into_iter()
        .map(|path| {
            let policy = policies.select(None, &Method::GET, path)?.policy().clone();
            let put = parts("PUT", path);
            let route = policies
                .select(None, &Method::PUT, path)
                .map(|s| s.route_match(&put, crate::RouteMatch::default()));
            Some((
                policy.ttl().as_secs(),
                policy.inner().ttl_for(StatusCode::NOT_FOUND).as_secs(),
                policy.label().to_owned(),
                policy.mode(),
                route.map(|r| r.invalidations().to_vec()).unwrap_or_default(),
            ))
        })
        .collect()
}

#[test]
fn the_table_loads_from_yaml_and_through_figment() {
    use figment::{
        Figment,
        providers::{Format, Toml, Yaml},
    };
    let from_toml = selected(&load(TABLE).unwrap());
    assert_eq!(from_toml[0].as_ref().unwrap().0, 3600, "the fixture selects something");
    let from_yaml: Policies = Figment::from(Yaml::string(YAML)).extract().unwrap();
    assert_eq!(selected(&from_yaml), from_toml);
    let from_yaml: Policies = serde_yaml::from_str(YAML).unwrap();
    assert_eq!(selected(&from_yaml), from_toml, "status codes as YAML integer keys");
    // Nested in an application's own configuration, next to its other
    // settings.
    #[derive(serde::Deserialize)]
    struct AppConfig {
        #[allow(dead_code)]
        port: u16,
        cache: Policies,
    }
    let nested = format!(
        "port = 8080\n{}",
        TABLE
            .replace("[defaults]", "[cache.defaults]")
            .replace("[[route]]", "[[cache.route]]")
    );
    let app: AppConfig = Figment::from(Toml::string(&nested)).extract().unwrap();
    assert_eq!(selected(&app.cache), from_toml);
    // And from JSON: any serde format.
    let json = r#"{"route": [{"path": "/a", "ttl": "90s", "vary": ["accept-language"]}]}"#;
    let policies: Policies = serde_json::from_str(json).unwrap();
    assert_eq!(policies.select(None, &Method::GET, "/a").unwrap().policy().ttl().as_secs(), 90);
}

#[test]
fn serde_errors_name_the_route_and_the_field() {
    use figment::{
        Figment,
        providers::{Format, Yaml},
    };
    let yaml = "route:\n  - path: /a\n  - path: /b\n    ttl: 1x\n";
    let error = Figment::from(Yaml::string(yaml)).extract::<Policies>().unwrap_err().to_string();
    assert!(error.contains("route 2 (/b): ttl: invalid duration `1x`"), "{error}");
    let error = serde_json::from_str::<Policies>(r#"{"route": [{"path": "/a", "tll": "1m"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("route 1 (/a): tll: unknown field"), "{error}");
    let error = serde_json::from_str::<CachePolicy>(r#"{"ttl": 5}"#).unwrap_err().to_string();
    assert!(error.starts_with("ttl: expected a duration such as"), "{error}");
    let policy: CachePolicy = serde_json::from_str(r#"{"ttl": "2m", "stale_while_revalidate": "10s"}"#).unwrap();
    assert_eq!((policy.ttl().as_secs(), policy.inner().stale_while_revalidate.as_secs()), (120, 10));
    let error = serde_json::from_str::<CachePolicy>(r#"{"ttl": null}"#).unwrap_err().to_string();
    assert!(error.starts_with("a null value"), "{error}");
    let error = serde_json::from_str::<CachePolicy>(r#"{"max_body_size": 18446744073709551615}"#)
        .unwrap_err()
        .to_string();
    assert!(error.contains("out of range"), "{error}");
    let ttl: crate::Ttl = serde_json::from_str(r#""1h30m""#).unwrap();
    assert_eq!(ttl.as_duration().as_secs(), 5400);
    assert!(serde_json::from_str::<crate::Ttl>("90").is_err());
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let e = Policies::from_toml_file("/nonexistent/cache.toml").unwrap_err();
    assert_eq!(e.file(), "/nonexistent/cache.toml");
    assert!(e.to_string().starts_with("/nonexistent/cache.toml: cannot read:"), "{e}");
}

proptest! {
    #[test]
    fn any_text_loads_or_fails_cleanly(source in "[\\[\\]a-z_=\"{}/ .0-9\n]{0,80}") {
        let _ = load(&source);
    }

    #[test]
    fn any_field_value_loads_or_fails_cleanly(field in proptest::sample::select(POLICY_FIELDS.to_vec()), value in "(\"[a-z0-9 {}:]{0,6}\"|-?[0-9]{1,4}|true|false|\\[\\]|\\{\\})") {
        let _ = load(&format!("[[route]]\npath = \"/a\"\n{field} = {value}"));
    }
}
