//! What a purge asks for, its limits, its answer and its errors.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::auth::PURGE_CHALLENGE;
use crate::{BoxError, StoreError};

/// The largest purge request body read, by default: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// The most tags, keys and prefixes one purge request may name, by default.
pub const DEFAULT_MAX_ITEMS: usize = 1000;

/// The JSON body of a purge request: what to drop.
///
/// Every field is optional, but the request must name at least one item,
/// and no item may be empty (an empty prefix would match every key).
/// Unknown fields are rejected, so that a typo (`"tag"`) is a `400`, not a
/// purge that silently drops nothing.
///
/// ```json
/// {"tags": ["product:acme:42"], "keys": ["http:1:..."], "prefixes": ["http:1:"]}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Drop every entry carrying any of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Drop the entries stored at these keys (see [`CacheKey`](crate::key::CacheKey)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Drop every entry whose key starts with one of these prefixes (see
    /// [`KeySpec::prefix`](crate::key::KeySpec::prefix)). May scan the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
}

impl PurgeRequest {
    /// How many tags, keys and prefixes the request names.
    pub fn items(&self) -> usize {
        self.tags.len() + self.keys.len() + self.prefixes.len()
    }

    /// Parses and checks a JSON body against `limits`.
    ///
    /// # Errors
    ///
    /// [`PurgeError::PayloadTooLarge`], [`PurgeError::Json`],
    /// [`PurgeError::Empty`], [`PurgeError::EmptyItem`] or
    /// [`PurgeError::TooManyItems`].
    pub fn from_json(body: &[u8], limits: &PurgeLimits) -> Result<Self, PurgeError> {
        if body.len() > limits.max_body_bytes {
            return Err(PurgeError::PayloadTooLarge {
                limit: limits.max_body_bytes,
            });
        }
        let request: PurgeRequest = serde_json::from_slice(body).map_err(PurgeError::Json)?;
        request.check(limits)?;
        Ok(request)
    }

    fn check(&self, limits: &PurgeLimits) -> Result<(), PurgeError> {
        let count = self.items();
        if count == 0 {
            return Err(PurgeError::Empty);
        }
        if count > limits.max_items {
            return Err(PurgeError::TooManyItems {
                count,
                limit: limits.max_items,
            });
        }
        let fields = [("tags", &self.tags), ("keys", &self.keys), ("prefixes", &self.prefixes)];
        match fields.iter().find(|(_, items)| items.iter().any(String::is_empty)) {
            Some((field, _)) => Err(PurgeError::EmptyItem { field }),
            None => Ok(()),
        }
    }
}

/// Bounds on one purge request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeLimits {
    /// The largest body read, in bytes; a larger one gets `413` and is not
    /// read past the limit. Default: [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// The most tags, keys and prefixes, together, one request may name; more
    /// gets `400`. Default: [`DEFAULT_MAX_ITEMS`].
    pub max_items: usize,
}

impl Default for PurgeLimits {
    fn default() -> Self {
        PurgeLimits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_items: DEFAULT_MAX_ITEMS,
        }
    }
}

/// What a purge did: the JSON body of a `200`, `{"dropped": n}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeOutcome {
    /// How many entries the store reports dropped: for tags and prefixes
    /// its counts, for keys one per key that held an entry. An entry
    /// matched by two items is counted once, by the first that drops it.
    pub dropped: u64,
}

impl PurgeOutcome {
    /// The `200 OK` answer.
    pub fn to_response(&self) -> Response<Bytes> {
        let body = serde_json::to_vec(self).expect("a struct of one integer serializes");
        json_response(StatusCode::OK, body)
    }
}

