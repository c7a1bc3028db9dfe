//! Refresh-token sessions: opaque tokens stored as hashes, grouped in families,
//! rotated on every use; presenting a rotated token revokes its family. Also
//! the access-token `jti` denylist used by logout.
//!
//! A family is one record however often it rotates: the session and the hash
//! of its current token. A refresh token names its family, so a rotated one
//! is recognised as "of this family but not current" without a key per old
//! token.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use crate::{
    credentials::{BoxFuture, CredentialError, RevocationList},
    jwt::now_secs,
};

/// The session a refresh-token family stands for: what a refresh re-issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The family id (also the access tokens' `sid`).
    pub family: String,
    /// The user.
    pub subject: String,
    /// Granted scopes (never widened by a refresh).
    pub scopes: Vec<String>,
    /// Roles at login.
    pub roles: Vec<String>,
    /// Permissions at login.
    pub permissions: Vec<String>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now dead and `new_hash` is current.
    Rotated(Session),
    /// The token was already rotated: theft is assumed and the whole family
    /// is now revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// What [`SessionStore::peek`] finds for a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// The token is the current one of a live family.
    Current(Session),
    /// Unknown, expired, revoked, or already rotated.
    NotCurrent,
    /// The store does not implement `peek`.
    Unsupported,
}

/// Stores refresh-token families and revoked access tokens. Implementations
/// must make [`SessionStore::rotate`] atomic: of concurrent rotations of one
/// token exactly one wins. What is stored per family must not grow with its
/// rotations.
pub trait SessionStore: Send + Sync + 'static {
    /// Starts a family whose first token has hash `token_hash`, valid `ttl_secs`.
    fn create<'a>(
        &'a self,
        session: &'a Session,
        token_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<(), CredentialError>>;

    /// Presents `old_hash`, a token of `family`; when current, replaces it
    /// by `new_hash` (valid `ttl_secs`). Any other token presented for a live
    /// family is a rotated one (tokens are random; a forger would need the
    /// family id, which only the session's own tokens carry): the family is
    /// revoked ([`Rotation::Reused`]). See [`Rotation`].
    fn rotate<'a>(
        &'a self,
        family: &'a str,
        old_hash: &'a str,
        new_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<Rotation, CredentialError>>;

    /// Reads, without changing anything, whether `token_hash` is the current
    /// token of the live `family`. The token service checks the request (scopes,
    /// the user's state) before rotating, so that a refused or failed refresh
    /// leaves the token usable. The default answers
    /// [`Peek::Unsupported`] (the checks then run after the rotation).
    fn peek<'a>(
        &'a self,
        family: &'a str,
        token_hash: &'a str,
    ) -> BoxFuture<'a, Result<Peek, CredentialError>> {
        let _ = (family, token_hash);
        Box::pin(async { Ok(Peek::Unsupported) })
    }

    /// Revokes a family: none of its refresh tokens works any more.
    fn revoke_family<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<(), CredentialError>>;

    /// Denies an access token's `jti` until `exp` (seconds since the epoch).
    fn revoke_access<'a>(
        &'a self,
        jti: &'a str,
        exp: u64,
    ) -> BoxFuture<'a, Result<(), CredentialError>>;

    /// Whether a `jti` is denied.
    fn is_access_revoked<'a>(
        &'a self,
        jti: &'a str,
    ) -> BoxFuture<'a, Result<bool, CredentialError>>;

    /// The same as [`is_access_revoked`](Self::is_access_revoked) for stores
    /// that answer without I/O, so that the guard decides without a boxed
    /// future; `None` (the default): use `is_access_revoked`.
    fn is_access_revoked_now(&self, jti: &str) -> Option<Result<bool, CredentialError>> {
        let _ = jti;
        None
    }
}

/// The denylist side of a [`SessionStore`], to install with
/// `Security::builder().revocations(...)`.
pub struct Revocations(Arc<dyn SessionStore>);

impl Revocations {
    /// The denylist of `store`.
    pub fn of(store: Arc<dyn SessionStore>) -> Self {
        Revocations(store)
    }
}

impl RevocationList for Revocations {
    fn is_revoked<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, CredentialError>> {
        self.0.is_access_revoked(jti)
    }
    fn is_revoked_now(&self, jti: &str) -> Option<Result<bool, CredentialError>> {
        self.0.is_access_revoked_now(jti)
    }
}

