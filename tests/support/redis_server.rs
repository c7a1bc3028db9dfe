//! Throwaway Redis deployments for tests and benchmarks, on random free
//! loopback ports, each in its own temporary directory, killed on drop:
//!
//! - [`RedisServer::start`]: one plain server (`redis://`);
//! - [`RedisServer::start_tls`]: one TLS-only server (`rediss://`, no plain
//!   port) with a CA and a server certificate (for `127.0.0.1` and
//!   `localhost`) generated with `openssl` for this server alone;
//! - [`RedisCluster::start`]: a Redis Cluster of three masters (no replicas),
//!   created with `redis-cli --cluster create` and ready (`cluster_state:ok`).
//!
//! Self-contained (std only), so any test or bench can include it:
//!
//! ```text
//! #[path = "support/redis_server.rs"]
//! mod redis_server;
//!
//! let server = redis_server::RedisServer::start(); // panics (test FAILS) if it cannot
//! let url = server.url();                           // "redis://127.0.0.1:PORT/"
//! server.kill();                                    // simulate an outage
//! server.restart();                                 // same port, empty data
//!
//! let tls = redis_server::RedisServer::start_tls(); // "rediss://127.0.0.1:PORT/"
//! let ca = tls.ca_file().unwrap();                  // the PEM CA that signed it
//!
//! let cluster = redis_server::RedisCluster::start();
//! let seeds = cluster.seeds();                      // "redis://127.0.0.1:P1/,redis://..."
//! cluster.kill_node(0);                             // a master down: its slots fail
//! cluster.restart_node(0);                          // back, and cluster_state:ok again
//! ```
//!
//! The binaries are `$REDIS_SERVER` / `$REDIS_CLI` if set, else
//! `redis-server` / `redis-cli` from `PATH`, else `/usr/bin/...`; the
//! certificates need `openssl` (`$OPENSSL`). Persistence is off
//! (`--save ""`, `--appendonly no`), so a restart comes back empty (a cluster
//! node keeps its `nodes.conf`, so it rejoins as the same master with the
//! same slots).
#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    thread,
    time::{Duration, Instant},
};

/// How long `start`/`restart` wait for a server to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a cluster may take to reach `cluster_state:ok`.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// The cluster's node timeout: a killed master is declared failed after this
/// (Redis' default is 15 s; tests want outages to be noticed quickly).
pub const CLUSTER_NODE_TIMEOUT_MS: u64 = 1000;

#[derive(Clone)]
enum Mode {
    Plain,
    /// TLS only; the paths of the CA, server certificate and key.
    Tls {
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
    /// A cluster node; its cluster bus port.
    ClusterNode {
        bus_port: u16,
    },
}

/// A running `redis-server` owned by the test.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    mode: Mode,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a plain server on a random free port, or panics with the
    /// reason: a test that needs Redis must fail, never skip, when it cannot
    /// start.
    pub fn start() -> RedisServer {
        Self::try_start().unwrap_or_else(|e| panic!("could not start redis-server ({e}); {HINT}"))
    }

    /// Starts a plain server on a random free port.
    pub fn try_start() -> std::io::Result<RedisServer> {
        Self::try_start_with(|_| Ok(Mode::Plain))
    }

    /// Starts a TLS-only server (`--port 0 --tls-port P`) whose certificate
    /// is signed by a CA generated for it ([`ca_file`](Self::ca_file)), or
    /// panics with the reason.
    pub fn start_tls() -> RedisServer {
        Self::try_start_tls()
            .unwrap_or_else(|e| panic!("could not start a TLS redis-server ({e}); {HINT}"))
    }

    /// Starts a TLS-only server.
    pub fn try_start_tls() -> std::io::Result<RedisServer> {
        Self::try_start_with(|dir| {
            let (ca, cert, key) = make_certificates(dir)?;
            Ok(Mode::Tls { ca, cert, key })
        })
    }

    fn try_start_cluster_node() -> std::io::Result<RedisServer> {
        Self::try_start_with(|_| {
            Ok(Mode::ClusterNode {
                bus_port: free_port()?,
            })
        })
    }

