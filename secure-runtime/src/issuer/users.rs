//! Users, their store, and password authentication that cannot be told apart
//! by status, body or timing.

use std::{collections::HashMap, fmt, sync::RwLock};

use serde::{Deserialize, Serialize};

use crate::{
    issuer::password::PasswordError, issuer::password::PasswordHasher,
    issuer::password::MAX_PASSWORD_BYTES, model::answer::Answer, model::answer::BoxFuture,
    model::audit::AUDIT_TARGET, model::principal::CredentialKind, model::principal::Principal,
    verify::credentials::BasicVerifier, verify::credentials::CredentialError,
};

/// A user as the app stores it. `password_hash` is a PHC string
/// (`$argon2id$...`); the plaintext is never stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The login name.
    pub username: String,
    /// The argon2 PHC string.
    pub password_hash: String,
    /// Roles held.
    pub roles: Vec<String>,
    /// Permissions held.
    pub permissions: Vec<String>,
    /// Scopes the user may be granted (a token request is intersected with it).
    pub scopes: Vec<String>,
    /// A disabled user cannot log in; the refusal looks like a wrong password.
    #[serde(default)]
    pub disabled: bool,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the hash.
        f.debug_struct("UserRecord")
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("permissions", &self.permissions)
            .field("scopes", &self.scopes)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Where users live. Implement it over your database; [`MemoryUserStore`]
/// serves examples and tests.
pub trait UserStore: Send + Sync + 'static {
    /// Looks a user up by name; `Err` when the store cannot be reached.
    fn find<'a>(
        &'a self,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, CredentialError>>;

    /// Stores an upgraded hash after a login whose hash used old parameters.
    /// The default keeps the old hash.
    fn update_hash<'a>(
        &'a self,
        _username: &'a str,
        _phc: String,
    ) -> BoxFuture<'a, Result<(), CredentialError>> {
        Box::pin(async { Ok(()) })
    }
}

/// An in-memory [`UserStore`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use secure_runtime::{MemoryUserStore, UserRecord, UserStore};
/// let store = MemoryUserStore::new([UserRecord {
///     username: "alice".into(),
///     password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
///     roles: vec!["user".into()],
///     permissions: vec![],
///     scopes: vec!["me".into()],
///     disabled: false,
/// }]);
/// assert!(store.find("alice").await.unwrap().is_some());
/// assert!(store.find("mallory").await.unwrap().is_none());
/// # });
/// ```
#[derive(Default)]
pub struct MemoryUserStore(RwLock<HashMap<String, UserRecord>>);

impl MemoryUserStore {
    /// A store holding `users`.
    pub fn new(users: impl IntoIterator<Item = UserRecord>) -> Self {
        MemoryUserStore(RwLock::new(
            users.into_iter().map(|u| (u.username.clone(), u)).collect(),
        ))
    }
    /// Adds or replaces a user.
    pub fn insert(&self, user: UserRecord) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        map.insert(user.username.clone(), user);
    }
    /// All users, sorted by name.
    pub fn list(&self) -> Vec<UserRecord> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<UserRecord> = map.values().cloned().collect();
        v.sort_by(|a, b| a.username.cmp(&b.username));
        v
    }
}

impl UserStore for MemoryUserStore {
    fn find<'a>(
        &'a self,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, CredentialError>> {
        let found = self
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(username)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn update_hash<'a>(
        &'a self,
        username: &'a str,
        phc: String,
    ) -> BoxFuture<'a, Result<(), CredentialError>> {
        if let Some(u) = self
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(username)
        {
            u.password_hash = phc;
        }
        Box::pin(async { Ok(()) })
    }
}

impl<S: UserStore> UserStore for std::sync::Arc<S> {
    fn find<'a>(
        &'a self,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, CredentialError>> {
        (**self).find(username)
    }
    fn update_hash<'a>(
        &'a self,
        username: &'a str,
        phc: String,
    ) -> BoxFuture<'a, Result<(), CredentialError>> {
        (**self).update_hash(username, phc)
    }
}

/// Why a login failed. [`LoginError::Invalid`] covers unknown user, wrong
/// password and disabled user alike: the reason goes to the audit log only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown user, wrong password or disabled user (indistinguishable).
    Invalid,
    /// The password is over [`MAX_PASSWORD_BYTES`] (a 400).
    TooLong,
    /// Hashing is saturated (a 503).
    Busy,
    /// The user store cannot be reached (a 503).
    Unavailable,
}

