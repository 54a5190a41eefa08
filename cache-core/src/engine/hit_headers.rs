//! The headers of hits on a hot entry, built once per second rather than
//! once per hit.
//!
//! A hit answers with the stored headers plus `Age`, `Cache-Status`,
//! `X-Cache` and the policy's downstream headers. All of them are the same
//! for every hit on the entry within one second of age (for one cache name
//! and the same downstream headers), so a hot entry keeps the last map it
//! was answered with and later hits clone it: a clone copies the map's
//! buckets and bumps the values' reference counts, where building it hashes
//! every name and formats `Age` and `Cache-Status` again.
//!
//! A map is kept only once a second hit comes within the same second of
//! age: one kept for an entry hit less often would never be used again and
//! would double the entry's memory. An entry that cools down drops its map
//! at its next hit.

use std::{
    any::Any,
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::policy::PolicyInner;

/// What a memoized map was built for: when any of it differs, the map is
/// built again.
pub(crate) struct Stamp<'a> {
    pub(crate) age: u64,
    pub(crate) ttl: i64,
    pub(crate) name: &'a str,
    pub(crate) cache_control: Option<&'a HeaderValue>,
    pub(crate) cdn_cache_control: Option<&'a HeaderValue>,
    pub(crate) tag_headers: &'a [HeaderName],
}

impl<'a> Stamp<'a> {
    pub(crate) fn new(age: u64, ttl: i64, name: &'a str, policy: &'a PolicyInner) -> Self {
        Stamp {
            age,
            ttl,
            name,
            cache_control: policy.downstream_cache_control.as_ref(),
            cdn_cache_control: policy.downstream_cdn_cache_control.as_ref(),
            tag_headers: &policy.tag_headers,
        }
    }

    fn to_owned(&self) -> OwnedStamp {
        OwnedStamp {
            age: self.age,
            ttl: self.ttl,
            name: self.name.into(),
            cache_control: self.cache_control.cloned(),
            cdn_cache_control: self.cdn_cache_control.cloned(),
            tag_headers: self.tag_headers.into(),
        }
    }
}

struct OwnedStamp {
    age: u64,
    ttl: i64,
    name: Box<str>,
    cache_control: Option<HeaderValue>,
    cdn_cache_control: Option<HeaderValue>,
    tag_headers: Box<[HeaderName]>,
}

impl OwnedStamp {
    fn matches(&self, stamp: &Stamp<'_>) -> bool {
        self.age == stamp.age
            && self.ttl == stamp.ttl
            && *self.name == *stamp.name
            && self.cache_control.as_ref() == stamp.cache_control
            && self.cdn_cache_control.as_ref() == stamp.cdn_cache_control
            && *self.tag_headers == *stamp.tag_headers
    }
}

/// The last hit headers of a hot entry. Clones of an entry start without
/// (their headers may be changed); entries compare equal whatever it holds.
#[derive(Default)]
pub(crate) struct HitHeaders {
    memo: RwLock<Option<Arc<Memo>>>,
    /// The age, plus one, at which the last map was built; 0 before any.
    last_built: AtomicU64,
}

/// A memoized map, what it was built for, and an adapter's conversion of
/// it.
pub(crate) struct Memo {
    built_for: OwnedStamp,
    pub(crate) headers: HeaderMap,
    converted: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl HitHeaders {
    /// The headers for `stamp`: the memoized map when it was built for the
    /// same stamp, else `build()` — kept for the next hits when another map
    /// was built at the same age (the entry is hot), else the entry keeps
    /// none.
    pub(crate) fn get_or_build(&self, stamp: &Stamp<'_>, build: impl FnOnce() -> HeaderMap) -> Arc<Memo> {
        if let Ok(memo) = self.memo.read()
            && let Some(memo) = memo.as_ref()
            && memo.built_for.matches(stamp)
        {
            return Arc::clone(memo);
        }
        let memo = Arc::new(Memo {
            built_for: stamp.to_owned(),
            headers: build(),
            converted: OnceLock::new(),
        });
        let age = stamp.age.saturating_add(1);
        let hot = self.last_built.swap(age, Ordering::Relaxed) == age;
        // Another hit may be writing the map: never wait for it.
        if let Ok(mut slot) = self.memo.try_write() {
            *slot = hot.then(|| Arc::clone(&memo));
        }
        memo
    }

    /// Memory the memo can hold: one more map of the entry's headers and
    /// those a hit adds (values are shared with the entry's).
    pub(crate) fn weight(headers: usize) -> usize {
        (headers + super::respond::HIT_HEADERS) * 128 + 64
    }
}

/// The headers a hit answered with, shared by the hits on the same entry
/// within one second of age. From [`Ready::shared_response`].
///
/// An adapter for a framework with header types of its own converts them
/// once per head with [`converted`](HitHead::converted), rather than once
/// per hit.
///
/// [`Ready::shared_response`]: crate::adapter::Ready::shared_response
#[derive(Clone)]
pub struct HitHead(pub(crate) Arc<Memo>);

impl HitHead {
    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }

