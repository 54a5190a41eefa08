//! Running storefront-actix for the tests: on a free port, on a thread of
//! its own with its own actix `System`, as `main` builds it
//! ([`storefront_actix::app_with_purge`]).

// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::sync::mpsc;

use actix_web::HttpServer;
use actix_web::dev::ServerHandle;
use storefront_actix::{Config, app_with_purge, build};

/// A running storefront; stopped on drop.
pub(crate) struct Running {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// The database behind it.
    pub(crate) catalog: catalog::Catalog,
    /// Its response cache.
    pub(crate) cache: cache_actix::Cache,
    handle: ServerHandle,
}

/// Starts the storefront `config` describes (its `listen` is ignored: the
/// port is a free one) with `workers` actix workers.
pub(crate) fn start(config: Config, workers: usize) -> Running {
    let (catalog, cache) = build(&config).expect("the app builds");
    let table = storefront::cache_table(&config).expect("the TTL table loads");
    let (app_catalog, app_cache, token) = (catalog.clone(), cache.clone(), config.purge_token.clone());
    let (started, addr_and_handle) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || app_with_purge(app_catalog.clone(), &app_cache, token.as_ref(), table.as_ref()))
                .workers(workers)
                .disable_signals()
                .bind("127.0.0.1:0")
                .expect("a free port");
            let addr = server.addrs()[0];
            let server = server.run();
            started.send((addr, server.handle())).expect("the test waits for the server");
            server.await
        })
    });
    let (addr, handle) = addr_and_handle.recv().expect("the server starts");
    Running {
        base: format!("http://{addr}"),
        catalog,
        cache,
        handle,
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Sends the command at once; the server's thread ends when it is done.
        drop(self.handle.stop(false));
    }
}
