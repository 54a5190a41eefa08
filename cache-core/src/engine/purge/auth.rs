//! [`PurgeAuth`]: the bearer token a purge request must carry.

use std::{fmt, str::FromStr};

use http::{HeaderMap, HeaderValue, header};

use crate::ConfigError;

/// The `WWW-Authenticate` challenge of a `401` from the purge API.
pub const PURGE_CHALLENGE: HeaderValue = HeaderValue::from_static("Bearer realm=\"purge\"");

/// The bearer token that authorizes purge requests.
///
/// Only a BLAKE3 digest of the token is kept, and a presented token is
/// compared with it through its digest in constant time: neither the
/// position of the first differing byte nor the token's length shows in the
/// time a check takes. `Debug` prints `<redacted>`; the token is never
/// logged. Two values are equal when they hold the same token (compared in
/// constant time too).
///
/// # Example
///
/// ```
/// use cache_core::purge::PurgeAuth;
/// use http::HeaderMap;
///
/// let auth = PurgeAuth::bearer("s3cret-token").unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", "Bearer s3cret-token".parse().unwrap());
/// assert!(auth.verify(&headers));
/// headers.insert("authorization", "Bearer guess".parse().unwrap());
/// assert!(!auth.verify(&headers));
/// assert_eq!(format!("{auth:?}"), "PurgeAuth(<redacted>)");
/// ```
#[derive(Clone)]
pub struct PurgeAuth {
    digest: [u8; 32],
}

impl PurgeAuth {
    /// Purge requests must send `Authorization: Bearer <token>`.
    ///
    /// # Errors
    ///
    /// A token that is empty or holds anything but visible ASCII (it could
    /// not travel in a header as it is).
    pub fn bearer(token: impl AsRef<str>) -> Result<Self, ConfigError> {
        let token = token.as_ref();
        if token.is_empty() {
            return Err(ConfigError::invalid("purge token", "the token is empty"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::invalid(
                "purge token",
                "the token must be visible ASCII, without spaces",
            ));
        }
        Ok(PurgeAuth { digest: digest(token) })
    }

    /// Whether `headers` carry exactly one `Authorization: Bearer` with the
    /// token (the scheme is case-insensitive).
    pub fn verify(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        bearer_token(value).is_some_and(|token| self.verify_token(token))
    }

    /// Whether `token` is the token, compared in constant time.
    pub fn verify_token(&self, token: &[u8]) -> bool {
        constant_time_eq(&self.digest, &digest(token))
    }
}

impl FromStr for PurgeAuth {
    type Err = ConfigError;

    /// [`PurgeAuth::bearer`], for command lines and config files.
    fn from_str(token: &str) -> Result<Self, Self::Err> {
        PurgeAuth::bearer(token)
    }
}

impl fmt::Debug for PurgeAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PurgeAuth(<redacted>)")
    }
}

impl PartialEq for PurgeAuth {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.digest, &other.digest)
    }
}

impl Eq for PurgeAuth {}

fn digest(token: impl AsRef<[u8]>) -> [u8; 32] {
    *blake3::hash(token.as_ref()).as_bytes()
}

/// The token of a `Bearer <token>` credential (RFC 6750 §2.1).
fn bearer_token(value: &HeaderValue) -> Option<&[u8]> {
    let value = value.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Compares two digests without an early exit: the time taken does not
/// depend on where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the compiler from turning the fold back into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn accepts_the_token_only() {
        let auth = PurgeAuth::bearer("t0ken").unwrap();
        for good in ["Bearer t0ken", "bearer t0ken", "BEARER   t0ken  "] {
            assert!(auth.verify(&headers(&[good])), "{good}");
        }
        for bad in ["Bearer t0ke", "Bearer t0ken2", "Basic t0ken", "Bearert0ken", "Bearer ", "t0ken", ""] {
            assert!(!auth.verify(&headers(&[bad])), "{bad}");
        }
        assert!(!auth.verify(&HeaderMap::new()));
        assert!(
            !auth.verify(&headers(&["Bearer t0ken", "Bearer t0ken"])),
            "a repeated header is refused"
        );
    }

    #[test]
    fn rejects_tokens_that_cannot_travel_in_a_header() {
        assert!(PurgeAuth::bearer("").is_err());
        assert!(PurgeAuth::bearer("two words").is_err());
        assert!(PurgeAuth::bearer("caf\u{e9}").is_err());
        assert!("ok-token".parse::<PurgeAuth>().is_ok());
    }

    #[test]
    fn compares_by_token_and_never_shows_it() {
        let auth = PurgeAuth::bearer("hunter2").unwrap();
        assert_eq!(auth, PurgeAuth::bearer("hunter2").unwrap());
        assert_ne!(auth, PurgeAuth::bearer("hunter3").unwrap());
        assert!(!format!("{auth:?}").contains("hunter2"));
        assert!(constant_time_eq(&[7; 32], &[7; 32]));
        let mut other = [7; 32];
        other[31] = 8;
        assert!(!constant_time_eq(&[7; 32], &other));
    }
}
