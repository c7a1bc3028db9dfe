//! Refresh-token sessions: opaque tokens stored as hashes, grouped in families,
//! rotated on every use; presenting a rotated token revokes its family. Also
//! the access-token `jti` denylist used by logout.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use crate::{
    model::answer::{Answer, BoxFuture},
    verify::credentials::CredentialError,
    verify::credentials::RevocationList,
    verify::jwt::now_secs,
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
/// token exactly one wins.
pub trait SessionStore: Send + Sync + 'static {
    /// Starts a family whose first token has hash `token_hash`, valid `ttl_secs`.
    fn create<'a>(
        &'a self,
        session: &'a Session,
        token_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<(), CredentialError>>;

    /// Presents `old_hash`; when current, replaces it by `new_hash` (valid
    /// `ttl_secs`). See [`Rotation`].
    fn rotate<'a>(
        &'a self,
        old_hash: &'a str,
        new_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<Rotation, CredentialError>>;

    /// Reads, without changing anything, whether `token_hash` is the current
    /// token of a live family. The token service checks the request (scopes,
    /// the user's state) before rotating, so that a refused or failed refresh
    /// leaves the token usable. The default answers
    /// [`Peek::Unsupported`] (the checks then run after the rotation).
    fn peek<'a>(&'a self, token_hash: &'a str) -> BoxFuture<'a, Result<Peek, CredentialError>> {
        let _ = token_hash;
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
}

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
}

struct Family {
    session: Session,
    current: String,
    revoked: bool,
    expires_at: u64,
}

#[derive(Default)]
struct MemState {
    /// token hash → (family, expiry); rotated tokens stay until they expire,
    /// so that their reuse is recognised.
    tokens: HashMap<String, (String, u64)>,
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
        self.tokens.retain(|_, (_, exp)| *exp > now);
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
/// assert_eq!(store.rotate("h1", "h2", 60).await.unwrap(), Rotation::Rotated(s.clone()));
/// assert_eq!(store.rotate("h1", "h3", 60).await.unwrap(), Rotation::Reused); // theft detected
/// assert_eq!(store.rotate("h2", "h4", 60).await.unwrap(), Rotation::Invalid); // family revoked
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
            s.tokens.insert(
                token_hash.to_owned(),
                (session.family.clone(), now + ttl_secs),
            );
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
        old_hash: &'a str,
        new_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<Rotation, CredentialError>> {
        let now = now_secs();
        let out = self.with(|s| {
            s.purge_sometimes(now);
            let Some((family, exp)) = s.tokens.get(old_hash).cloned() else {
                return Rotation::Invalid;
            };
            let Some(f) = s.families.get_mut(&family) else {
                return Rotation::Invalid;
            };
            if f.revoked || f.expires_at <= now {
                return Rotation::Invalid;
            }
            if f.current != old_hash {
                f.revoked = true;
                return Rotation::Reused;
            }
            if exp <= now {
                return Rotation::Invalid;
            }
            f.current = new_hash.to_owned();
            f.expires_at = now + ttl_secs;
            let session = f.session.clone();
            s.tokens
                .insert(new_hash.to_owned(), (family, now + ttl_secs));
            Rotation::Rotated(session)
        });
        Box::pin(async move { Ok(out) })
    }

