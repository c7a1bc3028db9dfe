//! How every Redis-backed store reaches Redis (feature `redis`): one server
//! (`redis://`), one server over TLS (`rediss://`), or a Redis Cluster (a
//! comma-separated list of seed nodes), with an optional CA file for TLS.
//! Connection building lives here and nowhere else; so does bounding every
//! call by a timeout that turns into "unavailable" (fail closed).

use std::{fmt, future::Future, path::Path, sync::Arc, sync::OnceLock, time::Duration};

use redis::{
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
    Client, Cmd, IntoConnectionInfo, Pipeline, RedisFuture, TlsCertificates, Value,
};

use crate::{ConfigError, CredentialError, AUDIT_TARGET};

/// Where Redis is: parsed and validated, without connecting.
///
/// - `redis://[user:password@]host[:port][/db]`: one server;
/// - `rediss://...`: one server over TLS (rustls), verified against the
///   system's root certificates, or only against the CA of
///   [`ca_file`](Self::ca_file) when one is given;
/// - `redis://a:7000,redis://b:7001,...` (two URLs or more, comma-separated,
///   all `redis://` or all `rediss://`): a Redis Cluster reached through these
///   seed nodes (any one of them that answers is enough; the others are found
///   from it). [`RedisTarget::cluster`] makes a cluster of one seed.
///
/// Errors and `Debug` never show the URL (it may hold a password).
///
/// ```
/// use secure_runtime::RedisTarget;
///
/// let one = RedisTarget::parse("redis://127.0.0.1:6379/").unwrap();
/// assert!(!one.is_cluster() && !one.is_tls());
/// let tls = RedisTarget::parse("rediss://:secret@redis.example:6380/").unwrap();
/// assert!(tls.is_tls());
/// assert!(!format!("{tls:?}").contains("secret"));
/// let cluster = RedisTarget::parse("redis://10.0.0.1:7000, redis://10.0.0.2:7000").unwrap();
/// assert!(cluster.is_cluster());
/// // A CA file only makes sense with TLS; malformed URLs are refused.
/// assert!(one.ca_pem("-----BEGIN CERTIFICATE-----").is_err());
/// assert!(RedisTarget::parse("nonsense").is_err());
/// ```
#[derive(Clone)]
pub struct RedisTarget {
    urls: Vec<String>,
    /// `host:port` of each node, for messages (never a password).
    hosts: String,
    cluster: bool,
    tls: bool,
    ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("nodes", &self.hosts)
            .field("cluster", &self.cluster)
            .field("tls", &self.tls)
            .field("custom_ca", &self.ca_pem.is_some())
            .finish()
    }
}

