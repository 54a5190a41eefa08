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
fn query_is_normalised_filtered_and_sorted() {
    let mut spec = KeySpec::default();
    assert_eq!(
        spec.build(&parts("/p?b=x%7Ey&a=%31", &[])).as_str(),
        spec.build(&parts("/p?a=1&b=x~y", &[])).as_str()
    );
    // `+` and `%20` are a space to a form decoder but not to a handler
    // reading the raw query; `%FF` and `%FE` are different bytes.
    assert_ne!(spec.build(&parts("/p?b=x%20y", &[])), spec.build(&parts("/p?b=x+y", &[])));
    assert_ne!(spec.build(&parts("/p?search=%FF", &[])), spec.build(&parts("/p?search=%FE", &[])));
    assert_ne!(spec.build(&parts("/p?a", &[])), spec.build(&parts("/p?a=", &[])));
    assert_eq!(spec.build(&parts("/p?a=1&&b=2&", &[])), spec.build(&parts("/p?a=1&b=2", &[])));
    // One name spelled two ways: a map keeps the last value.
    assert_ne!(
        spec.build(&parts("/q?x+y=1&x%20y=2", &[])),
        spec.build(&parts("/q?x%20y=2&x+y=1", &[]))
    );
    assert_ne!(spec.build(&parts("/p?a=1", &[])), spec.build(&parts("/p?a=2", &[])));
    // `a=1&b=2` as one value must differ from two parameters.
    assert_ne!(spec.build(&parts("/p?a=1%26b%3D2", &[])), spec.build(&parts("/p?a=1&b=2", &[])));
    spec.query = QueryFilter::Deny(["utm_source".to_owned(), "two words".to_owned()].into());
    assert_eq!(spec.build(&parts("/p?utm_source=x&a=1", &[])), spec.build(&parts("/p?a=1", &[])));
    assert_eq!(
        spec.build(&parts("/p?utm%5Fsource=x&two+words=1", &[])),
        spec.build(&parts("/p", &[]))
    );
    spec.query = QueryFilter::Allow(["page".to_owned()].into());
    assert_eq!(spec.build(&parts("/p?page=2&junk=1", &[])), spec.build(&parts("/p?page=2", &[])));
    spec.query = QueryFilter::None;
    assert_eq!(spec.build(&parts("/p?page=2", &[])), spec.build(&parts("/p", &[])));
}

#[test]
fn paths_differ_unless_only_unreserved_escapes_differ() {
    let spec = KeySpec::default();
    assert_eq!(spec.build(&parts("/products/%34%32", &[])), spec.build(&parts("/products/42", &[])));
    assert_eq!(spec.build(&parts("/%7Euser", &[])), spec.build(&parts("/~user", &[])));
    assert_ne!(spec.build(&parts("/products/042", &[])), spec.build(&parts("/products/42", &[])));
    assert_ne!(spec.build(&parts("/a%2Fb", &[])), spec.build(&parts("/a/b", &[])));
    assert_ne!(spec.build(&parts("/a/%FF", &[])), spec.build(&parts("/a/%FE", &[])));
    assert_ne!(spec.build(&parts("/a/%%32F", &[])), spec.build(&parts("/a/%2F", &[])));
    assert_ne!(spec.build(&parts("/a%", &[])), spec.build(&parts("/a%25", &[])));
    assert_ne!(spec.build(&parts("/a?q=%", &[])), spec.build(&parts("/a?q=%25", &[])));
    assert_eq!(spec.prefix(None, "/%7Euser/"), spec.prefix(None, "/~user/"));
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
    let path = proptest::collection::vec((0..SPELLINGS.len(), 0..3usize), 0..8).prop_map(|v| spell(&v, 0));
    (proptest::option::of(header.clone()), path, proptest::option::of(header))
}

/// Pieces of request targets, grouped by what they could be confused
/// with: a lossy decoder, a form decoder or a case-insensitive one would
/// read the members of a group alike.
const SPELLINGS: [&[&str]; 12] = [
    &["%FF", "%FE", "%C0"],
    &["4", "%34"],
    &["/", "%2F", "%2f"],
    &["+", "%20", "%2B"],
    &["%", "%25", "%3"],
    &["a", "%61", "A"],
    &["=", "%3D"],
    &["&", "%26", "&&"],
    &[":", "%3A"],
    &["?"],
    &["~", "%7E", "%7e"],
    &["%%32F", "%252F"],
];

/// The target made of `pieces`: (group, member) pairs, each member shifted
/// by `shift` within its group.
fn spell(pieces: &[(usize, usize)], shift: usize) -> String {
    pieces
        .iter()
        .map(|&(group, member)| SPELLINGS[group][(member + shift) % SPELLINGS[group].len()])
        .collect()
}