/// Why a purge request was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PurgeError {
    /// No `Authorization: Bearer` header, or not the token: `401`.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The body is larger than the limit: `413`.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is not the JSON of a [`PurgeRequest`]: `400`.
    #[error("invalid JSON body: {0}")]
    Json(#[source] serde_json::Error),
    /// The request names no tag, key or prefix: `400`.
    #[error("nothing to purge: give at least one of `tags`, `keys` or `prefixes`")]
    Empty,
    /// An item is the empty string: `400`.
    #[error("`{field}` holds an empty string")]
    EmptyItem {
        /// The field holding it.
        field: &'static str,
    },
    /// The request names more items than the limit: `400`.
    #[error("{count} items to purge, more than the limit of {limit}")]
    TooManyItems {
        /// How many the request names.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The body could not be read (the client went away): `400`.
    #[error("the request body could not be read")]
    Body(#[source] BoxError),
    /// A `PURGE` of a URL that no cache policy covers: `404`.
    #[error("no cache policy covers this URL: nothing is cached here")]
    NoPolicy,
    /// The store failed; some entries may have been dropped: `503`.
    #[error("the cache store failed; the purge may be incomplete, retry it")]
    Store(#[from] StoreError),
}

impl PurgeError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            PurgeError::Unauthorized => StatusCode::UNAUTHORIZED,
            PurgeError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            PurgeError::NoPolicy => StatusCode::NOT_FOUND,
            PurgeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            PurgeError::Json(_)
            | PurgeError::Empty
            | PurgeError::EmptyItem { .. }
            | PurgeError::TooManyItems { .. }
            | PurgeError::Body(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The answer: [`status`](Self::status) and `{"error": "..."}`, with
    /// `WWW-Authenticate: Bearer` on a `401`, and `Connection: close` on a
    /// `413`: the rest of the body is left unread, so the connection cannot
    /// carry another request (RFC 9110 §15.5.14).
    pub fn to_response(&self) -> Response<Bytes> {
        let body = serde_json::to_vec(&ErrorBody { error: self.to_string() }).expect("a struct of one string serializes");
        let mut response = json_response(self.status(), body);
        match self {
            PurgeError::Unauthorized => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, PURGE_CHALLENGE);
            }
            PurgeError::PayloadTooLarge { .. } => {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

/// The answer to a purge: `200 {"dropped": n}`, or the error's.
pub fn purge_response(result: &Result<PurgeOutcome, PurgeError>) -> Response<Bytes> {
    match result {
        Ok(outcome) => outcome.to_response(),
        Err(error) => error.to_response(),
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<PurgeRequest, PurgeError> {
        PurgeRequest::from_json(body.as_bytes(), &PurgeLimits::default())
    }

    #[test]
    fn parses_any_of_the_three_lists() {
        let request = parse(r#"{"tags": ["a", "b"], "prefixes": ["p:"]}"#).unwrap();
        assert_eq!((request.tags.len(), request.keys.len(), request.prefixes.len()), (2, 0, 1));
        assert_eq!(parse(r#"{"keys": ["k"]}"#).unwrap().items(), 1);
    }

    #[test]
    fn refuses_what_it_cannot_carry_out() {
        let status = |body: &str| parse(body).unwrap_err().status();
        assert_eq!(status("{}"), StatusCode::BAD_REQUEST);
        assert_eq!(status(r#"{"tags": []}"#), StatusCode::BAD_REQUEST);
        assert_eq!(status(r#"{"tag": ["a"]}"#), StatusCode::BAD_REQUEST);
        assert_eq!(status(r#"{"prefixes": [""]}"#), StatusCode::BAD_REQUEST);
        assert_eq!(status(r#"{"tags": "a"}"#), StatusCode::BAD_REQUEST);
        assert_eq!(status("not json"), StatusCode::BAD_REQUEST);
        let limits = PurgeLimits {
            max_body_bytes: 16,
            max_items: 2,
        };
        let too_many = PurgeRequest::from_json(
            br#"{"keys":["a","b","c"]}"#,
            &PurgeLimits {
                max_body_bytes: 64,
                ..limits
            },
        );
        assert!(matches!(too_many, Err(PurgeError::TooManyItems { count: 3, limit: 2 })));
        let too_large = PurgeRequest::from_json(br#"{"tags": ["a-long-tag"]}"#, &limits);
        assert!(matches!(too_large, Err(PurgeError::PayloadTooLarge { limit: 16 })));
    }

    #[test]
    fn answers_in_json() {
        let ok = PurgeOutcome { dropped: 3 }.to_response();
        assert_eq!((ok.status(), ok.body().as_ref()), (StatusCode::OK, &br#"{"dropped":3}"#[..]));
        assert_eq!(ok.headers()[header::CACHE_CONTROL], "no-store");
        let unauthorized = PurgeError::Unauthorized.to_response();
        assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(unauthorized.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"purge\"");
        assert_eq!(unauthorized.body().as_ref(), br#"{"error":"a valid bearer token is required"}"#);
        assert_eq!(PurgeError::Empty.to_response().headers()[header::CONTENT_TYPE], "application/json");
    }
}
