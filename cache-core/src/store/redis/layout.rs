//! Names of the Redis keys a store uses.
//!
//! ```text
//! {prefix}{h}e:{key}      the encoded entry
//! {prefix}{h}o:{key}      the set of the entry's tags
//! {prefix}{h}k:{key}      the later of the key's last invalidation stamp
//!                         and the stored entry's fetch stamp
//! {prefix}{h}l:{key}      a cross-instance lease on the key
//! {prefix}{g}t:{tag}      the keys stored with the tag, scored by expiry
//! {prefix}{g}s:{tag}      the tag's last invalidation stamp
//! {prefix}{g}x:{tag}:{n}  the keys of an invalidated tag, being dropped
//! {prefix}{clock}         the clock of invalidations
//! {prefix}{clock}prefixes recent prefix invalidations, scored by stamp
//! {prefix}invalidations   the channel invalidations are published on
//! ```
//!
//! `{h}` is eight hex digits of a hash of the key in braces, `{g}` the same
//! of the tag: a Redis Cluster hash tag that puts the names of one cache key
//! (or of one tag) on one slot, so that one script can check and write
//! them, and spreads keys and tags over every slot. The key or tag follows
//! in full, so names stay injective whatever bytes they hold. The clock and
//! the prefix notes share the slot of `{clock}`. A prefix holds no braces,
//! which would move every name to the slot they name.

use std::fmt::Write as _;

pub(super) struct Layout {
    prefix: String,
}

/// `{` + 8 hex digits + `}`
const SLOT_TAG_LEN: usize = 10;

impl Layout {
    pub(super) fn new(prefix: String) -> Self {
        Layout { prefix }
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    fn keyed(&self, kind: char, key: &str) -> String {
        let mut out = String::with_capacity(self.prefix.len() + SLOT_TAG_LEN + 2 + key.len());
        out.push_str(&self.prefix);
        let _ = write!(out, "{{{:08x}}}", fnv1a(key.as_bytes()));
        out.push(kind);
        out.push(':');
        out.push_str(key);
        out
    }

    pub(super) fn entry(&self, key: &str) -> String {
        self.keyed('e', key)
    }

    pub(super) fn own(&self, key: &str) -> String {
        self.keyed('o', key)
    }

    pub(super) fn key_stamp(&self, key: &str) -> String {
        self.keyed('k', key)
    }

    pub(super) fn lease(&self, key: &str) -> String {
        self.keyed('l', key)
    }

    pub(super) fn tag(&self, tag: &str) -> String {
        self.keyed('t', tag)
    }

    pub(super) fn tag_stamp(&self, tag: &str) -> String {
        self.keyed('s', tag)
    }

    /// A fresh name for the keys of an invalidated tag, on the tag's slot.
    pub(super) fn taken_tag(&self, tag: &str, nonce: u64) -> String {
        let mut name = self.keyed('x', tag);
        let _ = write!(name, ":{nonce:016x}");
        name
    }

    pub(super) fn clock(&self) -> String {
        format!("{}{{clock}}", self.prefix)
    }

    /// On the clock's slot.
    pub(super) fn prefixes(&self) -> String {
        format!("{}{{clock}}prefixes", self.prefix)
    }

    /// An invocation of `PREFIX_CHECK` (the stamp and key to add).
    pub(super) fn prefix_check<'a>(&self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.key(self.clock());
        invocation.key(self.prefixes());
        invocation
    }

    /// An invocation of a clock script (`CLOCK_READ`, `CLOCK_TICK`): the
    /// clock, the prefix notes, and how long notes are kept.
    pub(super) fn clock_script<'a>(&self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.key(self.clock());
        invocation.key(self.prefixes()).arg(super::ttl_ms(super::FETCH_WINDOW));
        invocation
    }

    pub(super) fn channel(&self) -> String {
        format!("{}invalidations", self.prefix)
    }

    /// The cache key an entry's name holds.
    pub(super) fn key_of_entry<'a>(&self, name: &'a str) -> Option<&'a str> {
        let rest = name.strip_prefix(self.prefix.as_str())?;
        let rest = rest.get(SLOT_TAG_LEN..)?;
        rest.strip_prefix("e:")
    }

    /// A `SCAN MATCH` pattern for the entries whose key starts with `prefix`.
    pub(super) fn scan_pattern(&self, prefix: &str) -> String {
        format!("{}{{????????}}e:{}*", glob_escape(&self.prefix), glob_escape(prefix))
    }
}

/// 32-bit FNV-1a: stable across processes and versions, unlike the
/// standard library's hashers.
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// `s` with Redis glob characters escaped, for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\d"), "a\\*b\\?\\[c\\]\\\\d");
        assert_eq!(glob_escape("http:1:=acme:/p"), "http:1:=acme:/p");
    }

    #[test]
    fn the_keys_of_one_cache_key_share_a_hash_tag() {
        let layout = Layout::new("app:".into());
        let entry = layout.entry("http:1:/p{x}");
        assert_eq!(entry, format!("app:{{{:08x}}}e:http:1:/p{{x}}", fnv1a(b"http:1:/p{x}")));
        let tag = |name: &str| name[name.find('{').unwrap()..=name.find('}').unwrap()].to_owned();
        assert_eq!(tag(&entry), tag(&layout.own("http:1:/p{x}")));
        assert_eq!(tag(&entry), tag(&layout.key_stamp("http:1:/p{x}")));
        assert_eq!(tag(&layout.tag("t{1}")), tag(&layout.tag_stamp("t{1}")));
        assert_eq!(tag(&layout.tag("t{1}")), tag(&layout.taken_tag("t{1}", 7)));
        assert_eq!(tag(&entry), tag(&layout.lease("http:1:/p{x}")));
        assert_eq!(layout.key_of_entry(&entry), Some("http:1:/p{x}"));
        assert_eq!(layout.key_of_entry("app:t:x"), None);
        assert_eq!(layout.key_of_entry(&layout.tag("http:1:/p{x}")), None);
        assert_eq!(layout.key_of_entry("other:{12345678}e:k"), None);
    }

    #[test]
    fn fnv1a_is_the_reference_function() {
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(b"foobar"), 0xbf9c_f968);
    }
}
