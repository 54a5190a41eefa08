//! A running app behind the cache, and the client to talk to it.

use std::future::Future;

use cache_core::{Cache, Policies};
use reqwest::{Client, RequestBuilder};

use crate::origin::Origin;

/// Starts the test app on one web framework.
pub trait Adapter {
    /// Serves the origin's [routes](crate::origin::Origin::routes) on a
    /// free loopback port, each behind a cache layer of `cache` with its
    /// policy.
    fn start(cache: Cache, origin: Origin) -> impl Future<Output = Server> + Send;

    /// Serves the origin on every path behind one cache layer (middleware)
    /// holding `policies`, such as a TOML table: no framework route
    /// patterns, so path patterns choose the policies.
    fn start_with_table(cache: Cache, origin: Origin, policies: Policies) -> impl Future<Output = Server> + Send;

    /// Whether the adapter refreshes stale-while-revalidate entries in the
    /// background (answering with the stale entry meanwhile), rather than
    /// before answering.
    const BACKGROUND_REFRESH: bool;
}

/// A running test app.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What the app's handlers count.
    pub origin: Origin,
    /// The cache in front of the origin.
    pub cache: Cache,
    /// A client with a connection pool large enough for the stampede tests.
    pub client: Client,
}

impl Server {
    /// A server record for an app listening at `base`.
    pub fn new(base: String, origin: Origin, cache: Cache) -> Self {
        let client = Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .expect("a plain HTTP client builds");
        Server {
            base,
            origin,
            cache,
            client,
        }
    }

    /// A GET of `path`.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    /// A request of any method.
    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }
}
