//! `Ttl` and `TagTemplate` parsing on arbitrary UTF-8 (other inputs are
//! skipped).
//!
//! - Neither parser panics.
//! - A `Ttl` that parses round-trips through `Display`:
//!   `t.to_string().parse() == Ok(t)`.
//! - A `TagTemplate` that parses displays as its source and re-parses to
//!   the same template.
#![no_main]

use cache_core::{TagTemplate, Ttl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ttl) = s.parse::<Ttl>() {
        let shown = ttl.to_string();
        let back = shown.parse::<Ttl>();
        assert!(
            back.as_ref().ok() == Some(&ttl),
            "Ttl {s:?} = {:?} displays as {shown:?}, which parses as {back:?}",
            ttl.as_duration()
        );
    }
    if let Ok(tag) = s.parse::<TagTemplate>() {
        let shown = tag.to_string();
        assert_eq!(shown, s, "TagTemplate does not display as its source");
        assert_eq!(
            shown.parse::<TagTemplate>().ok().as_ref(),
            Some(&tag),
            "TagTemplate does not re-parse"
        );
    }
});