    fn try_start_with(
        mode: impl Fn(&Path) -> std::io::Result<Mode>,
    ) -> std::io::Result<RedisServer> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "poem-secure-redis-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let mut last_err = None;
        // The port is free when probed but could be taken before Redis binds
        // it: retry with another one.
        for _ in 0..5 {
            std::fs::create_dir_all(&dir)?;
            let server = RedisServer {
                port: free_port()?,
                mode: mode(&dir)?,
                dir: dir.clone(),
                child: Mutex::new(None),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                // Dropping `server` kills it and removes the directory.
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("no attempt made")))
    }

    /// `redis://127.0.0.1:PORT/`, or `rediss://127.0.0.1:PORT/` for a TLS
    /// server.
    pub fn url(&self) -> String {
        match self.mode {
            Mode::Tls { .. } => format!("rediss://127.0.0.1:{}/", self.port),
            _ => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// The PEM file of the CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> Option<&Path> {
        match &self.mode {
            Mode::Tls { ca, .. } => Some(ca),
            _ => None,
        }
    }

    /// The TCP port (the TLS port of a TLS server).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the server (SIGKILL: no goodbye to clients) and waits for it to
    /// exit. Idempotent.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut c) = child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        match child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Starts the server again on the same port (killing it first if it is
    /// still running); panics if it cannot. The data is gone. (For a cluster
    /// node, use [`RedisCluster::restart_node`], which also waits for the
    /// cluster to be whole again.)
    pub fn restart(&self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
                Err(e) => panic!("could not restart redis-server on port {}: {e}", self.port),
            }
        }
    }

    /// Sends one inline command over plain TCP and returns the raw reply
    /// (for assertions that must not depend on a Redis client library), e.g.
    /// `cmd("DBSIZE")` → `":0\r\n"`. Not for a TLS server: use
    /// [`cli`](Self::cli).
    pub fn cmd(&self, command: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(format!("{command}\r\n").as_bytes())?;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf)?;
            out.extend_from_slice(&buf[..n]);
            if n == 0 || reply_complete(&out) {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Runs `redis-cli` against this server (over TLS for a TLS server) and
    /// returns its output, trimmed: `cli(&["DBSIZE"])` → `"0"`.
    pub fn cli(&self, args: &[&str]) -> std::io::Result<String> {
        let mut cmd = Command::new(binary("REDIS_CLI", "redis-cli"));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Mode::Tls { ca, .. } = &self.mode {
            cmd.arg("--tls").arg("--cacert").arg(ca);
        }
        let out = cmd.args(args).stdin(Stdio::null()).output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "redis-cli {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The number of keys (`DBSIZE`).
    pub fn dbsize(&self) -> u64 {
        let reply = match self.mode {
            Mode::Tls { .. } => self.cli(&["DBSIZE"]).unwrap_or_default(),
            _ => self.cmd("DBSIZE").unwrap_or_default(),
        };
        let trimmed = reply.trim();
        trimmed
            .strip_prefix(':')
            .unwrap_or(trimmed)
            .parse()
            .unwrap_or_else(|_| panic!("unexpected DBSIZE reply {reply:?}"))
    }

    fn spawn(&self) -> std::io::Result<()> {
        let mut cmd = Command::new(binary("REDIS_SERVER", "redis-server"));
        match &self.mode {
            Mode::Plain => {
                cmd.arg("--port").arg(self.port.to_string());
            }
            Mode::Tls { ca, cert, key } => {
                cmd.args(["--port", "0"])
                    .arg("--tls-port")
                    .arg(self.port.to_string())
                    .arg("--tls-cert-file")
                    .arg(cert)
                    .arg("--tls-key-file")
                    .arg(key)
                    .arg("--tls-ca-cert-file")
                    .arg(ca)
                    .args(["--tls-auth-clients", "no"]);
            }
            Mode::ClusterNode { bus_port } => {
                cmd.arg("--port")
                    .arg(self.port.to_string())
                    .args(["--cluster-enabled", "yes"])
                    .arg("--cluster-port")
                    .arg(bus_port.to_string())
                    .args(["--cluster-config-file", "nodes.conf"])
                    .arg("--cluster-node-timeout")
                    .arg(CLUSTER_NODE_TIMEOUT_MS.to_string());
            }
        }
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--protected-mode", "yes"])
            .args(["--loglevel", "warning"])
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn()?;
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&self) -> std::io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if !self.is_running() {
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                return Err(std::io::Error::other(format!(
                    "redis-server exited at start (port {} taken?): {}",
                    self.port,
                    log.trim()
                )));
            }
            let ready = match self.mode {
                // Listening is enough to try a real TLS round trip.
                Mode::Tls { .. } => {
                    TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok()
                        && self.cli(&["PING"])?.as_str() == "PONG"
                }
                _ => self.cmd("PING").is_ok_and(|r| r.starts_with("+PONG")),
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "redis-server did not answer PING within 10 s",
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three masters without replicas, on loopback, owned by
/// the test. Killing a master makes its slots unavailable (and, after
/// [`CLUSTER_NODE_TIMEOUT_MS`], the whole cluster refuse with `CLUSTERDOWN`)
/// until it is restarted.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three nodes, creates the cluster, and waits until every node
    /// reports `cluster_state:ok`; panics (test FAILS) if it cannot.
    pub fn start() -> RedisCluster {
        Self::try_start()
            .unwrap_or_else(|e| panic!("could not start a Redis Cluster ({e}); {HINT}"))
    }

    /// Starts a three-master cluster.
    pub fn try_start() -> std::io::Result<RedisCluster> {
        let nodes = (0..3)
            .map(|_| RedisServer::try_start_cluster_node())
            .collect::<std::io::Result<Vec<_>>>()?;
        let cluster = RedisCluster { nodes };
        let mut create = Command::new(binary("REDIS_CLI", "redis-cli"));
        create.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        cluster.try_wait_ok()?;
        Ok(cluster)
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The seed list: every node's `redis://` URL, comma-separated.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the node that serves `key` (hash tags respected), read
    /// from a running node's `CLUSTER NODES`.
    pub fn node_for_key(&self, key: &str) -> usize {
        let slot = key_slot(key.as_bytes());
        let table = self
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .find_map(|n| n.cmd("CLUSTER NODES").ok())
            .unwrap_or_else(|| panic!("no running cluster node answers CLUSTER NODES"));
        for line in table.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(port) = fields
                .get(1)
                .and_then(|a| a.split('@').next())
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse::<u16>().ok())
            else {
                continue;
            };
            let serves = fields.iter().skip(8).any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
            });
            if serves {
                if let Some(i) = self.nodes.iter().position(|n| n.port == port) {
                    return i;
                }
            }
        }
        panic!("no node serves slot {slot} of {key:?}: {table}")
    }

    /// The number of keys in the whole cluster (the sum of every running
    /// node's `DBSIZE`).
    pub fn dbsize(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(RedisServer::dbsize)
            .sum()
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill_node(&self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on its port (empty, with its old cluster
    /// identity and slots), then waits until the cluster is `ok` again.
    pub fn restart_node(&self, i: usize) {
        self.nodes[i].restart();
        self.wait_ok();
    }

    /// Waits until every running node reports `cluster_state:ok` and
    /// agrees on a full slot map; panics after 30 s.
    pub fn wait_ok(&self) {
        if let Err(e) = self.try_wait_ok() {
            panic!("Redis Cluster not ok: {e}");
        }
    }

    fn try_wait_ok(&self) -> std::io::Result<()> {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            let ok = self.nodes.iter().all(|n| {
                n.cmd("CLUSTER INFO").is_ok_and(|info| {
                    info.contains("cluster_state:ok")
                        && info.contains("cluster_slots_ok:16384")
                        && info.contains(&format!("cluster_known_nodes:{}", self.nodes.len()))
                })
            });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                let info = self.nodes[0].cmd("CLUSTER INFO").unwrap_or_default();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no cluster_state:ok within {CLUSTER_TIMEOUT:?}: {info}"),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

const HINT: &str = "install redis-server, redis-tools and openssl (scripts/test.sh does), \
                    or set REDIS_SERVER / REDIS_CLI / OPENSSL to their paths";

/// Generates, in `dir`, a CA and a server certificate for `127.0.0.1` and
/// `localhost` signed by it (P-256, valid two days). Returns (CA, cert, key).
fn make_certificates(dir: &Path) -> std::io::Result<(PathBuf, PathBuf, PathBuf)> {
    let openssl = |args: &[&str]| -> std::io::Result<()> {
        let out = Command::new(binary("OPENSSL", "openssl"))
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "openssl {}: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca_args = vec!["req", "-x509"];
    ca_args.extend(ec);
    ca_args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=poem-secure test CA",
    ]);
    openssl(&ca_args)?;
    let mut csr_args = vec!["req"];
    csr_args.extend(ec);
    csr_args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&csr_args)?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )?;
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
        "server.ext",
    ])?;
    Ok((
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    ))
}

/// Whether `out` holds one whole RESP reply (simple, error, integer or bulk
/// string; other replies are taken as they come).
fn reply_complete(out: &[u8]) -> bool {
    let Some(end) = out.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    match out.first() {
        Some(b'$') => {
            let len: i64 = std::str::from_utf8(&out[1..end])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(-1);
            len < 0 || out.len() >= end + 2 + usize::try_from(len).unwrap_or(0) + 2
        }
        _ => true,
    }
}

/// The cluster slot of `key` (CRC16/XMODEM of the hash tag or the key, mod
/// 16384), as Redis computes it.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &b in tagged {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

fn binary(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let in_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| is_file(p))
    });
    in_path.unwrap_or_else(|| PathBuf::from("/usr/bin").join(name))
}

fn is_file(p: &Path) -> bool {
    p.metadata().is_ok_and(|m| m.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
