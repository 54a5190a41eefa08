//! Starting, checking and stopping the contenders: the Rust servers
//! (`contender`), nginx and Varnish in front of an origin process, and the
//! Redis server the Redis contenders share.

use std::{
    fmt,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use bench::contender::Kind;
use clap::ValueEnum;

use crate::http;

/// A contender: one of the Rust servers, or a proxy cache in front of the
/// origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Contender {
    Rust(Kind),
    Nginx,
    Varnish,
}

impl Contender {
    /// Every contender, in the order of the tables.
    pub(crate) fn all() -> Vec<Contender> {
        let mut all: Vec<Contender> = Kind::value_variants().iter().map(|&k| Contender::Rust(k)).collect();
        let peers = all
            .iter()
            .position(|c| *c == Contender::Rust(Kind::TowerHttpCache))
            .unwrap_or(all.len());
        all.insert(peers, Contender::Varnish);
        all.insert(peers, Contender::Nginx);
        all
    }

    pub(crate) fn parse(name: &str) -> anyhow::Result<Contender> {
        match name {
            "nginx" => Ok(Contender::Nginx),
            "varnish" => Ok(Contender::Varnish),
            _ => Kind::from_str(name, true)
                .map(Contender::Rust)
                .map_err(|_| anyhow::anyhow!("unknown contender {name:?}")),
        }
    }

    /// Whether it caches at all.
    pub(crate) fn caches(self) -> bool {
        !matches!(self, Contender::Rust(Kind::Ceiling | Kind::Origin | Kind::ActixCeiling))
    }

    pub(crate) fn needs_redis(self) -> bool {
        matches!(self, Contender::Rust(kind) if kind.needs_redis())
    }
}

impl fmt::Display for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contender::Rust(kind) => match kind.to_possible_value() {
                Some(value) => f.write_str(value.get_name()),
                None => write!(f, "{kind:?}"),
            },
            Contender::Nginx => f.write_str("nginx"),
            Contender::Varnish => f.write_str("varnish"),
        }
    }
}

/// Where things are and how to pin them.
#[derive(Debug)]
pub(crate) struct Env {
    /// The directory of the harness's own binary (and `contender`).
    pub(crate) bin_dir: PathBuf,
    /// A scratch directory, removed at the end.
    pub(crate) work: PathBuf,
    /// `taskset -c CORE` for servers and the load generator, when there are
    /// two cores or more and taskset exists.
    pub(crate) pin: bool,
    /// The Redis server, once one was needed.
    pub(crate) redis: Option<Server>,
}

pub(crate) const SERVER_CORE: &str = "0";
pub(crate) const CLIENT_CORE: &str = "1";