struct Family {
    session: Session,
    current: String,
    revoked: bool,
    expires_at: u64,
}

#[derive(Default)]
struct MemState {
    /// One record per family, whatever its number of rotations.
    families: HashMap<String, Family>,
    denied: HashMap<String, u64>,
    writes: u64,
}

impl MemState {
    fn purge_sometimes(&mut self, now: u64) {
        self.writes += 1;
        if !self.writes.is_multiple_of(1024) {
            return;
        }
        self.families.retain(|_, f| f.expires_at > now);
        self.denied.retain(|_, exp| *exp > now);
    }
}

/// The embedded in-memory [`SessionStore`] (one process; use the Redis store
/// to share sessions between instances). Expired entries are purged as it is
/// written to.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use secure_runtime::{MemorySessionStore, Rotation, Session, SessionStore};
/// let store = MemorySessionStore::new();
/// let s = Session { family: "f1".into(), subject: "alice".into(), scopes: vec![], roles: vec![], permissions: vec![] };
/// store.create(&s, "h1", 60).await.unwrap();
/// assert_eq!(store.rotate("f1", "h1", "h2", 60).await.unwrap(), Rotation::Rotated(s.clone()));
/// assert_eq!(store.rotate("f1", "h1", "h3", 60).await.unwrap(), Rotation::Reused); // theft detected
/// assert_eq!(store.rotate("f1", "h2", "h4", 60).await.unwrap(), Rotation::Invalid); // family revoked
/// # });
/// ```
#[derive(Default)]
pub struct MemorySessionStore(Mutex<MemState>);

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether `jti` is on the denylist and not yet expired.
    fn denied(&self, jti: &str) -> bool {
        let now = now_secs();
        self.with(|s| s.denied.get(jti).is_some_and(|exp| *exp > now))
    }
}

impl SessionStore for MemorySessionStore {
    fn create<'a>(
        &'a self,
        session: &'a Session,
        token_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<(), CredentialError>> {
        let now = now_secs();
        self.with(|s| {
            s.purge_sometimes(now);
            s.families.insert(
                session.family.clone(),
                Family {
                    session: session.clone(),
                    current: token_hash.to_owned(),
                    revoked: false,
                    expires_at: now + ttl_secs,
                },
            );
        });
        Box::pin(async { Ok(()) })
    }

    fn rotate<'a>(
        &'a self,
        family: &'a str,
        old_hash: &'a str,
        new_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<Rotation, CredentialError>> {
        let now = now_secs();
        let out = self.with(|s| {
            s.purge_sometimes(now);
            let Some(f) = s.families.get_mut(family) else {
                return Rotation::Invalid;
            };
            if f.revoked || f.expires_at <= now {
                return Rotation::Invalid;
            }
            if f.current != old_hash {
                f.revoked = true;
                return Rotation::Reused;
            }
            f.current = new_hash.to_owned();
            f.expires_at = now + ttl_secs;
            Rotation::Rotated(f.session.clone())
        });
        Box::pin(async move { Ok(out) })
    }

    fn peek<'a>(
        &'a self,
        family: &'a str,
        token_hash: &'a str,
    ) -> BoxFuture<'a, Result<Peek, CredentialError>> {
        let now = now_secs();
        let out = self.with(|s| match s.families.get(family) {
            Some(f) if !f.revoked && f.expires_at > now && f.current == token_hash => {
                Peek::Current(f.session.clone())
            }
            _ => Peek::NotCurrent,
        });
        Box::pin(async move { Ok(out) })
    }

    fn revoke_family<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<(), CredentialError>> {
        self.with(|s| {
            if let Some(f) = s.families.get_mut(family) {
                f.revoked = true;
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn revoke_access<'a>(
        &'a self,
        jti: &'a str,
        exp: u64,
    ) -> BoxFuture<'a, Result<(), CredentialError>> {
        let now = now_secs();
        self.with(|s| {
            s.purge_sometimes(now);
            s.denied.insert(jti.to_owned(), exp);
        });
        Box::pin(async { Ok(()) })
    }

    fn is_access_revoked<'a>(
        &'a self,
        jti: &'a str,
    ) -> BoxFuture<'a, Result<bool, CredentialError>> {
        let revoked = self.denied(jti);
        Box::pin(async move { Ok(revoked) })
    }

    fn is_access_revoked_now(&self, jti: &str) -> Option<Result<bool, CredentialError>> {
        Some(Ok(self.denied(jti)))
    }
}

