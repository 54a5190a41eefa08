//! Invalidations as published to the other instances' L1s.

/// An invalidation as published:
/// `instance u64 | kind u8 | items: (u32 len, bytes)*`, big-endian.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message<'a> {
    Key(&'a str),
    Tags(Vec<&'a str>),
    Prefix(&'a str),
    All,
}

impl<'a> Message<'a> {
    pub(crate) fn encode(&self, instance: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&instance.to_be_bytes());
        let item = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        match self {
            Message::Key(key) => {
                out.push(b'k');
                item(&mut out, key);
            }
            Message::Tags(tags) => {
                out.push(b't');
                for tag in tags {
                    item(&mut out, tag);
                }
            }
            Message::Prefix(prefix) => {
                out.push(b'p');
                item(&mut out, prefix);
            }
            Message::All => out.push(b'*'),
        }
        out
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Option<(u64, Message<'a>)> {
        let instance = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let kind = *bytes.get(8)?;
        let mut rest = &bytes[9..];
        let mut items = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let item = rest.get(4..4usize.checked_add(len)?)?;
            items.push(std::str::from_utf8(item).ok()?);
            rest = &rest[4 + len..];
        }
        let message = match (kind, items.as_slice()) {
            (b'k', [key]) => Message::Key(key),
            (b't', _) => Message::Tags(items),
            (b'p', [prefix]) => Message::Prefix(prefix),
            (b'*', []) => Message::All,
            _ => return None,
        };
        Some((instance, message))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn messages_round_trip() {
        for message in [
            Message::Key("http:1:/p"),
            Message::Tags(vec!["a", "", "b\0c"]),
            Message::Tags(vec![]),
            Message::Prefix(""),
            Message::All,
        ] {
            let bytes = message.encode(42);
            assert_eq!(Message::decode(&bytes), Some((42, message)));
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Message::decode(&bytes);
        }

        #[test]
        fn tags_round_trip(tags in proptest::collection::vec(".*", 0..5), instance in any::<u64>()) {
            let message = Message::Tags(tags.iter().map(String::as_str).collect());
            let bytes = message.encode(instance);
            prop_assert_eq!(Message::decode(&bytes), Some((instance, message)));
        }
    }
}
