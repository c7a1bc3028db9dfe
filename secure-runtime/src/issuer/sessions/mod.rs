//! Refresh-token sessions: opaque tokens stored as hashes, grouped in families,
//! rotated on every use; presenting a rotated token revokes its family. Also
//! the access-token `jti` denylist used by logout.
//!
//! A family is one record however often it rotates: the session and the hash
//! of its current token. A refresh token names its family, so a rotated one
//! is recognised as "of this family but not current" without a key per old
//! token.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    model::answer::{Answer, BoxFuture},
    verify::credentials::CredentialError,
    verify::credentials::RevocationList,
    verify::jwt::MAX_LEEWAY_SECS,
    web::security::SecurityBuilder,
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

    /// Whether a `jti` is denied: at once for an in-memory store
    /// ([`Answer::Ready`]), so that the guard decides without a future.
    fn is_access_revoked<'a>(&'a self, jti: &'a str) -> Answer<'a, Result<bool, CredentialError>>;

    /// Whether an access token is revoked: its `jti`, or its session `sid`
    /// (a revoked family ends every access token issued in it), at once for
    /// an in-memory store. The default checks only the `jti`.
    fn is_token_revoked<'a>(
        &'a self,
        jti: &'a str,
        sid: Option<&'a str>,
    ) -> Answer<'a, Result<bool, CredentialError>> {
        let _ = sid;
        self.is_access_revoked(jti)
    }
}

/// How long a revoked family is remembered at least, so that the access
/// tokens issued in it stay refused until they expire (access tokens are
/// meant to live minutes; up to a day is covered), plus the largest clock
/// leeway a verifier may grant.
pub const SESSION_REVOCATION_SECS: u64 = 24 * 3600 + MAX_LEEWAY_SECS;

/// The default absolute lifetime of a session (a family), from its login:
/// 30 days, however often it rotates.
pub const DEFAULT_SESSION_MAX_SECS: u64 = 30 * 24 * 3600;

/// The session store given to [`SecurityBuilder::sessions`]: the token
/// service finds it there, so it is given once.
#[derive(Clone)]
pub(crate) struct InstalledSessions(pub(crate) Arc<dyn SessionStore>);

impl SecurityBuilder {
    /// The session store of the token service: installed as the access-token
    /// revocation list (logout takes effect at once), and found there by
    /// [`TokenService::new`](crate::tokens::TokenService::new), so it is
    /// given once.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use secure_runtime::{MemorySessionStore, Security};
    /// let security = Security::builder().sessions(Arc::new(MemorySessionStore::new())).build().unwrap();
    /// assert!(security.has_revocations());
    /// ```
    pub fn sessions(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.extensions.insert(InstalledSessions(store.clone()));
        self.revocations(Revocations::of(store))
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
    fn is_revoked<'a>(&'a self, jti: &'a str) -> Answer<'a, Result<bool, CredentialError>> {
        self.0.is_access_revoked(jti)
    }
    fn is_token_revoked<'a>(
        &'a self,
        jti: &'a str,
        sid: Option<&'a str>,
    ) -> Answer<'a, Result<bool, CredentialError>> {
        self.0.is_token_revoked(jti, sid)
    }
}

mod memory;
pub use memory::MemorySessionStore;

#[cfg(feature = "redis")]
pub use self::redis_store::RedisSessionStore;

#[cfg(feature = "redis")]
mod redis_store {
    use std::time::Duration;

    use redis::Script;

    use super::{
        Peek, Rotation, Session, SessionStore, DEFAULT_SESSION_MAX_SECS, SESSION_REVOCATION_SECS,
    };
    use crate::{
        stores::redis_conn::{check_prefix, RedisConnection, RedisTarget},
        verify::credentials::CredentialError,
        verify::jwt::{now_secs, MAX_LEEWAY_SECS},
        Answer, BoxFuture, ConfigError,
    };

    /// Rotation in one atomic step on the family's one key (KEYS[1], a hash:
    /// `current`, `session`, `revoked`, `ends` = the absolute end):
    /// returns `{1, session}` when rotated, `{2}` on reuse (the family is
    /// revoked, and kept long enough to refuse its access tokens), `{0}` when
    /// unknown, expired, past its end or revoked.
    /// ARGV: presented hash, new hash, TTL, now (seconds), revocation TTL.
    const ROTATE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'current', 'revoked', 'session', 'ends')
if not f[1] or f[2] == '1' then return {0} end
local now = tonumber(ARGV[4])
local ends = tonumber(f[4]) or 0
if f[1] ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  if redis.call('TTL', KEYS[1]) < tonumber(ARGV[5]) then
    redis.call('EXPIRE', KEYS[1], ARGV[5])
  end
  return {2}
end
if ends <= now then return {0} end
redis.call('HSET', KEYS[1], 'current', ARGV[2])
redis.call('EXPIRE', KEYS[1], math.min(tonumber(ARGV[3]), ends - now))
return {1, f[3]}
";

    /// The session when ARGV[1] is the current token of the live family
    /// KEYS[1] (ARGV[2]: now), else false.
    const PEEK: &str = r"
