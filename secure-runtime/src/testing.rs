//! Test helpers (feature `testing`), for use with poem's `TestClient`, the
//! way FastAPI's `dependency_overrides` or Spring's `@WithMockUser` are used:
//!
//! - [`principal`]: a mock caller (subject, scopes, roles, permissions,
//!   claims) that the app's own [`Security`] admits **whatever verifier it
//!   uses** (JWKS, discovery, introspection, API keys, Basic), through the
//!   same decision as a real credential. Use it to test the production
//!   verifier configuration.
//! - [`token`]: a real JWT signed with the app's own key, for apps that
//!   issue their tokens (it needs a signing key).
//!
//! Enable the feature in `[dev-dependencies]` only; it is never compiled into a
//! release build unless asked for:
//! ```toml
//! [dev-dependencies]
//! poem-secure = { version = "0.1", features = ["testing"] }
//! ```
//!
//! ```
//! use secure_runtime::{testing::token, JwtConfig, Security};
//! let security = Security::builder()
//!     .jwt(JwtConfig::hs256([7u8; 32]).unwrap().issuer("me").audience("api"))
//!     .build()
//!     .unwrap();
//! let bearer = token(&security, "alice").scopes(["items"]).roles(["admin"]).bearer();
//! assert!(bearer.starts_with("Bearer ey"));
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{verify::jwt::AccessClaims, Security};

/// The `scopes`, `roles` and `permissions` setters of the test builders
/// ([`TestToken`], [`MockPrincipal`]), written once.
macro_rules! grant_setters {
    () => {
        /// Granted scopes.
        pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
            self.scopes = v.into_iter().map(Into::into).collect();
            self
        }
        /// Roles.
        pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
            self.roles = v.into_iter().map(Into::into).collect();
            self
        }
        /// Permissions.
        pub fn permissions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
            self.permissions = v.into_iter().map(Into::into).collect();
            self
        }
    };
}

mod mock;
pub use mock::{principal, MockPrincipal};
pub mod probe;
pub use probe::probe;

/// Starts a token for `subject`, signed with `security`'s own key.
pub fn token<'s>(security: &'s Security, subject: &str) -> TestToken<'s> {
    TestToken {
        security,
        subject: subject.to_owned(),
        scopes: Vec::new(),
        roles: Vec::new(),
        permissions: Vec::new(),
        jti: None,
        exp_offset: 300,
        iat_offset: 0,
        nbf_offset: None,
    }
}

/// A token being built; see [`token`].
#[derive(Clone)]
pub struct TestToken<'s> {
    security: &'s Security,
    subject: String,
    scopes: Vec<String>,
    roles: Vec<String>,
    permissions: Vec<String>,
    jti: Option<String>,
    exp_offset: i64,
    iat_offset: i64,
    nbf_offset: Option<i64>,
}

impl TestToken<'_> {
    grant_setters!();
    /// The `jti` (default: a fresh one per token).
    pub fn jti(mut self, jti: impl Into<String>) -> Self {
        self.jti = Some(jti.into());
        self
    }
    /// `exp` relative to now, in seconds (negative: already expired).
    pub fn expires_in(mut self, secs: i64) -> Self {
        self.exp_offset = secs;
        self
    }
    /// `nbf` relative to now, in seconds (positive: not yet valid).
    pub fn not_before(mut self, secs: i64) -> Self {
        self.nbf_offset = Some(secs);
        self
    }
    /// The signed JWT.
    ///
    /// # Panics
    /// When `security` has no JWT signing key: an app that verifies the
    /// tokens of an external provider (JWKS, discovery, introspection) has
    /// none. Use [`principal`] there: it works with any verifier.
    pub fn sign(&self) -> String {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let jti = self
            .jti
            .clone()
            .unwrap_or_else(|| format!("test-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
        let s: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        let r: Vec<&str> = self.roles.iter().map(String::as_str).collect();
        let p: Vec<&str> = self.permissions.iter().map(String::as_str).collect();
        let claims = AccessClaims {
            subject: &self.subject,
            scopes: &s,
            roles: &r,
            permissions: &p,
            jti: &jti,
            session_id: None,
            iat_offset: self.iat_offset,
            exp_offset: self.exp_offset,
            nbf_offset: self.nbf_offset,
        };
        match self.security.jwt().and_then(|j| j.mint(&claims)) {
            Some(Ok(t)) => t,
            Some(Err(e)) => panic!("poem_secure::testing::token: signing failed: {e}"),
            None => panic!(
                "poem_secure::testing::token: the Security has no JWT signing key (it verifies \
                 tokens of an external provider?): use `testing::principal(&security, subject)` \
                 and its `.bearer()`, which works with any verifier"
            ),
        }
    }
    /// `Bearer <signed JWT>`, ready for an `Authorization` header.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.sign())
    }
}
