//! A store that fails or holds garbage.

use super::*;

/// A store that fails on every call turns the cache into a pass-through.
pub async fn failing_store_passes_through<A: Adapter>() {
    let s = with_plain(App::new()).start_on::<A>(FailingStore).await;
    for _ in 0..2 {
        let (status, x, _, body) = fetch(&s, "/plain/1").await;
        assert_eq!((status, x.as_str(), body.as_str()), (StatusCode::OK, "MISS", "/plain/1 v0"));
    }
    let put = s.request(Method::PUT, "/plain/1").send().await.unwrap();
    assert_eq!(
        put.status(),
        StatusCode::NO_CONTENT,
        "a failed invalidation does not fail the request"
    );
    assert_eq!(s.origin.calls("/plain/1"), 3);
}

/// Foreign bytes in the store are a miss, never an error or a panic.
pub async fn corrupt_store_is_a_miss<A: Adapter>() {
    let s = with_plain(App::new()).start_on::<A>(CorruptStore).await;
    for _ in 0..2 {
        let (status, x, _, body) = fetch(&s, "/plain/3").await;
        assert_eq!((status, x.as_str(), body.as_str()), (StatusCode::OK, "MISS", "/plain/3 v0"));
    }
    assert_eq!(s.origin.calls("/plain/3"), 2);
}
