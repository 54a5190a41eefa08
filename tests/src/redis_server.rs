//! `redis-server` processes for tests, each on a free port, so that a test
//! can kill or pause its own server.

use std::{
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A `redis-server` process, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    tls: bool,
}

impl RedisServer {
    /// Starts a `redis-server` that keeps nothing on disk, on a free
    /// loopback port, and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed (`.ci/run` installs it) or does
    /// not start within five seconds: these tests never pass by skipping.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`RedisServer::start`] with more `redis-server` arguments, such as
    /// `["--requirepass", "secret"]`.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`].
    pub fn start_with(args: &[&str]) -> Self {
        Self::start_on_a_free_port(|_| args.iter().map(|a| (*a).to_owned()).collect())
    }

    /// A `redis-server` on a free port with the arguments `args(port)`
    /// gives. Another test may take the same port between the asking and
    /// the binding: then another port is tried.
    fn start_on_a_free_port(args: impl Fn(u16) -> Vec<String>) -> Self {
        let mut why = String::new();
        for _ in 0..5 {
            let port = free_port();
            let args = args(port);
            match Self::try_start_on(port, &args.iter().map(String::as_str).collect::<Vec<_>>()) {
                Ok(server) => return server,
                Err(e) => why = e,
            }
        }
        panic!("{why}");
    }

    /// A `redis-server` on `port`, such as one an application was told to
    /// use before it was there.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`].
    pub fn start_on(port: u16, args: &[&str]) -> Self {
        Self::try_start_on(port, args).unwrap_or_else(|why| panic!("{why}"))
    }

    fn try_start_on(port: u16, args: &[&str]) -> Result<Self, String> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}); install it (Debian: apt-get install redis-server)"));
        let mut server = RedisServer { child, port, tls: false };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "redis-server on port {port} exited at start ({status}): is the port taken?"
                ));
            }
            // Listening, and not another test's server on the same port.
            if TcpStream::connect(("127.0.0.1", port)).is_ok() && serves_pid(port, server.child.id()) != Some(false) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!("redis-server did not listen on port {port} within 5 s"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A `redis-server` that speaks only TLS, with a certificate for
    /// `127.0.0.1` issued by a fresh CA, made with `openssl`. Returns the
    /// server and the CA certificate (PEM); [`url`](Self::url) is then a
    /// `rediss://` URL.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`], or when `openssl` is missing.
    pub fn start_tls() -> (Self, Vec<u8>) {
        let dir = std::env::temp_dir().join(format!("cache-tests-tls-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap_or_else(|e| panic!("cannot run openssl ({e}); install it (Debian: apt-get install openssl)"));
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=cache-tests CA"],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
            ]
            .concat(),
        );
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("writes");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        let file = |name: &str| dir.join(name).to_str().expect("a UTF-8 temporary path").to_owned();
        let mut server = Self::start_on_a_free_port(|port| {
            [
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--tls-cert-file",
                &file("server.crt"),
                "--tls-key-file",
                &file("server.key"),
                "--tls-ca-cert-file",
                &file("ca.crt"),
                "--tls-auth-clients",
                "no",
            ]
            .map(str::to_owned)
            .to_vec()
        });
        server.tls = true;
        let ca = std::fs::read(dir.join("ca.crt")).expect("the CA certificate");
        let _ = std::fs::remove_dir_all(&dir);
        (server, ca)
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        if self.tls {
            return format!("rediss://127.0.0.1:{}", self.port);
        }
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server in its tracks (SIGSTOP): connections stay open and
    /// nothing answers, as with a hung server.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Resumes a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server must be resumed to die of anything but SIGKILL;
        // SIGKILL works either way.
        self.kill();
    }
}

/// A Redis Cluster of three masters and three replicas, each a
/// `redis-server` on free ports, joined by `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts the six nodes, creates the cluster and waits until every node
    /// reports `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When `redis-server` or `redis-cli` is missing (`.ci/run` installs
    /// both) or the cluster does not form within 30 seconds.
    pub fn start() -> Self {
        // A node can lose its cluster-bus port to a parallel test after it
        // started listening: start afresh a few times before giving up.
        let mut why = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(cluster) => return cluster,
                Err(e) => why = e,
            }
        }
        panic!("{why}");
    }

    fn try_start() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("cache-tests-cluster-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let dir_arg = dir.to_str().expect("a UTF-8 temporary path").to_owned();
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_on_a_free_port(|port| {
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        &free_port().to_string(),
                        "--cluster-config-file",
                        &format!("nodes-{port}.conf"),
                        "--cluster-node-timeout",
                        "2000",
                        "--dir",
                        &dir_arg,
                    ]
                    .map(str::to_owned)
                    .to_vec()
                })
            })
            .collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}); install it (Debian: apt-get install redis-tools)"));
        let cluster = RedisCluster { nodes, dir };
        if !output.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &cluster.nodes {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &node.port.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli runs");
                let info = String::from_utf8_lossy(&info.stdout);
                if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6") {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("the cluster did not form within 30 s: {info}"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(cluster)
    }

    /// The URL of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the Redis on `port` is the process `pid` (`INFO server`); `None`
/// when it cannot tell (a TLS port, say).
fn serves_pid(port: u16, pid: u32) -> Option<bool> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    stream.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n").ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).contains("\r\nexecutable:") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    let line = reply.lines().find_map(|l| l.strip_prefix("process_id:"))?;
    Some(line.trim() == pid.to_string())
}

/// A loopback port nothing listens on (at the time of asking).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("a bound listener has an address").port()
}
