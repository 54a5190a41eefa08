//! A TCP proxy that a test puts between an application and its
//! `redis-server`, to make the network between them slow, hung, lossy or
//! broken while both ends keep running.
//!
//! [`FaultProxy::start`] listens on a free loopback port and forwards every
//! connection to the upstream address; the application is given
//! [`FaultProxy::url`] instead of the server's. Faults can be switched at
//! any time and apply at once to the connections already open as well as to
//! new ones.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
    task::{JoinHandle, JoinSet},
    time::Instant,
};

/// A TCP proxy on a free loopback port, forwarding to an upstream address,
/// with faults the test switches on and off. Dropping it stops listening
/// and closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// What the proxy and its connections share.
#[derive(Debug)]
struct Shared {
    /// The faults; every forwarder watches them, so that a paused one wakes
    /// on [`FaultProxy::resume`] and a connection ends on
    /// [`FaultProxy::reset_all`].
    faults: watch::Sender<Faults>,
    /// Connections open now.
    open: AtomicUsize,
    /// Connections ever accepted, refused ones included.
    total: AtomicUsize,
}

/// The faults in force.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    /// How long bytes from the client are held before going upstream.
    delay_upstream: Duration,
    /// How long bytes from upstream are held before going to the client.
    delay_downstream: Duration,
    paused: bool,
    blackhole: bool,
    refuse: bool,
    /// How many times [`FaultProxy::reset_all`] was called: a connection
    /// ends when this changes.
    resets: u64,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port that forwards every connection
    /// it accepts to `upstream`, with no fault. Must be called within a
    /// Tokio runtime, which runs the proxy.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            faults: watch::Sender::new(Faults::default()),
            open: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, upstream, Arc::clone(&shared)));
        FaultProxy { addr, shared, accept }
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `redis://127.0.0.1:PORT`, the URL to give the application instead of
    /// the server's.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    /// Holds every chunk of bytes, in both directions, for `delay` from when
    /// it was read before writing it. Chunks keep their order and do not
    /// wait for one another: bytes read 10 ms apart are written 10 ms apart.
    /// Applies to the bytes read from now on; `Duration::ZERO` ends it.
    pub fn set_delay(&self, delay: Duration) {
        self.modify(|f| {
            f.delay_upstream = delay;
            f.delay_downstream = delay;
        });
    }

    /// As [`set_delay`](Self::set_delay), for the bytes from the client to
    /// upstream only (the application's commands to Redis).
    pub fn set_delay_upstream(&self, delay: Duration) {
        self.modify(|f| f.delay_upstream = delay);
    }

    /// As [`set_delay`](Self::set_delay), for the bytes from upstream to the
    /// client only (Redis's replies to the application).
    pub fn set_delay_downstream(&self, delay: Duration) {
        self.modify(|f| f.delay_downstream = delay);
    }

    /// Stops every byte in both directions, as with a hung network: the
    /// bytes are held, not dropped, and connections stay open. New
    /// connections are accepted, and held as well.
    pub fn pause(&self) {
        self.modify(|f| f.paused = true);
    }

    /// Ends a [`pause`](Self::pause): everything held flows, in order.
    pub fn resume(&self) {
        self.modify(|f| f.paused = false);
    }

    /// While `on`, discards every byte in both directions, on the
    /// connections open and on new ones, which are accepted; connections
    /// stay open. Bytes read before but due (see
    /// [`set_delay`](Self::set_delay)) or released by
    /// [`resume`](Self::resume) while it is on are discarded too. A peer's
    /// closing still passes, so that the connections the application gives
    /// up on do not linger.
    pub fn blackhole(&self, on: bool) {
        self.modify(|f| f.blackhole = on);
    }

    /// Closes every connection open now abruptly, on both sides: each peer
    /// sees a reset (`SO_LINGER` 0), and the bytes held are lost. New
    /// connections are accepted as before.
    pub fn reset_all(&self) {
        self.modify(|f| f.resets += 1);
    }

    /// While `on`, accepts new connections and closes them at once with a
    /// reset, as with a server that went away; the connections open are left
    /// alone.
    pub fn refuse(&self, on: bool) {
        self.modify(|f| f.refuse = on);
    }

    /// How many connections are open now. A connection counts from when the
    /// proxy accepts it, which may be a little after the client's `connect`
    /// returns, to when both its sides are closed.
    pub fn connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// How many connections the proxy ever accepted, refused ones (see
    /// [`refuse`](Self::refuse)) included.
    pub fn total_connections(&self) -> usize {
        self.shared.total.load(Ordering::SeqCst)
    }

    fn modify(&self, change: impl FnOnce(&mut Faults)) {
        self.shared.faults.send_modify(change);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks: aborting it aborts
        // them, which closes their sockets.
        self.accept.abort();
    }
}

