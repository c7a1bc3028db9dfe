//! A throwaway `redis-server` for tests and benchmarks: started on a random
//! free loopback port in its own temporary directory, killed on drop.
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
//! ```
//!
//! The binary is `$REDIS_SERVER` if set, else `redis-server` from `PATH`,
//! else `/usr/bin/redis-server`. Persistence is off (`--save ""`,
//! `--appendonly no`), so a restart comes back empty.
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

/// How long `start`/`restart` wait for the server to answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server` owned by the test.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a server on a random free port, or panics with the reason: a
    /// test that needs Redis must fail, never skip, when it cannot start.
    pub fn start() -> RedisServer {
        match Self::try_start() {
            Ok(s) => s,
            Err(e) => panic!(
                "could not start redis-server ({e}); install it (apt-get install redis-server) \
                 or set REDIS_SERVER to its path"
            ),
        }
    }

    /// Starts a server on a random free port.
    pub fn try_start() -> std::io::Result<RedisServer> {
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
            let port = free_port()?;
            let server = RedisServer {
                port,
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

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The TCP port.
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
    /// still running); panics if it cannot. The data is gone.
    pub fn restart(&self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("could not restart redis-server on port {}: {e}", self.port),
            }
        }
    }

    /// Sends one inline command and returns the raw reply (for assertions
    /// that must not depend on a Redis client library), e.g. `cmd("DBSIZE")`
    /// → `":0\r\n"`.
    pub fn cmd(&self, command: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(format!("{command}\r\n").as_bytes())?;
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// The number of keys (`DBSIZE`).
    pub fn dbsize(&self) -> u64 {
        let reply = self.cmd("DBSIZE").unwrap_or_default();
        reply
            .trim()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected DBSIZE reply {reply:?}"))
    }

    fn spawn(&self) -> std::io::Result<()> {
        let mut cmd = Command::new(binary());
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--protected-mode", "yes"])
            .args(["--loglevel", "warning"])
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
                return Err(std::io::Error::other(format!(
                    "redis-server exited at start (port {} taken?)",
                    self.port
                )));
            }
            if self.cmd("PING").is_ok_and(|r| r.starts_with("+PONG")) {
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

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        return PathBuf::from(p);
    }
    let in_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("redis-server"))
            .find(|p| is_file(p))
    });
    in_path.unwrap_or_else(|| PathBuf::from("/usr/bin/redis-server"))
}

fn is_file(p: &Path) -> bool {
    p.metadata().is_ok_and(|m| m.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
