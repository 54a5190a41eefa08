use super::*;
use http::{HeaderValue, Request};
use proptest::prelude::*;

fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = Request::get(uri);
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    builder.body(()).unwrap().into_parts().0
}

fn tenant_spec() -> KeySpec {
    KeySpec {
        tenant: Some(TenantSource::Header(HeaderName::from_static("x-tenant-id"))),
        ..KeySpec::default()
    }
}

#[test]
fn layout_is_readable() {
    let spec = tenant_spec();
    let key = spec.build(&parts("/api/v1/products/7?b=2&a=1", &[("x-tenant-id", "acme")]));
    assert_eq!(key.as_str(), "http:1:=acme:/api/v1/products/7?a=1&b=2::");
    assert_eq!(key.uri(), "http:1:=acme:/api/v1/products/7?a=1&b=2");
    assert!(key.as_str().starts_with(&spec.prefix(Some("acme"), "/api/v1/products")));
}

#[test]
fn tenants_with_separators_do_not_collide() {
    let spec = tenant_spec();
    let a = spec.build(&parts("/x:y", &[("x-tenant-id", "a")]));
    let b = spec.build(&parts("/y", &[("x-tenant-id", "a:/x")]));
    let c = spec.build(&parts("/x:y", &[]));
    let d = spec.build(&parts("/x:y", &[("x-tenant-id", "")]));
    let keys: BTreeSet<_> = [&a, &b, &c, &d].iter().map(|k| k.as_str().to_owned()).collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
}

#[test]
fn query_is_decoded_filtered_and_sorted() {
    let mut spec = KeySpec::default();
    assert_eq!(
        spec.build(&parts("/p?b=x%20y&a=1", &[])).as_str(),
        spec.build(&parts("/p?a=1&b=x+y", &[])).as_str()
    );
    assert_ne!(spec.build(&parts("/p?a=1", &[])), spec.build(&parts("/p?a=2", &[])));
    // `a=1&b=2` as one value must differ from two parameters.
    assert_ne!(spec.build(&parts("/p?a=1%26b%3D2", &[])), spec.build(&parts("/p?a=1&b=2", &[])));
    spec.query = QueryFilter::Deny(["utm_source".to_owned()].into());
    assert_eq!(spec.build(&parts("/p?utm_source=x&a=1", &[])), spec.build(&parts("/p?a=1", &[])));
    spec.query = QueryFilter::Allow(["page".to_owned()].into());
    assert_eq!(spec.build(&parts("/p?page=2&junk=1", &[])), spec.build(&parts("/p?page=2", &[])));
    spec.query = QueryFilter::None;
    assert_eq!(spec.build(&parts("/p?page=2", &[])), spec.build(&parts("/p", &[])));
}

#[test]
fn repeated_parameters_keep_their_order() {
    let spec = KeySpec::default();
    assert_ne!(spec.build(&parts("/p?a=1&a=2", &[])), spec.build(&parts("/p?a=2&a=1", &[])));
}

#[test]
fn varied_headers_are_keyed_and_missing_differs_from_empty() {
    let spec = KeySpec {
        vary: vec![HeaderName::from_static("accept-language")],
        ..KeySpec::default()
    };
    let en = spec.build(&parts("/p", &[("accept-language", "en")]));
    let fr = spec.build(&parts("/p", &[("accept-language", "fr")]));
    let empty = spec.build(&parts("/p", &[("accept-language", "")]));
    let none = spec.build(&parts("/p", &[]));
    assert_ne!(en, fr);
    assert_ne!(empty, none);
    assert_eq!(en.uri(), none.uri());
    assert_eq!(
        spec.build(&parts("/p", &[("accept-encoding", "gzip")])),
        none,
        "unkeyed headers do not change the key"
    );
}

#[test]
fn principal_is_hashed_not_copied() {
    let spec = KeySpec {
        by_principal: true,
        ..KeySpec::default()
    };
    let alice = spec.build(&parts("/me", &[("authorization", "Bearer alice-secret")]));
    let bob = spec.build(&parts("/me", &[("authorization", "Bearer bob-secret")]));
    assert_ne!(alice, bob);
    assert!(!alice.as_str().contains("alice"));
    assert_eq!(alice.uri(), bob.uri());
}