impl RedisTarget {
    /// Parses one URL (one server, TLS or not) or a comma-separated list of
    /// two or more (the seed nodes of a cluster).
    ///
    /// # Errors
    /// A [`ConfigError`] (without the URL) for an empty or malformed URL, a
    /// unix socket in a cluster, or seeds that mix `redis://` and `rediss://`.
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let urls: Vec<&str> = spec.split(',').map(str::trim).collect();
        let cluster = urls.len() > 1;
        Self::new(&urls, cluster)
    }

    /// A Redis Cluster reached through `seeds` (one or more URLs).
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn cluster<S: AsRef<str>>(seeds: &[S]) -> Result<Self, ConfigError> {
        let urls: Vec<&str> = seeds.iter().map(|s| s.as_ref().trim()).collect();
        Self::new(&urls, true)
    }

    fn new(urls: &[&str], cluster: bool) -> Result<Self, ConfigError> {
        if urls.is_empty() || urls.iter().any(|u| u.is_empty()) {
            return Err(ConfigError::new(
                "empty Redis URL (expected redis://host:port, rediss://host:port, \
                 or a comma-separated list of cluster seed nodes)",
            ));
        }
        let mut tls = None;
        let mut hosts = Vec::with_capacity(urls.len());
        for (i, url) in urls.iter().enumerate() {
            let is_tls = url.starts_with("rediss://");
            let plain = url.starts_with("redis://");
            let unix = url.starts_with("unix://") || url.starts_with("redis+unix://");
            let info = url.into_connection_info().ok();
            if let Some(info) = &info {
                hosts.push(info.addr().to_string());
            }
            if !(is_tls || plain || (unix && !cluster)) || info.is_none() {
                return Err(ConfigError::new(format!(
                    "Redis URL {} of {} is malformed (expected redis://host:port or \
                     rediss://host:port{})",
                    i + 1,
                    urls.len(),
                    if cluster { " for every seed" } else { "" }
                )));
            }
            if *tls.get_or_insert(is_tls) != is_tls {
                return Err(ConfigError::new(
                    "the cluster seed nodes mix redis:// and rediss://: use one scheme for all",
                ));
            }
        }
        Ok(RedisTarget {
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            hosts: hosts.join(","),
            cluster,
            tls: tls.unwrap_or(false),
            ca_pem: None,
        })
    }

    /// Trusts only the CA certificate(s) in the PEM file at `path` for TLS,
    /// instead of the system's roots (for a private CA, as managed Redis
    /// services often use).
    ///
    /// # Errors
    /// A [`ConfigError`] when the target is not `rediss://`, or the file
    /// cannot be read or holds no certificate.
    pub fn ca_file(self, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let pem = std::fs::read(path.as_ref()).map_err(|e| {
            ConfigError::new(format!(
                "cannot read the Redis CA file {}: {e}",
                path.as_ref().display()
            ))
        })?;
        self.ca_pem(pem)
    }

    /// Trusts only the CA certificate(s) in `pem` for TLS; see
    /// [`ca_file`](Self::ca_file).
    ///
    /// # Errors
    /// As [`ca_file`](Self::ca_file).
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        if !self.tls {
            return Err(ConfigError::new(
                "a Redis CA file needs TLS: use rediss:// URLs",
            ));
        }
        let pem = pem.into();
        if !pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(ConfigError::new(
                "the Redis CA file holds no PEM certificate",
            ));
        }
        self.ca_pem = Some(pem);
        // Fail now, not at the first request, if the certificate is bad.
        self.single_client()?;
        Ok(self)
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// Whether connections use TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    fn certificates(&self) -> Option<TlsCertificates> {
        self.ca_pem.as_ref().map(|pem| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        })
    }

    fn single_client(&self) -> Result<Client, ConfigError> {
        let url = self.urls.first().map(String::as_str).unwrap_or_default();
        let client = match self.certificates() {
            Some(certs) => Client::build_with_tls(url, certs),
            None => Client::open(url),
        };
        client.map_err(|_| ConfigError::new("invalid Redis URL or CA certificate"))
    }

    fn cluster_client(&self, timeout: Duration) -> Result<ClusterClient, ConfigError> {
        let mut builder = ClusterClientBuilder::new(self.urls.iter().map(String::as_str))
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(
                u64::try_from(timeout.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(10),
            );
        if let Some(certs) = self.certificates() {
            builder = builder.certs(certs);
        }
        builder
            .build()
            .map_err(|_| ConfigError::new("invalid Redis Cluster seed nodes or CA certificate"))
    }

    /// A handle that connects on first use and reconnects by itself after a
    /// lost connection or a failover: a service starts while Redis is down
    /// and recovers without a restart. `timeout` bounds each connection
    /// attempt and each reply. Must be called within a Tokio runtime.
    ///
    /// # Errors
    /// A [`ConfigError`] if the client cannot be built from the target.
    pub fn connect_lazy(&self, timeout: Duration) -> Result<RedisConnection, ConfigError> {
        install_crypto_provider(self.tls);
        let inner = if self.cluster {
            let config = ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            Inner::Cluster(
                self.cluster_client(timeout)?
                    .get_pending_async_connection_with_config(config),
            )
        } else {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(10))
                .set_max_delay(timeout);
            Inner::Single(
                ConnectionManager::new_lazy_with_config(self.single_client()?, config)
                    .map_err(|_| ConfigError::new("cannot set up the Redis connection"))?,
            )
        };
        Ok(RedisConnection(inner))
    }

    /// Connects and checks that Redis answers (`PING`) within `within`; then
    /// behaves as [`connect_lazy`](Self::connect_lazy) (with a per-call
    /// timeout of `within`).
    ///
    /// # Errors
    /// A [`ConfigError`] when Redis does not answer in time or refuses (the
    /// reason is logged, never a password).
    pub async fn connect(&self, within: Duration) -> Result<RedisConnection, ConfigError> {
        let mut conn = self.connect_lazy(within)?;
        let ping = redis::cmd("PING");
        match tokio::time::timeout(within, ping.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => Ok(conn),
            Ok(Err(e)) => Err(ConfigError::store(
                self.hosts.clone(),
                "cannot connect",
                Some(Arc::new(e)),
            )),
            Err(_) => Err(ConfigError::store(
                self.hosts.clone(),
                format!("did not answer within {within:?}"),
                None,
            )),
        }
    }
}

