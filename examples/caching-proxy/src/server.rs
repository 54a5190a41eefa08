//! Serving a [`Proxy`] on a TCP listener, one HTTP/1.1 connection per task.

use std::{future::Future, io, net::SocketAddr, pin::pin, time::Duration};

use http::Request;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::net::{TcpListener, TcpStream};
use tower::util::MapRequest;

use crate::{ClientAddr, Proxy};

/// How long to wait after an accept error that is not about one connection
/// (such as too many open files) before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `proxy` on `listener` forever.
pub async fn serve(listener: TcpListener, proxy: Proxy) {
    serve_with_shutdown(listener, proxy, std::future::pending()).await;
}

/// Serves `proxy` on `listener` until `shutdown` completes; then stops
/// accepting, lets the requests in flight finish (idle keep-alive
/// connections are closed at once) and returns.
///
/// Accept errors are logged and do not stop the server.
pub async fn serve_with_shutdown(listener: TcpListener, proxy: Proxy, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, addr)) => spawn_connection(stream, addr, &proxy, &graceful),
            Err(error) => accept_failed(&error).await,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Serves one connection on its own task.
fn spawn_connection(stream: TcpStream, addr: SocketAddr, proxy: &Proxy, graceful: &GracefulShutdown) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%addr, %error, "cannot set TCP_NODELAY");
    }
    let service = MapRequest::new(proxy.service(), move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(addr));
        req
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%addr, %error, "connection closed with an error");
        }
    });
}

/// Logs an accept error; waits a little unless it concerned one connection.
async fn accept_failed(error: &io::Error) {
    let one_connection = matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    );
    if one_connection {
        tracing::debug!(%error, "accept failed");
        return;
    }
    tracing::error!(%error, "accept failed; retrying in {ACCEPT_BACKOFF:?}");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}