impl Env {
    pub(crate) fn new() -> anyhow::Result<Env> {
        let exe = std::env::current_exe()?;
        let bin_dir = exe.parent().context("the harness binary's directory")?.to_path_buf();
        build_contenders(&bin_dir)?;
        let work = std::env::temp_dir().join(format!("bench-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let pin = cores >= 2 && which("taskset");
        Ok(Env {
            bin_dir,
            work,
            pin,
            redis: None,
        })
    }

    /// A command run on `core` when pinning.
    pub(crate) fn command(&self, core: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        if self.pin {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(core).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn spawn(&self, mut command: Command, log: &str) -> anyhow::Result<Child> {
        let log = std::fs::File::create(self.work.join(log))?;
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        command.spawn().with_context(|| format!("starting {command:?}"))
    }

    /// The Redis server's URL, starting it the first time.
    pub(crate) fn redis_url(&mut self) -> anyhow::Result<String> {
        if self.redis.is_none() {
            ensure_installed("redis-server", "redis-server")?;
            let port = free_port()?;
            let mut command = self.command(SERVER_CORE, "redis-server");
            command.args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]);
            let child = self.spawn(command, "redis.log")?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let server = Server::new(vec![child], addr, addr);
            wait_until(Duration::from_secs(10), || redis_command(addr, &["PING"]).is_ok()).context("redis-server did not start")?;
            self.redis = Some(server);
        }
        let addr = self.redis.as_ref().map(|r| r.addr).context("redis started")?;
        Ok(format!("redis://{addr}"))
    }

    /// The Redis server's address, starting it the first time.
    pub(crate) fn redis_addr(&mut self) -> anyhow::Result<SocketAddr> {
        self.redis_url()?;
        self.redis.as_ref().map(|r| r.addr).context("redis started")
    }

    /// Starts `contender` (and the origin behind it, for the proxies),
    /// each origin call waiting `delay_ms`; returns once it answers.
    pub(crate) fn start(&mut self, contender: Contender, delay_ms: u64) -> anyhow::Result<Server> {
        let server = match contender {
            Contender::Rust(_) => self.start_rust(contender, delay_ms)?,
            Contender::Nginx => {
                let origin = self.start_origin(delay_ms)?;
                self.start_nginx(origin)?
            }
            Contender::Varnish => {
                let origin = self.start_origin(delay_ms)?;
                self.start_varnish(origin)?
            }
        };
        wait_until(Duration::from_secs(30), || {
            http::calls(server.addr).is_ok() && http::calls(server.calls_addr).is_ok()
        })
        .with_context(|| format!("{contender} did not answer on {}; logs in {}", server.addr, self.work.display()))?;
        Ok(server)
    }

    fn start_rust(&mut self, contender: Contender, delay_ms: u64) -> anyhow::Result<Server> {
        let port = free_port()?;
        let mut command = self.command(SERVER_CORE, self.bin_dir.join("contender"));
        command
            .arg(contender.to_string())
            .args(["--listen", &format!("127.0.0.1:{port}"), "--delay-ms", &delay_ms.to_string()]);
        if contender.needs_redis() {
            let url = self.redis_url()?;
            let addr = self.redis.as_ref().map(|r| r.addr).context("redis started")?;
            redis_command(addr, &["FLUSHALL"])?;
            command.args(["--redis", &url, "--redis-prefix", &redis_prefix(port)]);
        }
        let child = self.spawn(command, &format!("{contender}-{port}.log"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(Server::new(vec![child], addr, addr))
    }

    fn start_origin(&mut self, delay_ms: u64) -> anyhow::Result<Server> {
        let port = free_port()?;
        let mut command = self.command(SERVER_CORE, self.bin_dir.join("contender"));
        command.args([
            "origin",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--delay-ms",
            &delay_ms.to_string(),
        ]);
        let child = self.spawn(command, &format!("origin-{port}.log"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(Server::new(vec![child], addr, addr))
    }

    fn start_nginx(&mut self, origin: Server) -> anyhow::Result<Server> {
        ensure_installed("nginx", "nginx-light")?;
        let port = free_port()?;
        let dir = self.work.join(format!("nginx-{port}"));
        std::fs::create_dir_all(dir.join("cache"))?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(&dir, port, origin.addr))?;
        let mut command = self.command(SERVER_CORE, "nginx");
        command.arg("-c").arg(&conf).arg("-p").arg(&dir);
        let child = self.spawn(command, &format!("nginx-{port}.log"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(origin.behind(child, addr))
    }

    fn start_varnish(&mut self, origin: Server) -> anyhow::Result<Server> {
        ensure_installed("varnishd", "varnish")?;
        let port = free_port()?;
        let dir = self.work.join(format!("varnish-{port}"));
        std::fs::create_dir_all(&dir)?;
        let vcl = dir.join("bench.vcl");
        std::fs::write(&vcl, varnish_vcl(origin.addr))?;
        let mut command = self.command(SERVER_CORE, "varnishd");
        command
            .args(["-F", "-j", "none", "-a", &format!("127.0.0.1:{port}"), "-s", "malloc,2g"])
            .arg("-n")
            .arg(dir.join("instance"))
            .arg("-f")
            .arg(&vcl);
        let child = self.spawn(command, &format!("varnish-{port}.log"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(origin.behind(child, addr))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(redis) = self.redis.take() {
            redis.stop();
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// nginx `proxy_cache` in front of the origin: one worker, the same TTL,
/// `proxy_cache_lock` on (its stampede protection), keep-alive upstream.
fn nginx_conf(dir: &Path, port: u16, origin: SocketAddr) -> String {
    let dir = dir.display();
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path {dir}/client;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=bench:128m max_size=4g inactive=2h use_temp_path=off;
    upstream origin {{ server {origin}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_valid 200 1h;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 30s;
            proxy_cache_lock_age 30s;
            add_header X-Cache $upstream_cache_status;
        }}
        location = /__calls {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#
    )
}

/// Varnish in front of the origin: the same TTL, nothing else changed
/// (request coalescing is Varnish's default).
fn varnish_vcl(origin: SocketAddr) -> String {
    format!(
        r#"vcl 4.1;
backend origin {{ .host = "{}"; .port = "{}"; }}
sub vcl_recv {{ if (req.url == "/__calls") {{ return (pass); }} }}
sub vcl_backend_response {{ set beresp.ttl = 1h; set beresp.grace = 0s; }}
sub vcl_deliver {{ if (obj.hits > 0) {{ set resp.http.X-Cache = "HIT"; }} else {{ set resp.http.X-Cache = "MISS"; }} }}
"#,
        origin.ip(),
        origin.port()
    )
}

/// Running processes: the contender first, then what it stands in front of.
#[derive(Debug)]
pub(crate) struct Server {
    children: Vec<Child>,
    /// Where the contender listens.
    pub(crate) addr: SocketAddr,
    /// Where to ask for the origin call count.
    pub(crate) calls_addr: SocketAddr,
}

impl Server {
    fn new(children: Vec<Child>, addr: SocketAddr, calls_addr: SocketAddr) -> Server {
        Server {
            children,
            addr,
            calls_addr,
        }
    }

    /// A proxy `child` at `addr` in front of this origin.
    fn behind(mut self, child: Child, addr: SocketAddr) -> Server {
        self.children.insert(0, child);
        Server {
            children: std::mem::take(&mut self.children),
            addr,
            calls_addr: self.calls_addr,
        }
    }

    /// The contender's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.children[0].id()
    }

    /// The peak resident memory of the contender's processes (not the
    /// origin behind a proxy), in KiB: `VmHWM` summed over its process tree.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        process_tree(self.pid()).iter().map(|&pid| status_kib(pid, "VmHWM:")).sum()
    }

    /// Stops every process: SIGTERM, then SIGKILL after 5 s.
    pub(crate) fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        for child in &mut self.children {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
        for child in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// `pid` and its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                continue;
            };
            // The field after the command name (in parentheses) is the state, then the parent.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(parent) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.push((child, parent));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// A free port on loopback.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The key prefix in Redis of the contender listening on `port`.
pub(crate) fn redis_prefix(port: u16) -> String {
    format!("bench{port}:")
}

pub(crate) fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("not ready after {timeout:?}")
}

/// Sends one Redis command (RESP) and returns the raw reply.
pub(crate) fn redis_command(addr: SocketAddr, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut reply = vec![0; 4096];
    let n = stream.read(&mut reply)?;
    reply.truncate(n);
    anyhow::ensure!(!reply.starts_with(b"-"), "redis: {}", String::from_utf8_lossy(&reply));
    Ok(reply)
}

/// Builds the contender binaries next to the harness's own, with its
/// profile: `cargo run` builds only the harness, and a contender built from
/// older sources would measure the wrong code.
fn build_contenders(bin_dir: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args([
        "build",
        "--quiet",
        "--bins",
        "--manifest-path",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    ]);
    if bin_dir.ends_with("release") {
        command.arg("--release");
    }
    let status = command.status().context("running cargo build for the contenders")?;
    anyhow::ensure!(status.success(), "building the contenders failed: {command:?}");
    Ok(())
}

pub(crate) fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(program).is_file()
}

/// Installs the Debian `package` when `program` is missing.
pub(crate) fn ensure_installed(program: &str, package: &str) -> anyhow::Result<()> {
    if which(program) {
        return Ok(());
    }
    eprintln!("{program} is missing: apt-get install -y {package}");
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    anyhow::ensure!(status.success() && which(program), "could not install {package}");
    Ok(())
}
