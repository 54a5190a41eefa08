//! Stores that misbehave, for the failure tests.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use cache_core::{CachedEntry, Store, StoreError, store::codec};

/// A store whose every operation fails, like a backend that is down.
#[derive(Debug, Clone, Default)]
pub struct FailingStore;

fn down() -> StoreError {
    StoreError::backend(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "store is down"))
}

impl Store for FailingStore {
    async fn get(&self, _key: &str) -> Result<Option<Arc<CachedEntry>>, StoreError> {
        Err(down())
    }
    async fn put(&self, _key: &str, _entry: Arc<CachedEntry>, _ttl: Duration) -> Result<(), StoreError> {
        Err(down())
    }
    async fn delete(&self, _key: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn invalidate_tags(&self, _tags: &[String]) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn invalidate_prefix(&self, _prefix: &str) -> Result<u64, StoreError> {
        Err(down())
    }
}

/// A store holding foreign bytes at every key: every read goes through the
/// codec, which must reject them.
#[derive(Debug, Clone, Default)]
pub struct CorruptStore;

impl Store for CorruptStore {
    async fn get(&self, _key: &str) -> Result<Option<Arc<CachedEntry>>, StoreError> {
        let foreign = Bytes::from_static(b"HCE\x01\x00\x00\xc8garbage that is not an entry");
        codec::decode(foreign).map(|e| Some(Arc::new(e))).map_err(StoreError::from)
    }
    async fn put(&self, _key: &str, _entry: Arc<CachedEntry>, _ttl: Duration) -> Result<(), StoreError> {
        Ok(())
    }
    async fn delete(&self, _key: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn invalidate_tags(&self, _tags: &[String]) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn invalidate_prefix(&self, _prefix: &str) -> Result<u64, StoreError> {
        Ok(0)
    }
}