    fn peek<'a>(&'a self, token_hash: &'a str) -> BoxFuture<'a, Result<Peek, CredentialError>> {
        let now = now_secs();
        let out = self.with(|s| {
            let Some((family, exp)) = s.tokens.get(token_hash) else {
                return Peek::NotCurrent;
            };
            match s.families.get(family) {
                Some(f)
                    if !f.revoked
                        && f.expires_at > now
                        && *exp > now
                        && f.current == token_hash =>
                {
                    Peek::Current(f.session.clone())
                }
                _ => Peek::NotCurrent,
            }
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

    fn is_access_revoked<'a>(&'a self, jti: &'a str) -> Answer<'a, Result<bool, CredentialError>> {
        Answer::Ready(Ok(self.denied(jti)))
    }
}

#[cfg(feature = "redis")]
pub use self::redis_store::RedisSessionStore;

#[cfg(feature = "redis")]
mod redis_store {
    use std::time::Duration;

    use redis::{aio::ConnectionManager, Script};

    use super::{Peek, Rotation, Session, SessionStore};
    use crate::{verify::credentials::CredentialError, Answer, BoxFuture};

    /// Rotation in one atomic step: returns `{1, session}` when rotated, `{2}`
    /// on reuse (the family is revoked), `{0}` when invalid.
    const ROTATE: &str = r"
local fam = redis.call('GET', KEYS[1])
if not fam then return {0} end
local fk = ARGV[3] .. 'fam:' .. fam
local cur = redis.call('HGET', fk, 'current')
if not cur then return {0} end
if redis.call('HGET', fk, 'revoked') == '1' then return {0} end
if cur ~= ARGV[1] then
  redis.call('HSET', fk, 'revoked', '1')
  return {2}
end
redis.call('HSET', fk, 'current', ARGV[2])
redis.call('SET', ARGV[3] .. 'rt:' .. ARGV[2], fam, 'EX', ARGV[4])
redis.call('EXPIRE', fk, ARGV[4])
return {1, redis.call('HGET', fk, 'session')}
";

    /// A [`SessionStore`] in Redis, shared by every instance of a service.
    /// Rotation is one Lua script (atomic); keys expire with their tokens.
    /// Every call is bounded by a timeout; an unreachable Redis refuses (503).
    #[derive(Clone)]
    pub struct RedisSessionStore {
        conn: ConnectionManager,
        prefix: String,
        timeout: Duration,
        rotate: Script,
    }

    impl RedisSessionStore {
        /// Connects to `url` (e.g. `redis://127.0.0.1:6379/0`); keys are
        /// prefixed with `prefix` (e.g. `"notes:"`).
        pub async fn connect(url: &str, prefix: &str) -> Result<Self, crate::ConfigError> {
            let conn = crate::stores::redis_conn::connect(url).await?;
            Ok(RedisSessionStore {
                conn,
                prefix: prefix.to_owned(),
                timeout: Duration::from_millis(500),
                rotate: Script::new(ROTATE),
            })
        }

        /// The bound on each Redis call (default 500 ms).
        pub fn timeout(mut self, d: Duration) -> Self {
            self.timeout = d;
            self
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
                let fk = format!("{}fam:{}", self.prefix, session.family);
                let tk = format!("{}rt:{}", self.prefix, token_hash);
                let mut conn = self.conn.clone();
                let mut pipe = redis::pipe();
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
                    .expire(&fk, ttl_secs as i64)
                    .ignore()
                    .set_ex(&tk, &session.family, ttl_secs)
                    .ignore();
                self.run(pipe.query_async::<()>(&mut conn)).await
            })
        }

        fn rotate<'a>(
            &'a self,
            old_hash: &'a str,
            new_hash: &'a str,
            ttl_secs: u64,
        ) -> BoxFuture<'a, Result<Rotation, CredentialError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                let mut inv = self.rotate.key(format!("{}rt:{}", self.prefix, old_hash));
                inv.arg(old_hash)
                    .arg(new_hash)
                    .arg(&self.prefix)
                    .arg(ttl_secs);
                let v = self
                    .run(inv.invoke_async::<Vec<redis::Value>>(&mut conn))
                    .await?;
                let code = match v.first() {
                    Some(redis::Value::Int(i)) => *i,
                    _ => 0,
                };
                let payload = match v.get(1) {
                    Some(redis::Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
                    _ => None,
                };
                let out = (code, payload);
                Ok(match out {
                    (1, Some(p)) => match serde_json::from_str::<Session>(&p) {
                        Ok(s) => Rotation::Rotated(s),
                        Err(_) => Rotation::Invalid,
                    },
                    (2, _) => Rotation::Reused,
                    _ => Rotation::Invalid,
                })
            })
        }

        fn peek<'a>(&'a self, token_hash: &'a str) -> BoxFuture<'a, Result<Peek, CredentialError>> {
            Box::pin(async move {
                let script = Script::new(
                    r"local fam = redis.call('GET', KEYS[1])
if not fam then return false end
local fk = ARGV[2] .. 'fam:' .. fam
if redis.call('HGET', fk, 'revoked') == '1' then return false end
if redis.call('HGET', fk, 'current') ~= ARGV[1] then return false end
return redis.call('HGET', fk, 'session')",
                );
                let mut conn = self.conn.clone();
                let mut inv = script.key(format!("{}rt:{}", self.prefix, token_hash));
                inv.arg(token_hash).arg(&self.prefix);
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
                let fk = format!("{}fam:{}", self.prefix, family);
                let mut conn = self.conn.clone();
                // Only an existing family is marked (no stray keys without TTL).
                let script = Script::new("if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'revoked', '1') end return 1");
                self.run(script.key(fk).invoke_async::<i64>(&mut conn))
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
                    .saturating_sub(crate::verify::jwt::now_secs())
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
        ) -> Answer<'a, Result<bool, CredentialError>> {
            Answer::later(async move {
                let mut conn = self.conn.clone();
                let key = format!("{}jti:{}", self.prefix, jti);
                self.run(redis::cmd("EXISTS").arg(key).query_async::<bool>(&mut conn))
                    .await
            })
        }
    }
}
