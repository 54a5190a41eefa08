//! Response headers as an entry keeps them.

use std::fmt;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The headers of a stored response, in as little memory as they allow:
/// the names in one exact-size slice, each with the end of its value in one
/// buffer that holds every value.
///
/// A [`HeaderMap`] spends about a hundred bytes per header on its buckets
/// and index; this spends the name, four bytes and the value's own bytes.
/// Lookups scan the names (a response has a dozen or so); values come out
/// as [`HeaderValue`]s sharing the buffer, without copying.
#[derive(Clone, Default)]
pub struct StoredHeaders {
    fields: Box<[Field]>,
    values: Bytes,
}

#[derive(Clone)]
struct Field {
    name: HeaderName,
    /// Where the value ends in `values`; it starts where the previous one
    /// ends.
    end: u32,
    sensitive: bool,
}

impl StoredHeaders {
    /// The headers of `map`, in its order (repeated names keep their values
    /// in order). Values past 4 GiB in all are not kept.
    pub fn from_map(map: &HeaderMap) -> Self {
        let len: usize = map.values().map(HeaderValue::len).sum();
        let mut values = BytesMut::with_capacity(len);
        let mut fields = Vec::with_capacity(map.len());
        for (name, value) in map {
            values.extend_from_slice(value.as_bytes());
            let Ok(end) = u32::try_from(values.len()) else { break };
            fields.push(Field {
                name: name.clone(),
                end,
                sensitive: value.is_sensitive(),
            });
        }
        StoredHeaders {
            fields: fields.into_boxed_slice(),
            values: values.freeze(),
        }
    }

    /// The headers as a map.
    pub fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.fields.len());
        for (name, value) in self.iter() {
            map.append(name.clone(), value);
        }
        map
    }

    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, HeaderValue)> + '_ {
        (0..self.fields.len()).map(|i| (&self.fields[i].name, self.value(i)))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<HeaderValue> {
        self.fields.iter().position(|f| f.name == *name).map(|i| self.value(i))
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = HeaderValue> + 'a {
        (0..self.fields.len())
            .filter(move |&i| self.fields[i].name == *name)
            .map(|i| self.value(i))
    }

    /// Whether `name` is present.
    pub fn contains_key(&self, name: &HeaderName) -> bool {
        self.fields.iter().any(|f| f.name == *name)
    }

    /// How many values there are (a repeated name counts each).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there is no header.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Memory held, in bytes, beyond the struct itself (a name that is not
    /// a standard header's counts as if it owned its bytes).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.fields.len() * std::mem::size_of::<Field>()
            + self.fields.iter().map(|f| f.name.as_str().len()).sum::<usize>()
            + self.values.len()
    }

    fn value(&self, i: usize) -> HeaderValue {
        let start = if i == 0 { 0 } else { self.fields[i - 1].end as usize };
        let bytes = self.values.slice(start..self.fields[i].end as usize);
        // The bytes were a valid value when stored: the fallback never runs.
        let mut value = HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| HeaderValue::from_static(""));
        value.set_sensitive(self.fields[i].sensitive);
        value
    }
}

impl From<&HeaderMap> for StoredHeaders {
    fn from(map: &HeaderMap) -> Self {
        StoredHeaders::from_map(map)
    }
}

impl From<HeaderMap> for StoredHeaders {
    fn from(map: HeaderMap) -> Self {
        StoredHeaders::from_map(&map)
    }
}

impl PartialEq for StoredHeaders {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((a, va), (b, vb))| a == b && va == vb && va.is_sensitive() == vb.is_sensitive())
    }
}

impl Eq for StoredHeaders {}

impl fmt::Debug for StoredHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    fn sample() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static(""));
        headers.append(
            HeaderName::from_static("x-custom"),
            HeaderValue::from_bytes(b"\xff obs-text").unwrap(),
        );
        let mut secret = HeaderValue::from_static("Bearer x");
        secret.set_sensitive(true);
        headers.append(header::AUTHORIZATION, secret);
        headers
    }

    #[test]
    fn keeps_every_value_in_order() {
        let map = sample();
        let stored = StoredHeaders::from_map(&map);
        assert_eq!(stored.to_map(), map);
        let pairs = |it: Vec<(HeaderName, HeaderValue)>| it.into_iter().map(|(n, v)| (n, v.clone(), v.is_sensitive())).collect::<Vec<_>>();
        assert_eq!(
            pairs(stored.iter().map(|(n, v)| (n.clone(), v)).collect()),
            pairs(map.iter().map(|(n, v)| (n.clone(), v.clone())).collect())
        );
        assert_eq!(stored.len(), 5);
        assert_eq!(stored.get(&header::SET_COOKIE).unwrap(), "a=1");
        assert_eq!(stored.get_all(&header::SET_COOKIE).collect::<Vec<_>>(), ["a=1", ""]);
        assert!(stored.get(&header::AUTHORIZATION).unwrap().is_sensitive());
        assert!(stored.contains_key(&HeaderName::from_static("x-custom")));
        assert!(!stored.contains_key(&header::ETAG) && stored.get(&header::ETAG).is_none());
        assert!(StoredHeaders::from_map(&HeaderMap::new()).is_empty());
        assert_eq!(StoredHeaders::from_map(&map), stored);
    }

    proptest::proptest! {
        #[test]
        fn reads_back_any_map(headers in proptest::collection::vec(("[a-c]{1,2}", proptest::collection::vec(32u8..127, 0..8)), 0..10)) {
            let mut map = HeaderMap::new();
            for (name, value) in &headers {
                map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_bytes(value).unwrap());
            }
            let stored = StoredHeaders::from_map(&map);
            proptest::prop_assert_eq!(stored.to_map(), map.clone());
            let names: Vec<HeaderName> = map.keys().cloned().collect();
            for name in &names {
                let want: Vec<_> = map.get_all(name).iter().cloned().collect();
                proptest::prop_assert_eq!(stored.get_all(name).collect::<Vec<_>>(), want);
                proptest::prop_assert_eq!(stored.get(name), map.get(name).cloned());
            }
        }
    }
}