/// Accepts connections until aborted, each served by a task of `conns`, so
/// that they end with the loop.
async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    // Out of file descriptors, say: try again a little later.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                shared.total.fetch_add(1, Ordering::SeqCst);
                let faults = *shared.faults.borrow();
                if faults.refuse {
                    let _ = client.set_zero_linger();
                    continue;
                }
                conns.spawn(serve(client, upstream, faults.resets, Open::new(&shared)));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Counts a connection as open while it lives.
struct Open(Arc<Shared>);

impl Open {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.open.fetch_add(1, Ordering::SeqCst);
        Open(Arc::clone(shared))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Forwards one connection until both sides are closed, an I/O error, or a
/// [`FaultProxy::reset_all`] after the `resets`th; in the last two cases
/// both sides are reset.
async fn serve(mut client: TcpStream, upstream: SocketAddr, resets: u64, open: Open) {
    let shared = Arc::clone(&open.0);
    let mut faults = shared.faults.subscribe();
    let mut upstream_stream: Option<TcpStream> = None;
    let closed_cleanly = tokio::select! {
        _ = faults.wait_for(|f| f.resets != resets) => false,
        forwarded = async {
            let upstream = upstream_stream.insert(TcpStream::connect(upstream).await?);
            // The proxy must not add Nagle's delays of its own.
            client.set_nodelay(true)?;
            upstream.set_nodelay(true)?;
            forward(&mut client, upstream, &shared.faults).await
        } => forwarded.is_ok(),
    };
    if !closed_cleanly {
        let _ = client.set_zero_linger();
        if let Some(upstream) = &upstream_stream {
            let _ = upstream.set_zero_linger();
        }
    }
}

/// Forwards both directions between `client` and `upstream` until both are
/// closed, or either fails.
async fn forward(client: &mut TcpStream, upstream: &mut TcpStream, faults: &watch::Sender<Faults>) -> io::Result<()> {
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    tokio::try_join!(
        pipe(client_read, upstream_write, Direction::Upstream, faults),
        pipe(upstream_read, client_write, Direction::Downstream, faults),
    )?;
    Ok(())
}

/// Which way bytes go.
#[derive(Debug, Clone, Copy)]
enum Direction {
    /// From the client to upstream.
    Upstream,
    /// From upstream to the client.
    Downstream,
}

impl Direction {
    fn delay(self, faults: &Faults) -> Duration {
        match self {
            Direction::Upstream => faults.delay_upstream,
            Direction::Downstream => faults.delay_downstream,
        }
    }
}

/// A chunk read and not yet written.
struct Held {
    /// When to write it, at the earliest.
    due: Instant,
    /// `None` for the end of the stream.
    bytes: Option<Vec<u8>>,
}

/// Forwards one direction: reads as bytes come and queues them, while the
/// queue is written out as each chunk falls due, so that a delay holds
/// every chunk for the delay and not for the sum of the delays before it.
async fn pipe(
    from: impl AsyncRead + Unpin,
    to: impl AsyncWrite + Unpin,
    direction: Direction,
    faults: &watch::Sender<Faults>,
) -> io::Result<()> {
    let (queue, held) = mpsc::unbounded_channel();
    tokio::try_join!(hold(from, queue, direction, faults), release(to, held, faults))?;
    Ok(())
}

/// Reads `from` until its end, queuing what it reads with the time it is
/// due, except what a blackhole discards.
async fn hold(
    mut from: impl AsyncRead + Unpin,
    queue: mpsc::UnboundedSender<Held>,
    direction: Direction,
    faults: &watch::Sender<Faults>,
) -> io::Result<()> {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        let faults = *faults.borrow();
        let due = Instant::now() + direction.delay(&faults);
        if n == 0 {
            // The writer is alive until it has had this: the send succeeds.
            let _ = queue.send(Held { due, bytes: None });
            return Ok(());
        }
        if !faults.blackhole {
            let _ = queue.send(Held {
                due,
                bytes: Some(buf[..n].to_vec()),
            });
        }
    }
}

