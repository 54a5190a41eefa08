//! Durations written the way people write them in TTL tables: `90s`, `10m`, `1h`, `7d`.

use std::{fmt, str::FromStr, time::Duration};

use crate::error::ParseTtlError;

/// A cache duration: a freshness lifetime, a stale window or a jitter.
///
/// Converts from [`Duration`] and parses from the short human forms used in
/// TTL tables: a whole number followed by a unit — `ms`, `s`, `m`, `h` or `d`
/// — optionally repeated (`1h30m`). `0` alone is accepted.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use cache_core::Ttl;
///
/// assert_eq!("90s".parse::<Ttl>().unwrap(), Ttl::from(Duration::from_secs(90)));
/// assert_eq!("1h30m".parse::<Ttl>().unwrap().as_duration(), Duration::from_secs(5400));
/// assert!("ten minutes".parse::<Ttl>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ttl(Duration);

impl Ttl {
    /// A zero duration.
    pub const ZERO: Ttl = Ttl(Duration::ZERO);

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Ttl(Duration::from_secs(secs))
    }

    /// The duration this value stands for.
    pub const fn as_duration(self) -> Duration {
        self.0
    }
}

impl From<Duration> for Ttl {
    fn from(d: Duration) -> Self {
        Ttl(d)
    }
}

impl From<Ttl> for Duration {
    fn from(t: Ttl) -> Self {
        t.0
    }
}

/// Reads a duration as [`FromStr`] does: `"90s"`, `"10m"`, `"1h30m"`, in
/// any serde format (TOML, YAML, JSON, environment variables through
/// figment or config-rs).
impl<'de> serde::Deserialize<'de> for Ttl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Ttl;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\", \"10m\", \"1h\" or \"7d\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Ttl, E> {
                text.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

impl FromStr for Ttl {
    type Err = ParseTtlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseTtlError { input: s.to_owned() };
        let text = s.trim();
        if text == "0" {
            return Ok(Ttl::ZERO);
        }
        if text.is_empty() {
            return Err(err());
        }
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let unit_len = rest[digits..].bytes().take_while(u8::is_ascii_alphabetic).count();
            if digits == 0 || unit_len == 0 {
                return Err(err());
            }
            let value: u128 = rest[..digits].parse().map_err(|_| err())?;
            let part = unit_duration(&rest[digits..digits + unit_len], value).ok_or_else(err)?;
            total = total.checked_add(part).ok_or_else(err)?;
            rest = &rest[digits + unit_len..];
        }
        Ok(Ttl(total))
    }
}

fn unit_duration(unit: &str, value: u128) -> Option<Duration> {
    let ms_per_unit: u128 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    let ms = value.checked_mul(ms_per_unit)?;
    let secs = u64::try_from(ms / 1000).ok()?;
    let millis = u32::try_from(ms % 1000).ok()?;
    Some(Duration::new(secs, millis * 1_000_000))
}

impl fmt::Display for Ttl {
    /// Writes the shortest exact form: `90s`, `10m`, `1h`, `1500ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos().is_multiple_of(1_000_000) && d.subsec_millis() != 0 {
            return write!(f, "{}ms", d.as_millis());
        }
        let secs = d.as_secs();
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if secs != 0 && secs.is_multiple_of(size) {
                return write!(f, "{}{unit}", secs / size);
            }
        }
        write!(f, "{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        let cases = [
            ("90s", 90_000),
            ("10m", 600_000),
            ("1h", 3_600_000),
            ("7d", 604_800_000),
            ("250ms", 250),
            ("1h30m", 5_400_000),
            ("0", 0),
        ];
        for (text, ms) in cases {
            let ttl: Ttl = text.parse().unwrap();
            assert_eq!(ttl.as_duration(), Duration::from_millis(ms), "{text}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        for text in ["", "s", "10", "10x", "-5s", "1.5h", "99999999999999999999999d", "1h 30m"] {
            assert!(text.parse::<Ttl>().is_err(), "{text} should not parse");
        }
    }

    #[test]
    fn displays_shortest_form() {
        assert_eq!(Ttl::from_secs(90).to_string(), "90s");
        assert_eq!(Ttl::from_secs(600).to_string(), "10m");
        assert_eq!(Ttl::from_secs(7 * 86_400).to_string(), "7d");
        assert_eq!(Ttl::from(Duration::from_millis(1500)).to_string(), "1500ms");
    }

    #[test]
    fn huge_durations_round_trip() {
        // Found by fuzzing: more milliseconds than a u64 holds.
        for text in ["213503982335d1ms", "18446744073709552s1ms"] {
            let ttl: Ttl = text.parse().unwrap();
            assert_eq!(ttl.to_string().parse::<Ttl>().unwrap(), ttl, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(secs in 0u64..10_000_000) {
            let ttl = Ttl::from_secs(secs);
            proptest::prop_assert_eq!(ttl.to_string().parse::<Ttl>().unwrap(), ttl);
        }

        #[test]
        fn never_panics(s in ".{0,24}") {
            let _ = s.parse::<Ttl>();
        }
    }
}