    /// `convert(headers)`, computed once per head and cloned after: the
    /// first conversion is kept with the head (one type per head; other
    /// types are converted every time).
    pub fn converted<T: Clone + Send + Sync + 'static>(&self, convert: impl FnOnce(&HeaderMap) -> T) -> T {
        if let Some(done) = self.0.converted.get().and_then(|any| any.downcast_ref::<T>()) {
            return done.clone();
        }
        let done = convert(&self.0.headers);
        let _ = self.0.converted.set(Box::new(done.clone()));
        done
    }
}

impl std::fmt::Debug for HitHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HitHead").field(&self.0.headers).finish()
    }
}

impl Clone for HitHeaders {
    fn clone(&self) -> Self {
        HitHeaders::default()
    }
}

impl PartialEq for HitHeaders {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for HitHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HitHeaders")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CachePolicy;

    fn map(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-built", HeaderValue::from_static(value));
        headers
    }

    /// A memo whose map was built twice at the same age, so that it keeps
    /// the second.
    fn hot(stamp: &Stamp<'_>, value: &'static str) -> HitHeaders {
        let memo = HitHeaders::default();
        memo.get_or_build(stamp, || map("cold"));
        memo.get_or_build(stamp, || map(value));
        memo
    }

    #[test]
    fn only_a_hot_entry_keeps_its_map() {
        let plain = CachePolicy::builder().build().unwrap();
        let memo = HitHeaders::default();
        for age in 1..5 {
            let stamp = Stamp::new(age, 60 - age as i64, "cache", plain.inner());
            assert_eq!(memo.get_or_build(&stamp, || map("built")).headers["x-built"], "built");
            assert!(memo.memo.read().unwrap().is_none(), "one hit a second keeps no map (age {age})");
        }
        let stamp = Stamp::new(5, 55, "cache", plain.inner());
        memo.get_or_build(&stamp, || map("first"));
        assert_eq!(memo.get_or_build(&stamp, || map("second")).headers["x-built"], "second");
        assert_eq!(memo.get_or_build(&stamp, || map("third")).headers["x-built"], "second", "hot: kept");
        let later = Stamp::new(9, 51, "cache", plain.inner());
        memo.get_or_build(&later, || map("cooled"));
        assert!(memo.memo.read().unwrap().is_none(), "a cooled entry drops its map at its next hit");
    }

    #[test]
    fn builds_again_when_any_part_of_the_stamp_changes() {
        let plain = CachePolicy::builder().build().unwrap();
        let downstream = CachePolicy::builder()
            .downstream_cache_control("public, max-age=60")
            .build()
            .unwrap();
        let first = Stamp::new(1, 59, "cache", plain.inner());
        let memo = hot(&first, "first");
        assert_eq!(memo.get_or_build(&first, || map("again")).headers["x-built"], "first");
        for (i, stamp) in [
            Stamp::new(2, 59, "cache", plain.inner()),
            Stamp::new(1, 58, "cache", plain.inner()),
            Stamp::new(1, 59, "other", plain.inner()),
            Stamp::new(1, 59, "cache", downstream.inner()),
        ]
        .iter()
        .enumerate()
        {
            let memo = hot(&first, "first");
            assert_eq!(
                memo.get_or_build(stamp, || map("rebuilt")).headers["x-built"],
                "rebuilt",
                "stamp {i}"
            );
        }
    }

    #[test]
    fn a_head_converts_once() {
        let plain = CachePolicy::builder().build().unwrap();
        let stamp = Stamp::new(1, 59, "cache", plain.inner());
        let memo = hot(&stamp, "first");
        let head = HitHead(memo.get_or_build(&stamp, || map("again")));
        let calls = std::cell::Cell::new(0);
        let convert = |h: &HeaderMap| {
            calls.set(calls.get() + 1);
            h.len()
        };
        assert_eq!(head.converted(convert), 1);
        assert_eq!(HitHead(memo.get_or_build(&stamp, || map("again"))).converted(convert), 1);
        assert_eq!(calls.get(), 1, "converted once for the same head");
        assert_eq!(
            head.converted(|h| h.keys().next().map(|n| n.to_string())),
            Some("x-built".to_owned())
        );
    }

    #[test]
    fn clones_start_empty() {
        let plain = CachePolicy::builder().build().unwrap();
        let stamp = Stamp::new(1, 59, "cache", plain.inner());
        let memo = hot(&stamp, "first");
        assert_eq!(memo.get_or_build(&stamp, || map("again")).headers["x-built"], "first");
        assert_eq!(memo.clone().get_or_build(&stamp, || map("rebuilt")).headers["x-built"], "rebuilt");
    }
}
