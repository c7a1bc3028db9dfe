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
    model::answer::{Answer, BoxFuture},
    verify::credentials::CredentialError,
    verify::credentials::RevocationList,
    verify::jwt::{now_secs, MAX_LEEWAY_SECS},
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

struct Family {
    session: Session,
    current: String,
    revoked: bool,
    /// When the current token expires (never after `ends_at`).
    expires_at: u64,
    /// The absolute end of the session: login + the maximum lifetime.
    ends_at: u64,
    /// Until when the record is kept (revoked: long enough to refuse the
    /// family's access tokens until they expire).
    keep_until: u64,
}

struct MemState {
    /// One record per family, whatever its number of rotations.
    families: HashMap<String, Family>,
    denied: HashMap<String, u64>,
    writes: u64,
    max_families: usize,
    max_secs: u64,
}

impl MemState {
    fn purge_sometimes(&mut self, now: u64) {
        self.writes += 1;
        if self.writes.is_multiple_of(1024) {
            self.purge(now);
        }
    }

    fn purge(&mut self, now: u64) {
        self.families.retain(|_, f| f.keep_until > now);
        self.denied.retain(|_, exp| *exp > now);
    }

    /// Room for one more family: expired records go first; then the live
    /// family nearest to its end is evicted (its user must log in again:
    /// the store fails closed, never open). Revoked families are never
    /// evicted before their time: `false` when only they are left.
    fn make_room(&mut self, now: u64) -> bool {
        if self.families.len() < self.max_families {
            return true;
        }
        self.purge(now);
        if self.families.len() < self.max_families {
            return true;
        }
        let victim = self
            .families
            .iter()
            .filter(|(_, f)| !f.revoked)
            .min_by_key(|(_, f)| f.expires_at)
            .map(|(k, _)| k.clone());
        match victim {
            Some(k) => {
                self.families.remove(&k);
                tracing::warn!(target: crate::AUDIT_TARGET, event = "session_evicted",
                    reason = "memory session store full");
                true
            }
            None => false,
        }
    }

    fn revoke(f: &mut Family, now: u64) {
        f.revoked = true;
        f.keep_until = f.keep_until.max(now + SESSION_REVOCATION_SECS);
    }

    fn session_revoked(&self, sid: &str, now: u64) -> bool {
        self.families
            .get(sid)
            .is_some_and(|f| f.revoked && f.keep_until > now)
    }
}

/// The embedded in-memory [`SessionStore`] (one process; use the Redis store
/// to share sessions between instances).
///
/// - **Bounded**: one record per family however often it rotates, and at
///   most [`max_families`](Self::max_families) families (default 100 000).
///   When full, expired records go first, then the live family nearest to
///   its end is evicted (its refresh token stops working: fail closed); if
///   only revoked families are left, a login is refused (503) rather than
///   forgetting a revocation.
/// - **Absolute lifetime**: a family ends [`max_secs`](Self::max_secs) after
///   its login (default 30 days), however often it rotates.
/// - **Session-wide revocation**: a revoked family (logout, reuse) refuses
///   every access token whose `sid` names it, answered without I/O; it is
///   remembered for [`SESSION_REVOCATION_SECS`] at least.
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
/// // Every access token of the session is now refused, without I/O.
/// assert!(matches!(store.is_token_revoked("any-jti", Some("f1")).now(), Ok(Ok(true))));
/// # });
/// ```
pub struct MemorySessionStore(Mutex<MemState>);

impl Default for MemorySessionStore {
    fn default() -> Self {
        MemorySessionStore(Mutex::new(MemState {
            families: HashMap::new(),
            denied: HashMap::new(),
            writes: 0,
            max_families: 100_000,
            max_secs: DEFAULT_SESSION_MAX_SECS,
        }))
    }
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most families kept at once (default 100 000, at least 1).
    #[must_use]
    pub fn max_families(self, n: usize) -> Self {
        self.with(|s| s.max_families = n.max(1));
        self
    }