/// Two targets made of the same groups, spelled alike or differently.
fn arb_pair() -> impl Strategy<Value = (String, String)> {
    (
        proptest::collection::vec((0..SPELLINGS.len(), 0..3usize), 0..8),
        proptest::collection::vec(0..3usize, 8),
    )
        .prop_map(|(pieces, shifts)| {
            let other: Vec<_> = pieces.iter().zip(&shifts).map(|(&(g, m), &s)| (g, m + s)).collect();
            (spell(&pieces, 0), spell(&other, 0))
        })
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

/// Percent-decoding of one component to bytes, written from RFC 3986 §2.1
/// and sharing no code with the key builder: `%` and two hex digits is a
/// byte, anything else stands for itself (`+` included).
fn decoded(component: &str) -> Vec<u8> {
    let b = component.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && b.len() >= i + 3 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ASCII hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// One query parameter as any parser sees it: decoded name and value,
/// `None` for a parameter without `=`.
type Param = (Vec<u8>, Option<Vec<u8>>);

/// Tenant bytes, decoded path segments, query parameters sorted by name
/// (stable), varied header bytes.
type Observed = (Option<Vec<u8>>, Vec<Vec<u8>>, Vec<Param>, Option<Vec<u8>>);

/// What an application can observe of a request through the keyed parts:
/// the structure of the target (segments split at `/`, parameters at `&`
/// and `=`) with each piece decoded, raw header bytes. The order of
/// different parameter names and empty parameters are what the key is
/// documented to ignore.
fn observed(p: &Parts) -> Observed {
    let segments = p.uri.path().split('/').map(decoded).collect();
    let mut query: Vec<Param> = p
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.find('=') {
            Some(at) => (decoded(&pair[..at]), Some(decoded(&pair[at + 1..]))),
            None => (decoded(pair), None),
        })
        .collect();
    // Grouped by name as a form decoder reads it (`+` is a space), which
    // is how a handler reading the query into a map sees it.
    let form = |name: &[u8]| name.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect::<Vec<u8>>();
    query.sort_by_key(|param| form(&param.0));
    (
        p.headers.get("x-tenant-id").map(|v| v.as_bytes().to_vec()),
        segments,
        query,
        p.headers.get("accept-language").map(|v| v.as_bytes().to_vec()),
    )
}

proptest! {
    /// Two requests share a key only if the application sees the same
    /// tenant, path, query and varied header.
    #[test]
    fn keys_are_injective(a in arb_request(), b in arb_request()) {
        let spec = KeySpec { vary: vec![HeaderName::from_static("accept-language")], ..tenant_spec() };
        if let (Some(pa), Some(pb)) = (request_parts(&a), request_parts(&b))
            && spec.build(&pa) == spec.build(&pb)
        {
            prop_assert_eq!(observed(&pa), observed(&pb), "{} and {} share a key", pa.uri, pb.uri);
        }
    }

    /// The same, for targets that differ only in how some pieces are
    /// spelled: where lossy, form or case-folding decoders would merge
    /// requests.
    #[test]
    fn respelled_targets_share_a_key_only_if_equivalent((a, b) in arb_pair()) {
        let spec = KeySpec::default();
        if let (Some(pa), Some(pb)) = (request_parts(&(None, a, None)), request_parts(&(None, b, None)))
            && spec.build(&pa) == spec.build(&pb)
        {
            prop_assert_eq!(observed(&pa), observed(&pb), "{} and {} share a key", pa.uri, pb.uri);
        }
    }

    /// Respelling unreserved characters (`a` as `%61`, `4` as `%34`) or
    /// reordering different parameter names never changes the key.
    #[test]
    fn equivalent_spellings_share_a_key(names in proptest::collection::vec("[a-d]", 1..4), values in proptest::collection::vec("[0-9a-z~._-]{0,3}", 4), path in "[a-z0-9]{1,6}", swap in any::<bool>()) {
        let spec = KeySpec::default();
        let escape_all = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        let mut names = names;
        names.sort();
        names.dedup();
        let plain: Vec<String> = names.iter().zip(&values).map(|(n, v)| format!("{n}={v}")).collect();
        let mut spelled: Vec<String> = names.iter().zip(&values).map(|(n, v)| format!("{}={}", escape_all(n), escape_all(v))).collect();
        if swap {
            spelled.reverse();
        }
        let a = spec.build(&parts(&format!("/{path}?{}", plain.join("&")), &[]));
        let b = spec.build(&parts(&format!("/{}?{}", escape_all(&path), spelled.join("&")), &[]));
        prop_assert_eq!(a, b);
    }

    /// The one-pass escaping of targets is the escaping of their normal form.
    #[test]
    fn escaping_a_target_escapes_its_normal_form(s in "([a-z2F%~+/ü:=&]|%[0-9a-fA-F]{2}|%[g-z]){0,24}") {
        let mut fused = String::new();
        escape_target_into(&s, &mut fused);
        let mut reference = String::new();
        escape_str_into(&crate::percent::decode_unreserved(&s), &mut reference);
        prop_assert_eq!(fused, reference);
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
