//! Error types.

use std::fmt;

/// A boxed error kept as the source of a wrapping error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error from a [`Store`](crate::Store).
///
/// The engine never fails a request because of a store error: it logs the
/// error and serves from the origin. The error is returned to code that calls
/// the store or an [`Invalidator`](crate::Invalidator) directly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer in time.
    #[error("store operation `{operation}` timed out")]
    Timeout {
        /// The operation that timed out.
        operation: &'static str,
    },
    /// The store is not connected yet (it connects in the background).
    #[error("store not connected yet")]
    Unavailable,
    /// The store's backend failed repeatedly and its circuit breaker is
    /// skipping it for a while.
    #[error("store skipped: circuit breaker open")]
    CircuitOpen,
    /// The entry was fetched before an invalidation that concerns it (see
    /// [`Stamp`](crate::store::Stamp)), and was not stored.
    #[error("entry not stored: an invalidation overlapped its fetch")]
    Superseded,
    /// The store holds invalidations it could not apply while its backend
    /// was unreachable, and skips its backend until they are applied.
    #[error("store skipped: replaying invalidations made while it was unreachable")]
    Replaying,
    /// The store's backend failed (connection, protocol, server error).
    #[error("store backend failed")]
    Backend(#[source] BoxError),
    /// Bytes read from the store are not a valid entry.
    #[error("stored entry could not be decoded")]
    Codec(#[from] CodecError),
}

impl StoreError {
    /// Wraps any backend error.
    pub fn backend(err: impl Into<BoxError>) -> Self {
        StoreError::Backend(err.into())
    }
}

/// Bytes that are not a valid encoded [`CachedEntry`](crate::CachedEntry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bytes do not start with the entry magic: not an entry of this library.
    #[error("not a cache entry (bad magic)")]
    BadMagic,
    /// The entry was written by an incompatible codec version.
    #[error("unsupported entry codec version {0}")]
    UnsupportedVersion(u8),
    /// The input ended in the middle of a field.
    #[error("entry truncated while reading {0}")]
    Truncated(&'static str),
    /// A field holds a value that cannot be valid.
    #[error("invalid entry field {0}")]
    Invalid(&'static str),
    /// Bytes were left over after the last field.
    #[error("{0} trailing bytes after entry")]
    TrailingBytes(usize),
    /// Encoding: a field is longer than the layout can describe (a body of
    /// 4 GiB or more, for instance). Policies bound bodies well below it
    /// ([`MAX_BODY_SIZE_LIMIT`](crate::policy::MAX_BODY_SIZE_LIMIT)).
    #[error("entry field {0} too large to encode")]
    TooLarge(&'static str),
}

/// A duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: expected a whole number and a unit (ms, s, m, h, d), like `90s`, `10m`, `1h` or `7d`")]
pub struct ParseTtlError {
    pub(crate) input: String,
}

/// A policy or cache configuration rejected at `build()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field holds an invalid value.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The configuration field.
        field: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
    /// A tag template could not be parsed.
    #[error("invalid tag template `{template}`: {reason}")]
    TagTemplate {
        /// The template as written.
        template: String,
        /// Why it is rejected.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: &'static str, reason: impl fmt::Display) -> Self {
        ConfigError::Invalid {
            field,
            reason: reason.to_string(),
        }
    }
}
