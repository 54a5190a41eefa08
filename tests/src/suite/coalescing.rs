//! One origin call per key, and what waiting requests get.

use http::header::VARY;

use super::*;
use crate::handlers::{language, slow, slow_uncacheable};

/// `/slow`: [`slow`] behind a one-minute policy.
fn with_slow(app: App) -> App {
    app.route("/slow", p().ttl("60s"), slow)
}

/// 1,000 concurrent requests on a cold key make exactly one origin call
/// and all get the same bytes.
pub async fn stampede_makes_one_origin_call<A: Adapter>() {
    let s = with_slow(App::new()).start::<A>().await;
    s.origin.close();
    let requests = (0..1000).map(|_| {
        let r = s.get("/slow");
        async move {
            let r = r.send().await.expect("every request is answered");
            let (status, x, cs) = (r.status(), header(&r, "x-cache"), header(&r, "cache-status"));
            (status, x, cs, r.bytes().await.expect("a body"))
        }
    });
    let all = tokio::spawn(join_all(requests));
    until("the first request reaches the origin", || s.origin.calls("/slow") >= 1).await;
    // Let the others arrive and queue behind the first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.origin.open();
    let responses = tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("the stampede completes")
        .unwrap();
    assert_eq!(s.origin.calls("/slow"), 1);
    let collapsed = responses.iter().filter(|r| r.2.ends_with("; collapsed")).count();
    assert!(collapsed > 0, "no request waited on the leader");
    for (status, x, _, body) in &responses {
        assert_eq!(*status, StatusCode::OK);
        assert!(x == "MISS" || x == "HIT", "{x}");
        assert_eq!(body.as_ref(), b"slow v0");
    }
}

/// When the request fetching a key is cancelled, a waiting request takes
/// over at once instead of waiting out the coalescing timeout.
pub async fn cancelled_leader_hands_over<A: Adapter>() {
    let s = with_slow(App::new()).start::<A>().await;
    s.origin.close();
    // The leader's future is dropped 400 ms after it arrives.
    let leader = tokio::spawn(s.get("/slow").header(DEADLINE_HEADER, "400").send());
    until("the leader reaches the origin", || s.origin.calls("/slow") == 1).await;
    let waiter = tokio::spawn(s.get("/slow").send());
    let leader = tokio::time::timeout(PATIENCE, leader).await.unwrap().unwrap().unwrap();
    assert_eq!(leader.status(), StatusCode::GATEWAY_TIMEOUT);
    until("the waiter takes over and reaches the origin", || s.origin.calls("/slow") == 2).await;
    s.origin.open();
    let r = tokio::time::timeout(PATIENCE, waiter).await.unwrap().unwrap().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-status"), "cache; fwd=uri-miss; fwd-status=200; stored");
    assert_eq!(r.text().await.unwrap(), "slow v0");
    assert_eq!(fetch(&s, "/slow").await.1, "HIT");
}

/// After a response that cannot be stored, concurrent requests for the key
/// go to the origin together instead of queueing behind one another.
pub async fn uncacheable_response_does_not_queue_waiters<A: Adapter>() {
    let s = App::new()
        .route("/slow-uncacheable", p().ttl("60s"), slow_uncacheable)
        .start::<A>()
        .await;
    assert_eq!(fetch(&s, "/slow-uncacheable").await.1, "MISS");
    // Each of the next five calls is held until all five are inside the origin.
    s.origin.require_crowd(6);
    let requests = (0..5).map(|_| s.get("/slow-uncacheable").send());
    let responses = tokio::time::timeout(PATIENCE, join_all(requests))
        .await
        .expect("requests for an uncacheable key did not queue");
    for r in responses {
        assert_eq!(r.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(s.origin.calls("/slow-uncacheable"), 6);
}

/// A request that forbids storing (`Cache-Control: no-store`) gets a fresh
/// response that is not stored, and does not stop later requests for the
/// key from being coalesced and stored.
pub async fn request_no_store_is_not_stored_and_keeps_coalescing<A: Adapter>() {
    let s = with_slow(App::new()).start::<A>().await;
    let r = s.get("/slow").header("cache-control", "no-store").send().await.unwrap();
    assert_eq!(header(&r, "cache-status"), "cache; fwd=uri-miss; fwd-status=200");
    s.origin.close();
    let requests = (0..20).map(|_| s.get("/slow").send());
    let all = tokio::spawn(join_all(requests));
    until("a request reaches the origin", || s.origin.calls("/slow") >= 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.origin.open();
    let responses = tokio::time::timeout(PATIENCE, all).await.unwrap().unwrap();
    assert_eq!(s.origin.calls("/slow"), 2, "the no-store request made the key skip coalescing");
    let collapsed = responses
        .into_iter()
        .filter(|r| header(r.as_ref().unwrap(), "cache-status").ends_with("collapsed"))
        .count();
    assert!(collapsed > 0);
    assert_eq!(fetch(&s, "/slow").await.1, "HIT");
}

/// A request that waited on another's fetch is not served that response if
/// it varies on a header whose value differs.
pub async fn collapsed_requests_respect_vary<A: Adapter>() {
    let s = App::new()
        .route("/slow-vary", p().ttl("60s"), |req, origin| async move {
            // The request's language, answered once the gate is open.
            let answer = language(req, origin.clone()).await;
            origin.wait_for_gate().await;
            answer.header(VARY, "Accept-Language")
        })
        .start::<A>()
        .await;
    s.origin.close();
    let en = tokio::spawn(s.get("/slow-vary").header("accept-language", "en").send());
    until("the first request reaches the origin", || s.origin.calls("/slow-vary") == 1).await;
    let fr = tokio::spawn(s.get("/slow-vary").header("accept-language", "fr").send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.origin.open();
    let en = tokio::time::timeout(PATIENCE, en).await.unwrap().unwrap().unwrap();
    let fr = tokio::time::timeout(PATIENCE, fr).await.unwrap().unwrap().unwrap();
    assert_eq!(en.text().await.unwrap(), "lang Some(\"en\")");
    assert_eq!(header(&fr, "cache-status"), "cache; fwd=vary-miss; fwd-status=200; stored");
    assert_eq!(fr.text().await.unwrap(), "lang Some(\"fr\")", "got the other language's response");
    assert_eq!(s.origin.calls("/slow-vary"), 2);
}