#[cfg(feature = "redis")]
pub use self::redis_store::RedisSessionStore;

#[cfg(feature = "redis")]
mod redis_store {
    use std::time::Duration;

    use redis::Script;

    use super::{Peek, Rotation, Session, SessionStore};
    use crate::{
        credentials::{BoxFuture, CredentialError},
        redis_conn::{check_prefix, RedisConnection, RedisTarget},
        ConfigError,
    };

    /// Rotation in one atomic step on the family's one key (KEYS[1]):
    /// returns `{1, session}` when rotated, `{2}` on reuse (the family is
    /// revoked), `{0}` when unknown, expired or revoked.
    /// ARGV: presented hash, new hash, TTL in seconds.
    const ROTATE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'current', 'revoked', 'session')
if not f[1] or f[2] == '1' then return {0} end
if f[1] ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {2}
end
redis.call('HSET', KEYS[1], 'current', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, f[3]}
";

    /// The session when ARGV[1] is the current token of the live family
    /// KEYS[1], else false.
    const PEEK: &str = r"
local f = redis.call('HMGET', KEYS[1], 'current', 'revoked', 'session')
if not f[1] or f[2] == '1' or f[1] ~= ARGV[1] then return false end
return f[3]
";

    /// Marks an existing family revoked (no stray key without a TTL).
    const REVOKE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'revoked', '1') end
