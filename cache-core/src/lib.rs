//! The engine of server-side HTTP response caching for Rust web apps.
//!
//! `cache-core` knows no web framework: it speaks [`http`] types and
//! [`bytes`]. The adapters — `cache-tower` (any tower stack), `cache-axum`
//! and `cache-actix` — translate their framework's requests and responses
//! and serve them in two steps ([`adapter`]): [`Cache::begin`] classifies
//! and keys the request and answers a hit on an in-process store without
//! any asynchronous work; the exchange it returns otherwise is served with
//! the request's body and the origin. One behaviour, written once.
//!
//! What happens to a request:
//!
//! 1. **Policy.** The route's [`CachePolicy`] (or none: the request passes
//!    through). Only `GET` and `HEAD` are served from the cache; the other
//!    safe methods (`OPTIONS`, `TRACE`, and those registered as safe, such
//!    as `PROPFIND` and `REPORT`) and `CONNECT` pass through; every other
//!    method (`POST`, `PUT`, `PATCH`, `DELETE`, extension methods such as
//!    `M-SEARCH`) passes through and, when it succeeds, drops the entries
//!    of its own URI and the tags its route declares (RFC 9111 §4.4).
//! 2. **Key.** Built by the policy's [`KeySpec`](key::KeySpec): namespace, version, tenant,
//!    path, allowed query parameters in sorted order, varied headers; escaped
//!    so that no two different requests share a key. The path and query are
//!    keyed by their bytes, with only the escapes of unreserved characters
//!    decoded (`/p/%34%32` is `/p/42`; `%FF` is not `%FE`, `+` is not
//!    `%20`): see [`key`]. A `GET` with a body, a repeated
//!    tenant header, `Range` and the `If-Match` family pass through.
//! 3. **Lookup.** A fresh entry whose `Vary` matches is a hit. A store error
//!    counts as a miss.
//! 4. **Conditional requests.** `If-None-Match` (weak comparison, lists,
//!    `*`) and `If-Modified-Since` get `304 Not Modified` from stored
//!    responses, on hits and after a miss.
//! 5. **Coalescing.** One request per key goes to the origin; the others
//!    wait (bounded) and share its response. A cancelled leader hands over to
//!    a waiter. A response that cannot be stored releases the waiters and the
//!    key skips coalescing for a while (hit-for-miss).
//! 6. **Store.** Only what HTTP and the policy allow: a cacheable status; no
//!    `no-store`, `no-cache`, `private` or `Set-Cookie`; no `Vary: *`; no
//!    `Authorization` on the request unless the policy keys by principal or
//!    the response is marked `public`/`s-maxage`/`must-revalidate`; a body
//!    within the size limit (read up to the limit only; a larger body streams
//!    through). An `ETag` is generated when the origin sent none. The same
//!    rules decide whether a `304` that revalidates a stored entry updates
//!    it (RFC 9111 §4.3.4): a `304` that sets a cookie or says `private` or
//!    `no-store` answers the client that asked and changes nothing that
//!    others are served. A `Cache-Control` or `Vary` the cache cannot fully
//!    parse forbids storing: what it could not read might have.
//! 7. **Respond.** `Age`, `Cache-Status` (RFC 9211: this cache's member after
//!    those of caches further in) and `X-Cache`, and the
//!    policy's downstream `Cache-Control`. The request headers the key
//!    depends on (tenant header, varied headers) are added to `Vary`, so
//!    that caches further down never mix tenants. `HEAD` is answered from a
//!    stored `GET`.
//! 8. **Invalidate.** By tag, key or prefix through an [`Invalidator`]; a
//!    successful unsafe request drops its URI's entries and its route's
//!    tags. A fetch that overlaps an invalidation is not stored, so an
//!    update is never hidden by the response of a request that started
//!    before it.
//!
//! # What reaches the handler unkeyed
//!
//! The handler sees the whole request; the cache key holds only the parts
//! above. A stored response must therefore not depend on anything else, or
//! say so:
//!
//! - **Headers** other than the keyed ones (the tenant header, the policy's
//!   [`vary`](CachePolicyBuilder::vary) list, `Authorization` with
//!   [`key_by_principal`](CachePolicyBuilder::key_by_principal)) reach the
//!   handler unkeyed: `Cookie`, `User-Agent`, `X-Forwarded-Host`,
//!   `X-Forwarded-Proto`, `Forwarded`, `Accept-*`... A handler that builds a
//!   shared response from one of them must have the policy key by it
//!   (`vary`), strip it before the handler
//!   ([`strip_request_headers`](CachePolicyBuilder::strip_request_headers)),
//!   or answer with `Vary: <name>` or `Cache-Control: private`. Forwarding
//!   headers in particular come from the client unless a proxy in front
//!   replaces them (the caching proxy example does).
//! - **A body on `GET` or `HEAD`** is never keyed: such a request bypasses
//!   the cache.
//! - **Path parameters** are keyed as the path is; tag templates see them
//!   percent-decoded, as `Path` extractors do. A handler that parses a
//!   parameter (`Path<u64>` accepts `042` and `+42` for `42`) answers
//!   several keys with one resource: tag its responses from the parsed
//!   value ([`CacheHints::tag`]) so that invalidation reaches them all.
//!
//! # Consistency
//!
//! An update is never hidden: once a write and its invalidation have
//! returned, no instance serves what was there before, beyond the bounds
//! below. What the cache promises, per store:
//!
//! - **Read-your-writes** on the instance that invalidated: its next
//!   request for an invalidated entry is a miss, with every store — also
//!   when Redis is unreachable (the tiered store drops its L1 copy at once;
//!   the invalidation is kept for Redis, see below).
//! - **No fetch survives an invalidation it overlaps.** A response whose
//!   fetch began before an invalidation of its key, of one of its tags or of
//!   a prefix of its key is not stored, on any instance, in any store,
//!   typed data included ([`Cache::get_or_insert_with`]). In one process
//!   the engine's own log of recent invalidations orders them; in Redis a
//!   clock that every invalidation advances and the stamps it leaves on
//!   keys and tags do, across instances and on a Redis Cluster (see
//!   [`RedisStore`] for the layout and its cost: the clock is read in the
//!   lookup's round trip, an L2 hit takes a second round trip to check the
//!   entry's tags, a write two).
//! - **Other instances** stop serving an invalidated entry within the
//!   pub/sub delivery time while their subscription is up (milliseconds);
//!   while it is down, within the tiered store's `l1_grace` plus the time
//!   its keepalive takes to notice (1 s + 1–2 s by default), after which
//!   they bypass L1 until they have resubscribed and dropped it.
//! - **Invalidations survive an outage.** One that cannot reach Redis is
//!   kept (bounded; past the bound, everything under the store's prefix is
//!   invalidated instead) and applied, then published, as soon as Redis
//!   answers; until then that instance neither reads from nor writes to
//!   Redis. Other instances that can still reach Redis may serve the old
//!   copy until then: the bound for them is the outage of the instance
//!   that made the change, plus its breaker's cool-down.
//! - **Evictions never bring back invalidated data.** Under `maxmemory`
//!   (any policy, `allkeys-lru` included) an entry whose tag bookkeeping was
//!   evicted is a miss, not a hit.
//!
//! Not covered: Redis itself losing acknowledged writes while it keeps
//! its clock (an asynchronous replica promoted after a failover, a restart
//! from a snapshot older than the last invalidations; a restart that loses
//! everything, clock included, is covered: everything fetched before counts
//! as invalidated); a key's or prefix's invalidation stamp evicted while a
//! fetch that overlapped it is still in flight (tags are covered: a write
//! that finds a tag's stamp gone takes the tag as just invalidated — on a
//! cluster as of the clock read one round trip earlier; use
//! `noeviction` or an `allkeys-*` policy, never `volatile-*`, which evicts
//! the expiring stamps first); a fetch longer than ten minutes is never
//! stored in Redis.
//! `tests/tests/consistency.rs` checks these bounds with three instances
//! and faults injected between them and Redis.
//!
//! Decisions where HTTP leaves room: a client's `Cache-Control: no-cache` or
//! `max-age=0` does not bypass a fresh entry (clients cannot force origin
//! load); `Range`, `If-Match`, `If-Unmodified-Since` and `If-Range` requests
//! pass through; request cookies are not part of the key — a response that
//! depends on them must say so with `Vary: Cookie`, `private` or
//! `Set-Cookie`.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use cache_core::{Cache, CachePolicy, MokaStore, RouteMatch};
//! use http::{Request, Response};
//! use http_body_util::Full;
//!
//! # tokio_test();
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn tokio_test() {
//! let cache = Cache::new(MokaStore::new());
//! let policy = CachePolicy::builder().ttl("5m").build().unwrap();
//! let origin = |_req: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! };
//! let get = || Request::get("/greeting").body(()).unwrap();
//!
//! let first = cache.serve(&policy, &RouteMatch::default(), get(), origin).await.unwrap();
//! assert_eq!(first.headers()["x-cache"], "MISS");
//! let second = cache.serve(&policy, &RouteMatch::default(), get(), origin).await.unwrap();
//! assert_eq!(second.headers()["x-cache"], "HIT");
//! assert_eq!(second.headers()["cache-status"], "cache; hit; ttl=300");
//! # }
//! ```
//!
//! # Feature flags
//!
//! - `moka` (default): the embedded [`MokaStore`].
//! - `redis`: [`RedisStore`], a store shared by every instance, on a Redis
//!   server or a Redis Cluster, behind a circuit breaker; with `moka` too,
//!   `TieredStore`: moka in front of Redis, with invalidations broadcast to
//!   every instance over Redis pub/sub. Both take leases for
//!   [`CachePolicyBuilder::coalesce_across_instances`].
//! - `redis-tls`: `rediss://` URLs (rustls).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod engine;
pub mod error;
pub mod metrics;
mod protocol;
mod rules;
pub mod store;

// The layers, from the bottom: `protocol` (the HTTP vocabulary), `rules`
// (policies, keys, routes: what an app declares), `store` (where entries
// live), `engine` (serving requests, invalidation, typed data, purging).
// Each module keeps its path at the root.
pub use engine::{adapter, data, purge};
pub(crate) use engine::{coalesce, entry, hit_for_miss, invalidate, invalidation_log};
pub(crate) use protocol::{body, method, percent};
pub use protocol::{cache_control, cache_status, conditional};
#[cfg(feature = "config")]
pub use rules::config;
pub(crate) use rules::{hints, path_pattern, route, tags, ttl};
pub use rules::{key, policy};

pub use body::CacheBody;
pub use clock::Clock;
pub use data::DataPolicy;
pub use engine::{Cache, CacheBuilder};
pub use entry::CachedEntry;
pub use error::{BoxError, ConfigError, StoreError};
pub use hints::CacheHints;
pub use invalidate::Invalidator;
pub use path_pattern::PathPattern;
pub use policy::{CacheMode, CachePolicy, CachePolicyBuilder};
pub use purge::{PurgeAuth, Purger};
pub use route::{InvalidationRule, Policies, RouteMatch};
#[cfg(feature = "moka")]
#[cfg_attr(docsrs, doc(cfg(feature = "moka")))]
pub use store::MokaStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::RedisStore;
pub use store::Store;
#[cfg(all(feature = "redis", feature = "moka"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "redis", feature = "moka"))))]
pub use store::TieredStore;
pub use tags::TagTemplate;
pub use ttl::Ttl;

// The crate's own short paths to items whose public home is a module.
pub(crate) use key::CacheKey;
pub(crate) use policy::IntoTtl;
pub(crate) use store::{Lease, LeaseToken, Stamp};
