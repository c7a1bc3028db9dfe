//! The runtime of [poem-secure](https://docs.rs/poem-secure): the policy model
//! that the macros generate, the guards that enforce it, JWT verification, the
//! credential and rate-limit extension points, and the OpenAPI glue.
//!
//! Most users depend on the facade crate `poem-secure`, which re-exports all of
//! this together with the macros.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod api_keys;
mod catalogue;
mod client_ip;
mod credentials;
mod error;
mod guard;
mod hardening;
#[cfg(feature = "jwks")]
mod jwks;
mod jwt;
pub mod openapi;
mod password;
mod policy;
mod principal;
mod rate;
#[cfg(feature = "redis")]
mod redis_conn;
#[cfg(feature = "redis")]
mod redis_store;
pub mod route;
mod secrets;
mod security;
mod sessions;
#[cfg(feature = "testing")]
#[allow(clippy::panic)]
pub mod testing;
pub mod tokens;
mod types;
mod users;

#[cfg(feature = "redis")]
pub use api_keys::RedisApiKeyStore;
pub use api_keys::{ApiKeyStore, ApiKeys, IssuedApiKey, MemoryApiKeyStore, StoredApiKey};
pub use catalogue::{is_scope_token, Catalogue, ScopeDecl};
pub use client_ip::{ForwardedHeader, TrustedProxies};
pub use credentials::{ApiKeyVerifier, BasicVerifier, BoxFuture, CredentialError, RevocationList};
pub use error::{problem, AuthRejection, Denied};
pub use guard::{guard_check, Guard, GuardCheck};
pub use hardening::{Cors, CorsPolicy, Hardening, HardeningEndpoint, RequestId};
#[cfg(feature = "jwks")]
pub use jwks::JwksClient;
pub use jwt::{Algorithm, JwtConfig, KeySource, KeySourceDown, TokenError, MAX_LEEWAY_SECS};
pub use password::{
    PasswordError, PasswordHasher, PasswordPolicy, PolicyViolation, Verified, MAX_PASSWORD_BYTES,
};
pub use policy::{
    check_future, AuthKinds, CheckFn, CheckFuture, Policy, Rate, RateKey, RateKeyFn, Requirement,
    Roles,
};
pub use principal::{CredentialKind, Principal, PrincipalBuilder};
pub use rate::{
    FailureAttempt, FailureLimit, LimiterUnavailable, LoginAttempt, LoginLimits, ManualClock,
    MemoryRateLimiter, PartitionKey, RateDecision, RateLimiter, RateOutcome, RateQuery, RateStatus,
};
#[cfg(feature = "redis")]
pub use rate::{RedisRateLimiter, RedisRateLimiterBuilder};
#[cfg(feature = "redis")]
pub use redis_conn::{RedisConnection, RedisTarget};
pub use route::Protected;
pub use security::{
    AccessToken, ConfigError, IssuedToken, Security, SecurityBuilder, SecurityEndpoint,
    AUDIT_TARGET,
};
#[cfg(feature = "redis")]
pub use sessions::RedisSessionStore;
pub use sessions::{
    MemorySessionStore, Peek, Revocations, Rotation, Session, SessionStore,
    DEFAULT_SESSION_MAX_SECS, SESSION_REVOCATION_SECS,
};
pub use types::StrictString;
pub use users::{Authenticator, LoginError, MemoryUserStore, UserRecord, UserStore};
