//! API keys: issued as `prefix.secret`, stored hashed, verified in constant
//! time, revocable with immediate effect.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use crate::{
    model::answer::Answer, model::answer::BoxFuture, model::audit::AUDIT_TARGET,
    model::principal::CredentialKind, model::principal::Principal, model::secrets::hash_secret,
    model::secrets::hashes_equal, model::secrets::random_secret,
    verify::credentials::ApiKeyVerifier, verify::credentials::CredentialError,
    verify::jwt::now_secs,
};

/// An API key as stored: everything but the secret, of which only a hash is
/// kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredApiKey {
    /// The public prefix: identifies the key in look-ups and logs.
    pub id: String,
    /// A label given at creation.
    pub name: String,
    /// The principal the key acts as.
    pub owner: String,
    /// Scopes the key carries.
    pub scopes: Vec<String>,
    /// Creation time (seconds since the epoch).
    pub created_at: u64,
    /// Expiry (seconds since the epoch), if any.
    pub expires_at: Option<u64>,
    /// Revoked keys stop working at once.
    pub revoked: bool,
    /// SHA-256 of the secret (base64url).
    pub secret_hash: String,
}

impl fmt::Debug for StoredApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// A key just issued: `key` is the full `prefix.secret`, shown this once.
#[derive(Clone)]
pub struct IssuedApiKey {
    /// The full key to give to the client.
    pub key: String,
    /// The stored record.
    pub record: StoredApiKey,
}

impl fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Where API keys live.
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a new key.
    fn insert<'a>(&'a self, key: &'a StoredApiKey) -> BoxFuture<'a, Result<(), CredentialError>>;
    /// Looks a key up by its prefix.
    fn get<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredApiKey>, CredentialError>>;
    /// All keys (revoked ones included), by prefix.
    fn list(&self) -> BoxFuture<'_, Result<Vec<StoredApiKey>, CredentialError>>;
    /// Marks a key revoked; `Ok(false)` when it does not exist.
    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, CredentialError>>;
}

/// The embedded in-memory [`ApiKeyStore`].
#[derive(Default)]
pub struct MemoryApiKeyStore(Mutex<BTreeMap<String, StoredApiKey>>);

impl MemoryApiKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, StoredApiKey>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ApiKeyStore for MemoryApiKeyStore {
    fn insert<'a>(&'a self, key: &'a StoredApiKey) -> BoxFuture<'a, Result<(), CredentialError>> {
        self.with(|m| m.insert(key.id.clone(), key.clone()));
        Box::pin(async { Ok(()) })
    }
    fn get<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredApiKey>, CredentialError>> {
        let k = self.with(|m| m.get(id).cloned());
        Box::pin(async move { Ok(k) })
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<StoredApiKey>, CredentialError>> {
        let v = self.with(|m| m.values().cloned().collect());
        Box::pin(async move { Ok(v) })
    }
    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, CredentialError>> {
        let found = self.with(|m| m.get_mut(id).map(|k| k.revoked = true).is_some());
        Box::pin(async move { Ok(found) })
    }
}

/// Issues, lists, revokes and verifies API keys over a store. Cheap to clone;
/// install a clone with `Security::builder().api_keys(keys.clone())`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use secure_runtime::{ApiKeyVerifier, ApiKeys, CredentialError, MemoryApiKeyStore};
/// let keys = ApiKeys::new(MemoryApiKeyStore::new());
/// let issued = keys.issue("stats exporter", "svc-stats", &["stats:read"], None).await.unwrap();
/// let (prefix, _secret) = issued.key.split_once('.').unwrap();
/// assert_eq!(prefix, issued.record.id);
/// let who = keys.verify(&issued.key).await.unwrap();
/// assert_eq!((who.subject(), who.key_id()), ("svc-stats", Some(prefix)));
/// assert!(keys.revoke(prefix).await.unwrap());
/// assert_eq!(keys.verify(&issued.key).await.unwrap_err(), CredentialError::Invalid);
/// # });
/// ```
#[derive(Clone)]
pub struct ApiKeys(Arc<dyn ApiKeyStore>);

impl ApiKeys {
    /// Keys kept in `store`.
    pub fn new(store: impl ApiKeyStore) -> Self {
        ApiKeys(Arc::new(store))
    }