/// Writes what is queued to `to`, each chunk once it is due and no pause is
/// on, and passes the end of the stream on.
async fn release(
    mut to: impl AsyncWrite + Unpin,
    mut held: mpsc::UnboundedReceiver<Held>,
    faults: &watch::Sender<Faults>,
) -> io::Result<()> {
    let mut faults = faults.subscribe();
    while let Some(Held { due, bytes }) = held.recv().await {
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let blackhole = match faults.wait_for(|f| !f.paused).await {
            Ok(f) => f.blackhole,
            // The proxy is gone, and this task with it.
            Err(_) => return Ok(()),
        };
        match bytes {
            Some(bytes) if !blackhole => to.write_all(&bytes).await?,
            Some(_) => {}
            None => {
                to.shutdown().await?;
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Time enough for a byte to cross loopback twice, even on a busy
    /// machine, and to tell that one did not.
    const A_WHILE: Duration = Duration::from_millis(300);

    /// An echo server on a free loopback port, and the count of the bytes
    /// it received.
    async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let received = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let mut buf = [0; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf).await {
                        counter.fetch_add(n, Ordering::SeqCst);
                        if stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (addr, received)
    }

    async fn connect(proxy: &FaultProxy) -> TcpStream {
        let stream = TcpStream::connect(proxy.addr()).await.expect("the proxy accepts");
        stream.set_nodelay(true).expect("sets TCP_NODELAY");
        stream
    }

    /// Reads exactly `n` bytes within two seconds.
    async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut buf))
            .await
            .expect("the bytes arrive within 2 s")
            .expect("the bytes arrive");
        buf
    }

    /// Sends `bytes` and reads their echo.
    async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) {
        stream.write_all(bytes).await.expect("writes");
        assert_eq!(read_n(stream, bytes.len()).await, bytes);
    }

    /// Asserts that nothing arrives on `stream` for [`A_WHILE`].
    async fn assert_silent(stream: &mut TcpStream) {
        let mut buf = [0; 64];
        match tokio::time::timeout(A_WHILE, stream.read(&mut buf)).await {
            Err(_) => {}
            Ok(read) => panic!("expected silence, got {read:?}"),
        }
    }

    /// Asserts that `stream` was closed, by an EOF or an error, within a
    /// second and without a byte of echo.
    async fn assert_closed(stream: &mut TcpStream) {
        let mut buf = [0; 64];
        let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf))
            .await
            .expect("the connection closes within 1 s");
        assert!(matches!(read, Ok(0) | Err(_)), "expected a closed connection, got {read:?}");
    }

    /// Waits up to a second for `condition`.
    async fn eventually(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while !condition() {
            assert!(Instant::now() < deadline, "{what} within 1 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn forwards_both_ways_and_counts_connections() {
        let (echo, received) = echo_server().await;
        let proxy = FaultProxy::start(echo).await;
        assert_eq!(proxy.url(), format!("redis://127.0.0.1:{}", proxy.port()));
        assert_eq!(proxy.addr().ip(), std::net::Ipv4Addr::LOCALHOST);
        let mut first = connect(&proxy).await;
        let mut second = connect(&proxy).await;
        round_trip(&mut first, b"hello").await;
        round_trip(&mut second, b"world").await;
        round_trip(&mut first, &[7; 100_000]).await;
        assert_eq!(received.load(Ordering::SeqCst), 100_010);
        assert_eq!(proxy.connections(), 2);
        assert_eq!(proxy.total_connections(), 2);
        drop(first);
        eventually("a closed connection is no longer counted", || proxy.connections() == 1).await;
        assert_eq!(proxy.total_connections(), 2);
    }

    #[tokio::test]
    async fn delay_holds_each_chunk_in_each_direction() {
        let (echo, _) = echo_server().await;
        let proxy = FaultProxy::start(echo).await;
        let mut stream = connect(&proxy).await;
        round_trip(&mut stream, b"warm").await;

        proxy.set_delay(Duration::from_millis(200));
        let start = Instant::now();
        round_trip(&mut stream, b"slow").await;
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(400), "200 ms each way, took {elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");

        // Chunks read 50 ms apart are each held 200 ms each way, not queued
        // behind one another (which would take 800 ms).
        let start = Instant::now();
        for chunk in [b"a", b"b", b"c"] {
            stream.write_all(chunk).await.expect("writes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(read_n(&mut stream, 3).await, b"abc");
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(500), "took {elapsed:?}");
        assert!(elapsed < Duration::from_millis(750), "the chunks were not pipelined: {elapsed:?}");

        proxy.set_delay(Duration::ZERO);
        proxy.set_delay_upstream(Duration::from_millis(200));
        let start = Instant::now();
        round_trip(&mut stream, b"up").await;
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(200), "took {elapsed:?}");
        assert!(elapsed < Duration::from_millis(400), "only upstream is delayed, took {elapsed:?}");
    }

    #[tokio::test]
    async fn pause_holds_bytes_until_resume() {
        let (echo, received) = echo_server().await;
        let proxy = FaultProxy::start(echo).await;
        let mut stream = connect(&proxy).await;
        round_trip(&mut stream, b"warm").await;

        proxy.pause();
        stream.write_all(b"one").await.expect("writes");
        stream.write_all(b"two").await.expect("writes");
        let mut late = connect(&proxy).await;
        late.write_all(b"late").await.expect("writes");
        assert_silent(&mut stream).await;
        assert_silent(&mut late).await;
        assert_eq!(received.load(Ordering::SeqCst), 4, "nothing reached upstream");
        eventually("a connection made while paused is accepted", || proxy.connections() == 2).await;

        proxy.resume();
        assert_eq!(read_n(&mut stream, 6).await, b"onetwo");
        assert_eq!(read_n(&mut late, 4).await, b"late");
    }

    #[tokio::test]
    async fn blackhole_drops_bytes_and_keeps_connections() {
        let (echo, received) = echo_server().await;
        let proxy = FaultProxy::start(echo).await;
        let mut stream = connect(&proxy).await;
        round_trip(&mut stream, b"warm").await;

        proxy.blackhole(true);
        stream.write_all(b"lost").await.expect("writes");
        let mut late = connect(&proxy).await;
        late.write_all(b"lost too").await.expect("writes");
        assert_silent(&mut stream).await;
        assert_silent(&mut late).await;
        assert_eq!(received.load(Ordering::SeqCst), 4, "nothing reached upstream");
        assert_eq!(proxy.connections(), 2);

        proxy.blackhole(false);
        round_trip(&mut stream, b"kept").await;
        round_trip(&mut late, b"kept").await;
    }

    #[tokio::test]
    async fn reset_all_closes_connections_and_accepts_new_ones() {
        let (echo, _) = echo_server().await;
        let proxy = FaultProxy::start(echo).await;
        let mut stream = connect(&proxy).await;
        round_trip(&mut stream, b"warm").await;
        // A paused connection is reset too.
        let mut paused = connect(&proxy).await;
        // reset_all resets the connections accepted so far.
        eventually("the second connection is accepted", || proxy.connections() == 2).await;
        proxy.pause();
        paused.write_all(b"held").await.expect("writes");

        proxy.reset_all();
        assert_closed(&mut stream).await;
        assert_closed(&mut paused).await;
        eventually("reset connections are no longer counted", || proxy.connections() == 0).await;

        proxy.resume();
        let mut again = connect(&proxy).await;
        round_trip(&mut again, b"again").await;
        assert_eq!(proxy.total_connections(), 3);
    }

    #[tokio::test]
    async fn refuse_closes_new_connections_only() {
        let (echo, received) = echo_server().await;
        let proxy = FaultProxy::start(echo).await;
        let mut open = connect(&proxy).await;
        round_trip(&mut open, b"warm").await;

        proxy.refuse(true);
        let mut refused = connect(&proxy).await;
        // The write may land before the reset does; no echo comes either way.
        let _ = refused.write_all(b"nope").await;
        assert_closed(&mut refused).await;
        assert_eq!(received.load(Ordering::SeqCst), 4);
        round_trip(&mut open, b"still").await;
        assert_eq!(proxy.connections(), 1);

        proxy.refuse(false);
        let mut accepted = connect(&proxy).await;
        round_trip(&mut accepted, b"yes").await;
        assert_eq!(proxy.total_connections(), 3);
    }

    #[tokio::test]
    async fn an_upstream_that_is_down_closes_the_client() {
        let nothing = TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
        let addr = nothing.local_addr().expect("a bound listener has an address");
        drop(nothing);
        let proxy = FaultProxy::start(addr).await;
        let mut stream = connect(&proxy).await;
        let _ = stream.write_all(b"anyone?").await;
        assert_closed(&mut stream).await;
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_connections() {
        let (echo, _) = echo_server().await;
        let proxy = FaultProxy::start(echo).await;
        let mut stream = connect(&proxy).await;
        round_trip(&mut stream, b"warm").await;
        drop(proxy);
        assert_closed(&mut stream).await;
    }
}