/// Password authentication against a [`UserStore`]: every failure costs the
/// same argon2 work (unknown users are verified against a dummy hash), hashes
/// with old parameters are upgraded on success. It is also the HTTP Basic
/// verifier (`auth = basic`).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use secure_runtime::{Authenticator, LoginError, MemoryUserStore, PasswordHasher, UserRecord};
/// let hasher = PasswordHasher::with_params(1024, 1, 1).unwrap();
/// let phc = hasher.hash("alice-password-1").await.unwrap();
/// let users = MemoryUserStore::new([UserRecord {
///     username: "alice".into(), password_hash: phc, roles: vec!["user".into()],
///     permissions: vec![], scopes: vec!["me".into()], disabled: false,
/// }]);
/// let auth = Authenticator::new(users, hasher);
/// assert_eq!(auth.authenticate("alice", "alice-password-1").await.unwrap().username, "alice");
/// assert_eq!(auth.authenticate("alice", "nope").await.unwrap_err(), LoginError::Invalid);
/// assert_eq!(auth.authenticate("mallory", "nope").await.unwrap_err(), LoginError::Invalid);
/// # });
/// ```
pub struct Authenticator {
    users: Box<dyn UserStore>,
    hasher: PasswordHasher,
}

impl Authenticator {
    /// Authenticates against `users` with `hasher`.
    pub fn new(users: impl UserStore, hasher: PasswordHasher) -> Self {
        Authenticator {
            users: Box::new(users),
            hasher,
        }
    }

    /// The hasher (to hash passwords of new users with the same parameters).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The user store.
    pub fn users(&self) -> &dyn UserStore {
        &*self.users
    }

    /// Verifies `username` / `password`.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserRecord, LoginError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(LoginError::TooLong);
        }
        if username.len() > MAX_USERNAME_BYTES {
            // No account has such a name: refused as an unknown user, with
            // no store lookup and no hashing.
            audit_failure(username, "user name too long");
            return Err(LoginError::Invalid);
        }
        let user = match self.users.find(username).await {
            Ok(u) => u,
            Err(_) => {
                tracing::error!(target: AUDIT_TARGET, event = "user_store_unavailable");
                return Err(LoginError::Unavailable);
            }
        };
        let Some(user) = user else {
            return match self.hasher.verify_dummy(password).await {
                PasswordError::Busy => Err(LoginError::Busy),
                _ => {
                    audit_failure(username, "unknown user");
                    Err(LoginError::Invalid)
                }
            };
        };
        match self.hasher.verify(password, &user.password_hash).await {
            Ok(_) if user.disabled => {
                audit_failure(username, "disabled user");
                Err(LoginError::Invalid)
            }
            Ok(v) => {
                if v.needs_rehash {
                    self.upgrade(username, password).await;
                }
                tracing::info!(target: AUDIT_TARGET, event = "login_success", username);
                Ok(user)
            }
            Err(PasswordError::Busy) => Err(LoginError::Busy),
            Err(PasswordError::TooLong) => Err(LoginError::TooLong),
            Err(PasswordError::BadHash) => {
                tracing::error!(target: AUDIT_TARGET, event = "bad_stored_hash", username);
                Err(LoginError::Invalid)
            }
            Err(PasswordError::Mismatch) => {
                audit_failure(username, "wrong password");
                Err(LoginError::Invalid)
            }
        }
    }

    async fn upgrade(&self, username: &str, password: &str) {
        match self.hasher.hash(password).await {
            Ok(phc) => {
                if self.users.update_hash(username, phc).await.is_err() {
                    tracing::warn!(target: AUDIT_TARGET, event = "rehash_not_stored", username);
                }
            }
            Err(_) => tracing::warn!(target: AUDIT_TARGET, event = "rehash_failed", username),
        }
    }
}

/// The longest user name a login accepts, in bytes; longer ones are refused
/// as unknown, before any lookup or hashing.
pub const MAX_USERNAME_BYTES: usize = 256;

/// How much of a submitted user name a log line shows.
const LOGGED_USERNAME_CHARS: usize = 64;

fn audit_failure(username: &str, reason: &'static str) {
    // The name is the client's input: log a bounded prefix, never a flood.
    let shown: String = username.chars().take(LOGGED_USERNAME_CHARS).collect();
    let cut = shown.len() < username.len();
    tracing::info!(target: AUDIT_TARGET, event = "login_failure", username = %shown,
        truncated = cut, reason);
}

/// The principal of an authenticated user: all its allowed scopes.
pub(crate) fn user_principal(kind: CredentialKind, u: &UserRecord) -> Principal {
    Principal::builder(kind, u.username.clone())
        .scopes(u.scopes.iter().cloned())
        .roles(u.roles.iter().cloned())
        .permissions(u.permissions.iter().cloned())
        .build()
}

impl BasicVerifier for Authenticator {
    fn verify<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
    ) -> Answer<'a, Result<Principal, CredentialError>> {
        Answer::later(async move {
            match self.authenticate(username, password).await {
                Ok(u) => Ok(user_principal(CredentialKind::Basic, &u)),
                Err(LoginError::Invalid | LoginError::TooLong) => Err(CredentialError::Invalid),
                Err(LoginError::Busy | LoginError::Unavailable) => {
                    Err(CredentialError::Unavailable)
                }
            }
        })
    }
}

impl<T: BasicVerifier> BasicVerifier for std::sync::Arc<T> {
    fn verify<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
    ) -> Answer<'a, Result<Principal, CredentialError>> {
        (**self).verify(username, password)
    }
}