    /// The absolute lifetime of a family from its login, in seconds
    /// (default 30 days).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use secure_runtime::{MemorySessionStore, Rotation, Session, SessionStore};
    /// let store = MemorySessionStore::new().max_secs(0);
    /// let s = Session { family: "f".into(), subject: "a".into(), scopes: vec![], roles: vec![], permissions: vec![] };
    /// store.create(&s, "h1", 60).await.unwrap();
    /// // Past its absolute end: no rotation, however fresh the token.
    /// assert_eq!(store.rotate("f", "h1", "h2", 60).await.unwrap(), Rotation::Invalid);
    /// # });
    /// ```
    #[must_use]
    pub fn max_secs(self, secs: u64) -> Self {
        self.with(|s| s.max_secs = secs);
        self
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn revoked(&self, jti: &str, sid: Option<&str>) -> bool {
        let now = now_secs();
        self.with(|s| {
            s.denied.get(jti).is_some_and(|exp| *exp > now)
                || sid.is_some_and(|sid| s.session_revoked(sid, now))
        })
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
        let created = self.with(|s| {
            s.purge_sometimes(now);
            if !s.make_room(now) {
                tracing::error!(target: crate::AUDIT_TARGET, event = "store_unavailable",
                    store = "memory-sessions", reason = "full of revoked sessions");
                return Err(CredentialError::Unavailable);
            }
            let ends_at = now.saturating_add(s.max_secs);
            let expires_at = now.saturating_add(ttl_secs).min(ends_at);
            s.families.insert(
                session.family.clone(),
                Family {
                    session: session.clone(),
                    current: token_hash.to_owned(),
                    revoked: false,
                    expires_at,
                    ends_at,
                    keep_until: expires_at,
                },
            );
            Ok(())
        });
        Box::pin(async move { created })
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
                MemState::revoke(f, now);
                return Rotation::Reused;
            }
            f.current = new_hash.to_owned();
            f.expires_at = now.saturating_add(ttl_secs).min(f.ends_at);
            f.keep_until = f.expires_at;
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
        let now = now_secs();
        self.with(|s| {
            if let Some(f) = s.families.get_mut(family) {
                MemState::revoke(f, now);
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
            // Through the leeway a verifier may still grant after `exp`.
            s.denied
                .insert(jti.to_owned(), exp.saturating_add(MAX_LEEWAY_SECS));
        });
        Box::pin(async { Ok(()) })
    }

    fn is_access_revoked<'a>(&'a self, jti: &'a str) -> Answer<'a, Result<bool, CredentialError>> {
        Answer::Ready(Ok(self.revoked(jti, None)))
    }

    fn is_token_revoked<'a>(
        &'a self,
        jti: &'a str,
        sid: Option<&'a str>,
    ) -> Answer<'a, Result<bool, CredentialError>> {
        Answer::Ready(Ok(self.revoked(jti, sid)))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn session(family: &str) -> Session {
        Session {
            family: family.into(),
            subject: "alice".into(),
            scopes: vec![],
            roles: vec![],
            permissions: vec![],
        }
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_family_is_one_record_however_often_it_rotates() {
        let store = MemorySessionStore::new();
        block(async {
            store.create(&session("f"), "h0", 60).await.unwrap();
            for i in 0..1000 {
                let r = store
                    .rotate("f", &format!("h{i}"), &format!("h{}", i + 1), 60)
                    .await
                    .unwrap();
                assert!(matches!(r, Rotation::Rotated(_)));
            }
            // Any of the 1000 rotated tokens is recognised as reuse.
            assert_eq!(
                store.rotate("f", "h17", "x", 60).await.unwrap(),
                Rotation::Reused
            );
        });
        store.with(|s| assert_eq!(s.families.len(), 1));
    }

    #[test]
    fn reuse_and_logout_end_every_access_token_of_the_session_without_io() {
        let store = MemorySessionStore::new();
        block(async {
            store.create(&session("f1"), "a", 60).await.unwrap();
            store.create(&session("f2"), "b", 60).await.unwrap();
            store.create(&session("f3"), "c", 60).await.unwrap();
            store.rotate("f1", "a", "a2", 60).await.unwrap();
            assert_eq!(
                store.rotate("f1", "a", "x", 60).await.unwrap(),
                Rotation::Reused
            );
            store.revoke_family("f2").await.unwrap();
        });
        for sid in ["f1", "f2"] {
            assert!(matches!(
                store.is_token_revoked("j", Some(sid)).now(),
                Ok(Ok(true))
            ));
        }
        assert!(matches!(
            store.is_token_revoked("j", Some("f3")).now(),
            Ok(Ok(false))
        ));
        assert!(matches!(
            store.is_token_revoked("j", None).now(),
            Ok(Ok(false))
        ));
        // Remembered long enough for the access tokens issued in it.
        store.with(|s| {
            let f = &s.families["f2"];
            assert!(f.keep_until >= now_secs() + SESSION_REVOCATION_SECS - 1);
        });
    }

    #[test]
    fn a_denied_jti_lives_through_the_leeway() {
        let store = MemorySessionStore::new();
        let exp = now_secs() - 5; // expired 5 s ago, still inside a 60 s leeway
        block(store.revoke_access("j", exp)).unwrap();
        assert!(matches!(store.is_access_revoked("j").now(), Ok(Ok(true))));
    }

    #[test]
    fn no_rotation_past_the_absolute_lifetime() {
        let store = MemorySessionStore::new().max_secs(100);
        block(async {
            store.create(&session("f"), "h1", 1000).await.unwrap();
            store.rotate("f", "h1", "h2", 1000).await.unwrap();
        });
        store.with(|s| {
            let f = &s.families["f"];
            assert!(f.expires_at <= f.ends_at && f.ends_at <= now_secs() + 100);
            // As if the login were 100 s ago.
            let f = s.families.get_mut("f").unwrap();
            f.ends_at = now_secs();
            f.expires_at = f.ends_at;
        });
        assert_eq!(
            block(store.rotate("f", "h2", "h3", 1000)).unwrap(),
            Rotation::Invalid
        );
    }

    #[test]
    fn a_full_store_evicts_the_live_family_nearest_its_end_and_never_a_revocation() {
        let store = MemorySessionStore::new().max_families(2);
        block(async {
            store.create(&session("old"), "o", 10).await.unwrap();
            store.create(&session("new"), "n", 1000).await.unwrap();
            store.create(&session("third"), "t", 1000).await.unwrap();
            // "old" was evicted: its token fails (closed), the others work.
            assert_eq!(
                store.rotate("old", "o", "o2", 10).await.unwrap(),
                Rotation::Invalid
            );
            assert_eq!(
                store.peek("new", "n").await.unwrap(),
                Peek::Current(session("new"))
            );
            // Two revoked families fill the store: a new login is refused
            // rather than a revocation forgotten.
            store.revoke_family("new").await.unwrap();
            store.revoke_family("third").await.unwrap();
            assert_eq!(
                store.create(&session("fourth"), "f", 1000).await,
                Err(CredentialError::Unavailable)
            );
        });
        assert!(matches!(
            store.is_token_revoked("j", Some("new")).now(),
            Ok(Ok(true))
        ));
    }
}