local f = redis.call('HMGET', KEYS[1], 'current', 'revoked', 'session', 'ends')
if not f[1] or f[2] == '1' or f[1] ~= ARGV[1] then return false end
if (tonumber(f[4]) or 0) <= tonumber(ARGV[2]) then return false end
return f[3]
";

    /// 1 when the access token's `jti` (KEYS[1]) is denied or its family
    /// (KEYS[2]) revoked, else 0. One server only: the keys are in two slots.
    const CHECK: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('HGET', KEYS[2], 'revoked') == '1' then return 1 end
return 0
";

    /// Marks an existing family revoked (no stray key without a TTL), kept
    /// at least ARGV[1] seconds so that its access tokens stay refused.
    const REVOKE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  if redis.call('TTL', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
  end
end
return 1
";

    /// A [`SessionStore`] in Redis, shared by every instance of a service:
    /// one server, TLS, or a Redis Cluster (see [`RedisTarget`]).
    ///
    /// - **One key per family** (`{prefix}fam:{<family>}`, a hash with the
    ///   session, the current token's hash, the revocation flag and the
    ///   absolute end), whatever the number of rotations; it expires with
    ///   the family's last token, or [`SESSION_REVOCATION_SECS`] after a
    ///   revocation at the earliest, so that the family's access tokens stay
    ///   refused (`sid`).
    /// - **Absolute lifetime**: no rotation past [`max_secs`](Self::max_secs)
    ///   after the login (default 30 days).
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
        max_secs: u64,
        rotate: Script,
        peek: Script,
        revoke: Script,
        check: Script,
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
                max_secs: DEFAULT_SESSION_MAX_SECS,
                rotate: Script::new(ROTATE),
                peek: Script::new(PEEK),
                revoke: Script::new(REVOKE),
                check: Script::new(CHECK),
            })
        }

        /// The bound on each Redis call (default 500 ms).
        #[must_use]
        pub fn timeout(mut self, d: Duration) -> Self {
            self.timeout = d;
            self
        }

        /// The absolute lifetime of a family from its login, in seconds
        /// (default 30 days).
        #[must_use]
        pub fn max_secs(mut self, secs: u64) -> Self {
            self.max_secs = secs;
            self
        }

        /// The key of a family: the family id is the hash tag.
        pub fn family_key(&self, family: &str) -> String {
            format!("{}fam:{{{family}}}", self.prefix)
        }

        fn jti_key(&self, jti: &str) -> String {
            format!("{}jti:{}", self.prefix, jti)
        }

        async fn run<T>(
            &self,
            f: impl std::future::Future<Output = redis::RedisResult<T>>,
        ) -> Result<T, CredentialError> {
            crate::stores::redis_conn::bounded(self.timeout, "redis-sessions", f).await
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
                let ends = now_secs().saturating_add(self.max_secs).to_string();
                let ttl = ttl_secs.min(self.max_secs).max(1);
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
                            ("ends", ends.as_str()),
                        ],
                    )
                    .ignore()
                    .expire(&fk, i64::try_from(ttl).unwrap_or(i64::MAX))
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
                inv.arg(old_hash)
                    .arg(new_hash)
                    .arg(ttl_secs.max(1))
                    .arg(now_secs())
                    .arg(SESSION_REVOCATION_SECS);
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
                inv.arg(token_hash).arg(now_secs());
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
                        .arg(SESSION_REVOCATION_SECS)
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
                // Through the leeway a verifier may still grant after `exp`;
                // clamped: Redis refuses absurd expiries, and no access token
                // lives a year.
                let ttl = exp
                    .saturating_add(MAX_LEEWAY_SECS)
                    .saturating_sub(now_secs())
                    .clamp(1, 366 * 24 * 3600);
                let mut conn = self.conn.clone();
                let key = self.jti_key(jti);
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
        ) -> Answer<'a, Result<bool, CredentialError>> {
            Answer::later(async move {
                let mut conn = self.conn.clone();
                let key = self.jti_key(jti);
                self.run(redis::cmd("EXISTS").arg(key).query_async::<bool>(&mut conn))
                    .await
            })
        }

        fn is_token_revoked<'a>(
            &'a self,
            jti: &'a str,
            sid: Option<&'a str>,
        ) -> Answer<'a, Result<bool, CredentialError>> {
            let Some(sid) = sid else {
                return self.is_access_revoked(jti);
            };
            Answer::later(async move {
                let mut jti_conn = self.conn.clone();
                let mut fam_conn = self.conn.clone();
                let (jti_key, fam_key) = (self.jti_key(jti), self.family_key(sid));
                // One server: one script reads both keys (one command).
                // A cluster: the two keys live in two slots, which no
                // script or pipeline may span; two commands sent at once,
                // answered in one round trip's time.
                if !self.conn.is_cluster() {
                    let mut inv = self.check.key(jti_key);
                    inv.key(fam_key);
                    let revoked: i64 = self.run(inv.invoke_async(&mut jti_conn)).await?;
                    return Ok(revoked == 1);
                }
                let denied = redis::cmd("EXISTS").arg(&jti_key).clone();
                let family = redis::cmd("HGET").arg(&fam_key).arg("revoked").clone();
                let (denied, revoked) = tokio::join!(
                    self.run(denied.query_async::<bool>(&mut jti_conn)),
                    self.run(family.query_async::<Option<String>>(&mut fam_conn)),
                );
                Ok(denied? || revoked?.as_deref() == Some("1"))
            })
        }
    }
}