#[test]
fn long_keys_are_bounded_and_still_distinct() {
    let spec = KeySpec::default();
    let long = "x".repeat(400);
    let a = spec.build(&parts(&format!("/{long}?a=1"), &[]));
    let b = spec.build(&parts(&format!("/{long}?a=2"), &[]));
    assert!(a.as_str().len() <= MAX_KEY_LEN && a.uri().len() <= MAX_KEY_LEN);
    assert_ne!(a, b);
    assert!(a.as_str().starts_with("http:1::/xxxx"));
}

#[test]
fn extension_and_function_tenants() {
    let mut p = parts("/p", &[]);
    p.extensions.insert(Tenant("globex".into()));
    assert_eq!(TenantSource::Extension.tenant(&p).as_deref(), Some("globex"));
    let f = TenantSource::Function(Arc::new(|p: &Parts| p.uri.host().map(str::to_owned)));
    assert_eq!(
        f.tenant(&parts("http://initech.example/p", &[])).as_deref(),
        Some("initech.example")
    );
}

fn arb_request() -> impl Strategy<Value = (Option<Vec<u8>>, String, Option<Vec<u8>>)> {
    let header = proptest::collection::vec(
        prop_oneof![
            Just(b':'),
            Just(b'='),
            Just(b'%'),
            Just(b'&'),
            Just(b'a'),
            Just(b' '),
            0x80u8..=0xff
        ],
        0..6,
    );
    let path = proptest::collection::vec(
        prop_oneof![Just("/"), Just(":"), Just("%3A"), Just("a"), Just("?"), Just("="), Just("&")],
        0..6,
    )
    .prop_map(|v| v.concat());
    (proptest::option::of(header.clone()), path, proptest::option::of(header))
}

fn request_parts((tenant, path_and_query, lang): &(Option<Vec<u8>>, String, Option<Vec<u8>>)) -> Option<Parts> {
    let uri = format!("/{path_and_query}");
    let mut req = Request::get(uri.as_str()).body(()).ok()?;
    if let Some(t) = tenant {
        req.headers_mut().insert("x-tenant-id", HeaderValue::from_bytes(t).ok()?);
    }
    if let Some(l) = lang {
        req.headers_mut().insert("accept-language", HeaderValue::from_bytes(l).ok()?);
    }
    Some(req.into_parts().0)
}

/// Tenant, path, sorted query and varied header.
type Observed = (Option<Vec<u8>>, String, Vec<(String, String)>, Option<Vec<u8>>);

/// What the application can observe of a request through the keyed parts.
fn observed(p: &Parts) -> Observed {
    let query = form_urlencoded::parse(p.uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect::<Vec<_>>();
    let mut sorted = query;
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    (
        p.headers.get("x-tenant-id").map(|v| v.as_bytes().to_vec()),
        p.uri.path().to_owned(),
        sorted,
        p.headers.get("accept-language").map(|v| v.as_bytes().to_vec()),
    )
}

proptest! {
    /// Two requests share a key only if the application sees the same
    /// tenant, path, query and varied header.
    #[test]
    fn keys_are_injective(a in arb_request(), b in arb_request()) {
        let spec = KeySpec { vary: vec![HeaderName::from_static("accept-language")], ..tenant_spec() };
        if let (Some(pa), Some(pb)) = (request_parts(&a), request_parts(&b)) {
            let same_key = spec.build(&pa) == spec.build(&pb);
            prop_assert_eq!(same_key, observed(&pa) == observed(&pb));
        }
    }

    #[test]
    fn keys_are_bounded(path in "[a-z/%:]{0,600}", tenant in ".{0,300}") {
        let spec = tenant_spec();
        if let Ok(mut req) = Request::get(format!("/{path}")).body(()) {
            if let Ok(v) = HeaderValue::from_str(&tenant) {
                req.headers_mut().insert("x-tenant-id", v);
            }
            let key = spec.build(&req.into_parts().0);
            prop_assert!(key.as_str().len() <= MAX_KEY_LEN);
            prop_assert!(key.as_str().is_ascii());
        }
    }
}
