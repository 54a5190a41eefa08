//! The purge API through real HTTP, on both adapters: `POST /purge` by tag,
//! key and prefix, `PURGE <url>`, and the refusals (`401`, `413`, `400`,
//! `405`, `503`).

mod axum {
    cache_tests::purge_suite!(cache_tests::purge::AxumPurge);
}

mod actix {
    cache_tests::purge_suite!(cache_tests::purge::ActixPurge);
}