    /// Issues a key for `owner` with `scopes`, valid `expires_in_secs` (or
    /// forever). The returned `key` is the only copy of the secret.
    pub async fn issue(
        &self,
        name: &str,
        owner: &str,
        scopes: &[&str],
        expires_in_secs: Option<u64>,
    ) -> Result<IssuedApiKey, CredentialError> {
        let (Some(id), Some(secret)) = (random_secret(9), random_secret(32)) else {
            return Err(CredentialError::Unavailable);
        };
        let now = now_secs();
        let record = StoredApiKey {
            id: id.clone(),
            name: name.to_owned(),
            owner: owner.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            created_at: now,
            expires_at: expires_in_secs.map(|s| now + s),
            revoked: false,
            secret_hash: hash_secret(&secret),
        };
        self.0.insert(&record).await?;
        tracing::info!(target: AUDIT_TARGET, event = "api_key_created", key_id = %id, owner);
        Ok(IssuedApiKey {
            key: format!("{id}.{secret}"),
            record,
        })
    }

    /// Every key (without secrets).
    pub async fn list(&self) -> Result<Vec<StoredApiKey>, CredentialError> {
        self.0.list().await
    }

    /// Revokes a key by prefix; it stops working at once.
    pub async fn revoke(&self, id: &str) -> Result<bool, CredentialError> {
        let found = self.0.revoke(id).await?;
        if found {
            tracing::info!(target: AUDIT_TARGET, event = "api_key_revoked", key_id = %id);
        }
        Ok(found)
    }
}

impl ApiKeyVerifier for ApiKeys {
    fn verify<'a>(&'a self, presented: &'a str) -> Answer<'a, Result<Principal, CredentialError>> {
        Answer::later(async move {
            let Some((id, secret)) = presented.split_once('.') else {
                return Err(CredentialError::Invalid);
            };
            if id.is_empty() || id.len() > 64 || secret.len() > 256 {
                return Err(CredentialError::Invalid);
            }
            let Some(k) = self.0.get(id).await? else {
                return Err(CredentialError::Invalid);
            };
            // Compare before looking at the state, so every refusal of a known
            // prefix costs the same.
            let matches = hashes_equal(&hash_secret(secret), &k.secret_hash);
            let live = !k.revoked && k.expires_at.is_none_or(|e| e > now_secs());
            if !(matches && live) {
                return Err(CredentialError::Invalid);
            }
            tracing::debug!(target: AUDIT_TARGET, event = "api_key_used", key_id = %k.id);
            Ok(Principal::builder(CredentialKind::ApiKey, k.owner)
                .scopes(k.scopes)
                .key_id(k.id)
                .build())
        })
    }
}

#[cfg(feature = "redis")]
pub use self::redis_store::RedisApiKeyStore;

#[cfg(feature = "redis")]
mod redis_store {
    use std::time::Duration;

    use super::{ApiKeyStore, StoredApiKey};
    use crate::{
        stores::redis_conn::{check_prefix, RedisConnection, RedisTarget},
        verify::credentials::CredentialError,
        BoxFuture, ConfigError,
    };

    /// Marks an existing key revoked; both keys share the key id's slot.
    const REVOKE: &str = r"if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], '1')
return 1";

    /// An [`ApiKeyStore`] in Redis, shared by every instance of a service:
    /// one server, TLS, or a Redis Cluster (see [`RedisTarget`]). A key's
    /// record (`{prefix}ak:{<id>}`) and its revocation flag
    /// (`{prefix}ak-revoked:{<id>}`) share a hash tag, so a verification is
    /// one round trip on any deployment.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), secure_runtime::ConfigError> {
    /// use secure_runtime::{ApiKeys, RedisApiKeyStore};
    /// let keys = ApiKeys::new(RedisApiKeyStore::connect("redis://127.0.0.1:6379/", "notes:").await?);
    /// # let _ = keys; Ok(()) }
    /// ```
    #[derive(Clone)]
    pub struct RedisApiKeyStore {
        conn: RedisConnection,
        prefix: String,
        timeout: Duration,
        revoke: redis::Script,
    }