return 1
";

    /// A [`SessionStore`] in Redis, shared by every instance of a service:
    /// one server, TLS, or a Redis Cluster (see [`RedisTarget`]).
    ///
    /// - **One key per family** (`{prefix}fam:{<family>}`, a hash with the
    ///   session, the current token's hash and the revocation flag), whatever
    ///   the number of rotations; it expires with the family's last token.
    /// - **One round trip per rotation**: a Lua script that declares its only
    ///   key, so it runs on the node that serves the family in a cluster.
    /// - Denied access tokens: `{prefix}jti:<jti>`, until their expiry.
    /// - Every call is bounded by a timeout; an unreachable Redis, a lost
    ///   connection or a cluster failover refuses (503) while it lasts, and
    ///   the connection recovers by itself.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), secure_runtime::ConfigError> {
    /// use secure_runtime::RedisSessionStore;
    /// // One server, TLS, or cluster seeds: "redis://a:7000,redis://b:7000".
    /// let store = RedisSessionStore::connect("rediss://redis.internal:6380/", "notes:").await?;
    /// # let _ = store; Ok(()) }
    /// ```
    #[derive(Clone)]
    pub struct RedisSessionStore {
        conn: RedisConnection,
        prefix: String,
        timeout: Duration,
        rotate: Script,
        peek: Script,
        revoke: Script,
    }

    impl RedisSessionStore {
        /// Connects to `url` (one server, `rediss://`, or comma-separated
        /// cluster seeds; see [`RedisTarget`]) within 5 s; keys are prefixed
        /// with `prefix` (e.g. `"notes:"`).
        ///
        /// # Errors
        /// A [`ConfigError`] for a malformed URL or prefix, or a Redis that
        /// does not answer.
        pub async fn connect(url: &str, prefix: &str) -> Result<Self, ConfigError> {
            check_prefix(prefix)?;
            let conn = RedisTarget::parse(url)?
                .connect(Duration::from_secs(5))
                .await?;
            Self::new(conn, prefix)
        }

        /// A store over an existing connection (shared with other stores).
        ///
        /// # Errors
        /// A [`ConfigError`] for a prefix with `{` or `}`.
        pub fn new(conn: RedisConnection, prefix: &str) -> Result<Self, ConfigError> {
            check_prefix(prefix)?;
            Ok(RedisSessionStore {
                conn,
                prefix: prefix.to_owned(),
                timeout: Duration::from_millis(500),
                rotate: Script::new(ROTATE),
                peek: Script::new(PEEK),
                revoke: Script::new(REVOKE),
            })
        }

        /// The bound on each Redis call (default 500 ms).
        #[must_use]
        pub fn timeout(mut self, d: Duration) -> Self {
            self.timeout = d;
            self
        }

        /// The key of a family: the family id is the hash tag.
        pub fn family_key(&self, family: &str) -> String {
            format!("{}fam:{{{family}}}", self.prefix)
        }

        async fn run<T>(
            &self,
            f: impl std::future::Future<Output = redis::RedisResult<T>>,
        ) -> Result<T, CredentialError> {
            crate::redis_store::bounded(self.timeout, "redis-sessions", f).await
        }
    }

    impl SessionStore for RedisSessionStore {
        fn create<'a>(
            &'a self,
            session: &'a Session,
            token_hash: &'a str,
            ttl_secs: u64,
        ) -> BoxFuture<'a, Result<(), CredentialError>> {
            Box::pin(async move {
                let payload =
                    serde_json::to_string(session).map_err(|_| CredentialError::Unavailable)?;
                let fk = self.family_key(&session.family);
                let mut conn = self.conn.clone();
                let mut pipe = redis::pipe();
                // One key: a transaction is valid on a cluster too.
                pipe.atomic()
                    .hset_multiple(
                        &fk,
                        &[
                            ("current", token_hash),
                            ("session", payload.as_str()),
                            ("revoked", "0"),
                        ],
                    )
                    .ignore()
                    .expire(&fk, i64::try_from(ttl_secs).unwrap_or(i64::MAX))
                    .ignore();
                self.run(pipe.query_async::<()>(&mut conn)).await
            })
        }

        fn rotate<'a>(
            &'a self,
            family: &'a str,
            old_hash: &'a str,
            new_hash: &'a str,
            ttl_secs: u64,
        ) -> BoxFuture<'a, Result<Rotation, CredentialError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                let mut inv = self.rotate.key(self.family_key(family));
                inv.arg(old_hash).arg(new_hash).arg(ttl_secs.max(1));
                let v = self
                    .run(inv.invoke_async::<Vec<redis::Value>>(&mut conn))
                    .await?;
                let code = match v.first() {
                    Some(redis::Value::Int(i)) => *i,
                    _ => 0,
                };
                Ok(match (code, v.get(1)) {
                    (1, Some(redis::Value::BulkString(p))) => {
                        match serde_json::from_slice::<Session>(p) {
                            Ok(s) => Rotation::Rotated(s),
                            Err(_) => Rotation::Invalid,
                        }
                    }
                    (2, _) => Rotation::Reused,
                    _ => Rotation::Invalid,
                })
            })
        }

        fn peek<'a>(
            &'a self,
            family: &'a str,
            token_hash: &'a str,
        ) -> BoxFuture<'a, Result<Peek, CredentialError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                let mut inv = self.peek.key(self.family_key(family));
                inv.arg(token_hash);
                let payload: Option<String> = self.run(inv.invoke_async(&mut conn)).await?;
                Ok(
                    match payload.and_then(|p| serde_json::from_str::<Session>(&p).ok()) {
                        Some(s) => Peek::Current(s),
                        None => Peek::NotCurrent,
                    },
                )
            })
        }

        fn revoke_family<'a>(
            &'a self,
            family: &'a str,
        ) -> BoxFuture<'a, Result<(), CredentialError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                self.run(
                    self.revoke
                        .key(self.family_key(family))
                        .invoke_async::<i64>(&mut conn),
                )
                .await
                .map(|_| ())
            })
        }

        fn revoke_access<'a>(
            &'a self,
            jti: &'a str,
            exp: u64,
        ) -> BoxFuture<'a, Result<(), CredentialError>> {
            Box::pin(async move {
                // Clamped: Redis refuses absurd expiries, and no access token lives a year.
                let ttl = exp
                    .saturating_sub(crate::jwt::now_secs())
                    .clamp(1, 366 * 24 * 3600);
                let mut conn = self.conn.clone();
                let key = format!("{}jti:{}", self.prefix, jti);
                self.run(
                    redis::cmd("SET")
                        .arg(key)
                        .arg(1)
                        .arg("EX")
                        .arg(ttl)
                        .query_async::<()>(&mut conn),
                )
                .await
            })
        }

        fn is_access_revoked<'a>(
            &'a self,
            jti: &'a str,
        ) -> BoxFuture<'a, Result<bool, CredentialError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                let key = format!("{}jti:{}", self.prefix, jti);
                self.run(redis::cmd("EXISTS").arg(key).query_async::<bool>(&mut conn))
                    .await
            })
        }
    }
}
