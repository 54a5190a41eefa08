//! Building a [`RedisStore`]: URLs, timeouts, the breaker, TLS.

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError, RwLock, atomic::AtomicBool},
    time::Duration,
};

use redis::{Client, RedisError, aio::ConnectionManagerConfig, cluster::ClusterClient};

use super::{
    DEFAULT_CONNECTION_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT, Inner, RedisStore,
    breaker::{Breaker, DEFAULT_COOL_DOWN, DEFAULT_FAILURE_THRESHOLD},
    conn::Conn,
    layout::Layout,
    scripts::Scripts,
};
use crate::{error::StoreError, store::codec};

/// Builds a [`RedisStore`].
#[derive(Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    urls: Vec<String>,
    cluster: bool,
    prefix: String,
    response_timeout: Duration,
    connection_timeout: Duration,
    failure_threshold: u32,
    cool_down: Duration,
    compress_above: Option<usize>,
    #[cfg(feature = "redis-tls")]
    root_certificate: Option<Vec<u8>>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    pub(super) fn new(urls: Vec<String>, cluster: bool) -> Self {
        RedisStoreBuilder {
            urls,
            cluster,
            prefix: "cache:".to_owned(),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            cool_down: DEFAULT_COOL_DOWN,
            compress_above: Some(codec::DEFAULT_COMPRESS_ABOVE),
            #[cfg(feature = "redis-tls")]
            root_certificate: None,
        }
    }

    /// A prefix for every key of this application, so that several share a
    /// server. Default: `cache:`. It must not hold `{` or `}`, which would
    /// put every key on one Redis Cluster slot (connecting fails).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a command may take. Default: [`DEFAULT_RESPONSE_TIMEOUT`].
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long connecting may take. Default: [`DEFAULT_CONNECTION_TIMEOUT`].
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Consecutive failures that open the circuit breaker. Default:
    /// [`DEFAULT_FAILURE_THRESHOLD`].
    pub fn failure_threshold(mut self, failures: u32) -> Self {
        self.failure_threshold = failures;
        self
    }

    /// How long an open circuit breaker skips Redis before probing it.
    /// Default: [`DEFAULT_COOL_DOWN`].
    pub fn cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// Compresses bodies of at least `bytes` (when that makes them smaller);
    /// `None` never compresses. Default:
    /// [`codec::DEFAULT_COMPRESS_ABOVE`]. Readers decode either form.
    pub fn compress_above(mut self, bytes: Option<usize>) -> Self {
        self.compress_above = bytes;
        self
    }

    /// Trusts the CA certificate in `pem` (in addition to the system's) for
    /// `rediss://` connections.
    #[cfg(feature = "redis-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tls")))]
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificate = Some(pem.into());
        self
    }

    /// Connects, waiting for the first connection.
    ///
    /// # Errors
    ///
    /// An invalid URL, or a server that cannot be reached in time.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let store = self.parts()?;
        let conn = store.inner.connector.connect().await.map_err(StoreError::backend)?;
        *store.inner.conn.write().unwrap_or_else(PoisonError::into_inner) = Some(conn);
        Ok(store)
    }

    /// Returns at once and connects in the background, retrying until the
    /// server answers. Until then every operation fails with
    /// [`StoreError::Unavailable`], which the engine treats like any store
    /// failure: requests are served by the origin.
    ///
    /// # Errors
    ///
    /// An invalid URL, or no tokio runtime to connect from.
    pub fn connect_lazy(self) -> Result<RedisStore, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(StoreError::backend)?;
        let store = self.parts()?;
        let connector = store.inner.connector.clone();
        let inner = Arc::downgrade(&store.inner);
        runtime.spawn(async move {
            let mut delay = Duration::from_millis(50);
            loop {
                let result = connector.connect().await;
                let Some(inner) = inner.upgrade() else { return };
                match result {
                    Ok(conn) => {
                        *inner.conn.write().unwrap_or_else(PoisonError::into_inner) = Some(conn);
                        tracing::info!(server = %inner.server, "redis store connected");
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(server = %inner.server, error = %err, "redis store not reachable yet; serving from the origin")
                    }
                }
                drop(inner);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        });
        Ok(store)
    }

    fn client(&self, url: &str) -> Result<Client, StoreError> {
        #[cfg(feature = "redis-tls")]
        if let Some(root) = &self.root_certificate {
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root.clone()),
            };
            return Client::build_with_tls(url, certs).map_err(StoreError::backend);
        }
        Client::open(url).map_err(StoreError::backend)
    }

    /// Checks the builder, then makes the store, not yet connected.
    fn parts(self) -> Result<RedisStore, StoreError> {
        self.validate()?;
        let subscribers = self.urls.iter().map(|url| self.client(url)).collect::<Result<Vec<_>, _>>()?;
        let (connector, server) = if self.cluster {
            self.cluster_connector(&subscribers)?
        } else {
            self.single_connector(&subscribers)
        };
        let server: Arc<str> = server.into();
        let store = RedisStore {
            inner: Arc::new(Inner {
                conn: RwLock::new(None),
                connector,
                reconnecting: AtomicBool::new(false),
                runtime: tokio::runtime::Handle::try_current().ok(),
                layout: Layout::new(self.prefix),
                scripts: Scripts::new(),
                breaker: Breaker::new(self.failure_threshold, self.cool_down, Arc::clone(&server)),
                server,
                response_timeout: self.response_timeout,
                compress_above: self.compress_above,
                subscribers,
                instance: fastrand::u64(..),
                pending: Mutex::default(),
                has_pending: AtomicBool::new(false),
                replaying: AtomicBool::new(false),
            }),
        };
        Ok(store)
    }

    /// Refuses a builder without a URL, or with a prefix that would put
    /// every key on one cluster slot.
    fn validate(&self) -> Result<(), StoreError> {
        if self.urls.is_empty() {
            return Err(StoreError::backend("no redis url given"));
        }
        if self.prefix.contains(['{', '}']) {
            return Err(StoreError::backend(format!(
                "redis key prefix `{}` holds a brace, which would decide every key's cluster slot",
                self.prefix
            )));
        }
        Ok(())
    }

    /// The connector for a cluster reachable at any of the URLs, and how
    /// logs name it (its seed nodes).
    fn cluster_connector(&self, subscribers: &[Client]) -> Result<(Connector, String), StoreError> {
        let builder = redis::cluster::ClusterClientBuilder::new(self.urls.iter().map(String::as_str))
            .connection_timeout(self.connection_timeout)
            .response_timeout(self.response_timeout)
            .retries(2);
        #[cfg(feature = "redis-tls")]
        let builder = match &self.root_certificate {
            Some(root) => builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root.clone()),
            }),
            None => builder,
        };
        let client = builder.build().map_err(StoreError::backend)?;
        let nodes: Vec<String> = subscribers.iter().map(|c| c.get_connection_info().addr().to_string()).collect();
        Ok((Connector::Cluster(client), format!("cluster({})", nodes.join(","))))
    }

    /// The connector for the server at the first URL, and how logs name it
    /// (its address and database, without credentials).
    fn single_connector(&self, subscribers: &[Client]) -> (Connector, String) {
        // One attempt per reconnection: an operation that finds Redis
        // gone fails at once rather than wait out a backoff, the circuit
        // breaker paces attempts while Redis is away, and `connect`
        // fails within the connection timeout.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout))
            .set_number_of_retries(0);
        let info = subscribers[0].get_connection_info();
        let server = format!("{}/{}", info.addr(), info.redis_settings().db());
        (Connector::Single(subscribers[0].clone(), config), server)
    }
}

/// Makes the store's connection.
#[derive(Clone)]
pub(super) enum Connector {
    Single(Client, ConnectionManagerConfig),
    Cluster(ClusterClient),
}

impl Connector {
    pub(super) async fn connect(&self) -> Result<Conn, RedisError> {
        match self {
            Connector::Single(client, config) => client.get_connection_manager_with_config(config.clone()).await.map(Conn::Single),
            Connector::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
        }
    }
}