/// rustls needs a process-wide crypto provider; install ring's unless the
/// application installed one, so that no connection attempt can panic on an
/// ambiguous choice.
fn install_crypto_provider(tls: bool) {
    static DONE: OnceLock<()> = OnceLock::new();
    if tls {
        DONE.get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
    }
}

/// A connection to a [`RedisTarget`], shared by every store: cheap to clone
/// (all clones multiplex one connection per server), reconnecting by itself.
/// It is a [`ConnectionLike`], so commands, pipelines and scripts run on it
/// as on any redis-rs connection; on a cluster each command goes to the node
/// that serves its keys (a script's keys must share one slot: use a hash tag).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use secure_runtime::{RedisApiKeyStore, RedisSessionStore, RedisTarget};
///
/// let target = RedisTarget::parse("rediss://redis.internal:6380/")?
///     .ca_file("/etc/ssl/redis-ca.pem")?;
/// let conn = target.connect(Duration::from_secs(5)).await?;
/// let sessions = RedisSessionStore::new(conn.clone(), "notes:")?;
/// let keys = RedisApiKeyStore::new(conn, "notes:")?;
/// # let _ = (sessions, keys); Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisConnection(Inner);

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("cluster", &matches!(self.0, Inner::Cluster(_)))
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Whether this is a connection to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.0, Inner::Cluster(_))
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Single(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg_attr(not(feature = "issuer"), allow(dead_code))]
/// Checks a key prefix for stores that hash-tag their keys: a `{` or `}` in
/// it would change which part of each key Redis Cluster hashes.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    if prefix.contains(['{', '}']) {
        return Err(ConfigError::new(
            "a Redis key prefix must not contain `{` or `}` (they would break the \
             hash tags that keep a script's keys in one cluster slot)",
        ));
    }
    Ok(())
}

#[cfg_attr(not(feature = "issuer"), allow(dead_code))]
/// Runs one Redis call within `timeout`; an error or a timeout is logged once
/// and answered as [`CredentialError::Unavailable`] (503).
pub(crate) async fn bounded<T>(
    timeout: Duration,
    store: &'static str,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, CredentialError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            // The kind only: a message could quote a URL.
            tracing::error!(target: AUDIT_TARGET, event = "store_unavailable", store, kind = ?e.kind());
            Err(CredentialError::Unavailable)
        }
        Err(_) => {
            tracing::error!(target: AUDIT_TARGET, event = "store_unavailable", store, kind = "timeout");
            Err(CredentialError::Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_server_tls_and_cluster_seeds() {
        let t = RedisTarget::parse("redis://127.0.0.1:6379/0").unwrap();
        assert!(!t.is_cluster() && !t.is_tls());
        let t = RedisTarget::parse("rediss://h:6380").unwrap();
        assert!(!t.is_cluster() && t.is_tls());
        let t = RedisTarget::parse("redis://a:1,redis://b:2 , redis://c:3").unwrap();
        assert!(t.is_cluster() && !t.is_tls());
        assert_eq!(t.urls.len(), 3);
        assert!(RedisTarget::cluster(&["redis://a:1"]).unwrap().is_cluster());
    }

    #[test]
    fn refuses_bad_targets_without_showing_them() {
        for bad in [
            "",
            "redis://a:1,",
            "http://a:1",
            "redis://a:1,rediss://b:2",
            "unix:///tmp/r.sock,redis://a:1",
        ] {
            let e = RedisTarget::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("a:1"), "{e}");
        }
        let e = RedisTarget::parse("redis://:hunter2@h:1")
            .unwrap()
            .ca_pem("x")
            .unwrap_err();
        assert!(e.to_string().contains("rediss://"));
        assert!(!e.to_string().contains("hunter2"));
        assert!(RedisTarget::parse("rediss://h:1")
            .unwrap()
            .ca_pem("no")
            .is_err());
        assert!(RedisTarget::parse("rediss://h:1")
            .unwrap()
            .ca_file("/nonexistent/ca.pem")
            .is_err());
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        assert!(check_prefix("notes:").is_ok());
        assert!(check_prefix("{notes}:").is_err());
    }
}
