//! The runtime of [poem-secure](https://docs.rs/poem-secure): the policy model
//! that the macros generate, the guards that enforce it, JWT verification, the
//! credential and rate-limit extension points, and the OpenAPI glue.
//!
//! Most users depend on the facade crate `poem-secure`, which re-exports all of
//! this together with the macros.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// The layers, each using only the ones above it (see ARCHITECTURE.md).
mod decision;
mod hardening;
#[cfg(feature = "issuer")]
#[cfg_attr(docsrs, doc(cfg(feature = "issuer")))]
mod issuer;
mod model;
mod stores;
mod verify;
mod web;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
#[allow(clippy::panic)]
pub mod testing;

// Layer 1: the model.
pub use model::answer::{Answer, BoxFuture};
pub use model::audit::AUDIT_TARGET;
pub use model::catalogue::{is_scope_token, Catalogue, ScopeDecl};
pub use model::config::{BoxError, ConfigError};
pub use model::policy::{
    check_future, AuthKinds, CheckFn, CheckFuture, Policy, Rate, RateError, RateKey, RateKeyFn,
    Requirement, Roles, RATE_UNITS,
};
pub use model::principal::{CredentialKind, Principal, PrincipalBuilder};
pub use model::rate::{
    LimiterUnavailable, PartitionKey, RateDecision, RateLimiter, RateOutcome, RateQuery, RateStatus,
};
pub use model::rejection::{AuthRejection, Denied, RejectionKind};
pub use model::rule::{Rule, Unmet};

/// "Did you mean" for catalogue names, evaluated at compile time by the code
/// `#[secure]` generates. Not public API: no stability guarantee.
#[doc(hidden)]
pub mod __suggest {
    pub use crate::model::suggest::{edit_distance, undeclared, CrateCatalogue, Message, NameKind};
}

// Layer 2: verifiers.
pub use verify::claims::{BadClaim, ClaimMapping, MappedClaims};
pub use verify::credentials::{ApiKeyVerifier, BasicVerifier, CredentialError, RevocationList};
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use verify::discovery::{DiscoveredKeys, ProviderMetadata};
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use verify::introspection::Introspection;
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use verify::jwks::JwksClient;
pub use verify::jwt::{
    Algorithm, JwtConfig, KeySource, KeySourceDown, TokenError, MAX_LEEWAY_SECS,
};
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use verify::trust::HttpsTrust;

// Layer 3: stores.
pub use stores::rate::{ManualClock, MemoryRateLimiter};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use stores::rate::{RedisRateLimiter, RedisRateLimiterBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use stores::redis_conn::{RedisConnection, RedisTarget};

// Layer 4: the decision.
pub use decision::rate::UnknownClient;

// Layer 5: poem and poem-openapi.
pub use web::check_args::{check_argument, CheckArgument};
pub use web::client_ip::{ForwardedHeader, TrustedProxies};
pub use web::failure::{FailureAttempt, FailureLimit, LoginAttempt, LoginLimits};
pub use web::guard::{check_due, guard_check, typed_check, Guard, GuardCheck};
pub use web::matrix::{self, SecurityMatrix};
pub use web::middleware::SecurityEndpoint;
pub use web::openapi;
pub use web::response::problem;
pub use web::route::{self, Protected};
pub use web::security::{AccessToken, IssuedToken, Security, SecurityBuilder};
pub use web::types::StrictString;

// Layer 6: the issuer.
#[cfg(all(feature = "issuer", feature = "redis"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "issuer", feature = "redis"))))]
pub use issuer::{api_keys::RedisApiKeyStore, sessions::RedisSessionStore};
#[cfg(feature = "issuer")]
#[cfg_attr(docsrs, doc(cfg(feature = "issuer")))]
pub use issuer::{
    api_keys::{ApiKeyStore, ApiKeys, IssuedApiKey, MemoryApiKeyStore, StoredApiKey},
    password::{
        PasswordError, PasswordHasher, PasswordPolicy, PolicyViolation, Verified,
        MAX_PASSWORD_BYTES,
    },
    sessions::{
        MemorySessionStore, Peek, Revocations, Rotation, Session, SessionStore,
        DEFAULT_SESSION_MAX_SECS, SESSION_REVOCATION_SECS,
    },
    tokens,
    users::{
        Authenticator, LoginError, MemoryUserStore, UserRecord, UserStore, MAX_USERNAME_BYTES,
    },
};

// Hardening.
pub use hardening::{CorsPolicy, CorsRules, Hardening, HardeningEndpoint, RequestTraceId};