    impl RedisApiKeyStore {
        /// Connects to `url` (one server, `rediss://`, or comma-separated
        /// cluster seeds; see [`RedisTarget`]) within 5 s; keys are prefixed
        /// with `prefix`.
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
            Ok(RedisApiKeyStore {
                conn,
                prefix: prefix.to_owned(),
                timeout: Duration::from_millis(500),
                revoke: redis::Script::new(REVOKE),
            })
        }

        /// The bound on each Redis call (default 500 ms).
        #[must_use]
        pub fn timeout(mut self, d: Duration) -> Self {
            self.timeout = d;
            self
        }

        async fn run<T>(
            &self,
            f: impl std::future::Future<Output = redis::RedisResult<T>>,
        ) -> Result<T, CredentialError> {
            crate::stores::redis_conn::bounded(self.timeout, "redis-api-keys", f).await
        }

        fn key(&self, id: &str) -> String {
            format!("{}ak:{{{id}}}", self.prefix)
        }

        fn revoked_key(&self, id: &str) -> String {
            format!("{}ak-revoked:{{{id}}}", self.prefix)
        }
    }

    impl ApiKeyStore for RedisApiKeyStore {
        fn insert<'a>(
            &'a self,
            key: &'a StoredApiKey,
        ) -> BoxFuture<'a, Result<(), CredentialError>> {
            Box::pin(async move {
                let json = serde_json::to_string(key).map_err(|_| CredentialError::Unavailable)?;
                let mut conn = self.conn.clone();
                // Two keys in two slots: the index first, so that a listed
                // id without a record (a failed second write) is skipped,
                // never a record that cannot be listed.
                self.run(
                    redis::cmd("SADD")
                        .arg(format!("{}ak-index", self.prefix))
                        .arg(&key.id)
                        .query_async::<()>(&mut conn),
                )
                .await?;
                self.run(
                    redis::cmd("SET")
                        .arg(self.key(&key.id))
                        .arg(json)
                        .query_async::<()>(&mut conn),
                )
                .await
            })
        }

        fn get<'a>(
            &'a self,
            id: &'a str,
        ) -> BoxFuture<'a, Result<Option<StoredApiKey>, CredentialError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                // The record and its revocation flag, read together.
                let (raw, revoked): (Option<String>, Option<String>) = self
                    .run(
                        redis::cmd("MGET")
                            .arg(self.key(id))
                            .arg(self.revoked_key(id))
                            .query_async(&mut conn),
                    )
                    .await?;
                Ok(raw
                    .and_then(|r| serde_json::from_str::<StoredApiKey>(&r).ok())
                    .map(|mut k| {
                        k.revoked |= revoked.is_some();
                        k
                    }))
            })
        }

        fn list(&self) -> BoxFuture<'_, Result<Vec<StoredApiKey>, CredentialError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                let mut ids: Vec<String> = self
                    .run(
                        redis::cmd("SMEMBERS")
                            .arg(format!("{}ak-index", self.prefix))
                            .query_async(&mut conn),
                    )
                    .await?;
                ids.sort();
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(k) = self.get(&id).await? {
                        out.push(k);
                    }
                }
                Ok(out)
            })
        }

        fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, CredentialError>> {
            Box::pin(async move {
                // A separate flag, set only for an existing key: the record
                // itself is never rewritten.
                let mut conn = self.conn.clone();
                let n: i64 = self
                    .run(
                        self.revoke
                            .key(self.key(id))
                            .key(self.revoked_key(id))
                            .invoke_async(&mut conn),
                    )
                    .await?;
                Ok(n == 1)
            })
        }
    }
}
