//! The verified caller.

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A bearer access token (JWT).
    Bearer,
    /// An API key.
    ApiKey,
    /// HTTP Basic credentials.
    Basic,
}

/// The authenticated caller of a protected handler.
///
/// Take it as a handler parameter (`who: Principal`, or `Option<Principal>` on
/// a `#[public]` handler): it is the result of the verification that the
/// handler's `#[secure]` guard already ran, so nothing is verified twice.
/// Cloning is cheap (one reference count).
///
/// ```
/// use secure_runtime::{CredentialKind, Principal};
/// let p = Principal::builder(CredentialKind::Bearer, "alice")
///     .scopes(["notes:read", "me"])
///     .roles(["user"])
///     .build();
/// assert_eq!(p.subject(), "alice");
/// assert!(p.has_scope("me") && !p.has_scope("admin"));
/// assert!(p.has_role("user"));
/// ```
#[derive(Clone)]
pub struct Principal(Arc<Inner>);

#[derive(Default)]
struct Inner {
    kind: Option<CredentialKind>,
    subject: String,
    scopes: Vec<String>,
    roles: Vec<String>,
    permissions: Vec<String>,
    token_id: Option<String>,
    session_id: Option<String>,
    expires_at: Option<u64>,
    key_id: Option<String>,
    /// The claims, parsed from `payload` on first use (most handlers never
    /// ask, so verification does not build them).
    claims: OnceLock<Map<String, Value>>,
    /// A bearer token's payload segment (base64url JSON, without the
    /// signature: not a credential).
    payload: Option<Box<str>>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Claims may hold personal data: keep Debug to what authorisation uses.
        f.debug_struct("Principal")
            .field("kind", &self.0.kind)
            .field("subject", &self.0.subject)
            .field("scopes", &self.0.scopes)
            .field("roles", &self.0.roles)
            .field("permissions", &self.0.permissions)
            .finish_non_exhaustive()
    }
}

impl Principal {
    /// Starts a principal; verifiers (JWT, API key and Basic stores) build them.
    pub fn builder(kind: CredentialKind, subject: impl Into<String>) -> PrincipalBuilder {
        PrincipalBuilder(Inner {
            kind: Some(kind),
            subject: subject.into(),
            ..Inner::default()
        })
    }
    /// The credential kind that authenticated the caller.
    pub fn kind(&self) -> CredentialKind {
        self.0.kind.unwrap_or(CredentialKind::Bearer)
    }
    /// The subject (`sub` claim, API key owner, or Basic user name).
    pub fn subject(&self) -> &str {
        &self.0.subject
    }
    /// Granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }
    /// Roles held.
    pub fn roles(&self) -> &[String] {
        &self.0.roles
    }
    /// Permissions held.
    pub fn permissions(&self) -> &[String] {
        &self.0.permissions
    }
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| s == scope)
    }
    /// Whether `role` is held.
    pub fn has_role(&self, role: &str) -> bool {
        self.0.roles.iter().any(|s| s == role)
    }
    /// Whether `permission` is held.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.0.permissions.iter().any(|s| s == permission)
    }
    /// The token's `jti`, for a bearer token that has one.
    pub fn token_id(&self) -> Option<&str> {
        self.0.token_id.as_deref()
    }

    /// The token's session (`sid`: its refresh family), for a bearer token
    /// that names one; revoking the session revokes the token.
    ///
    /// ```
    /// use secure_runtime::{CredentialKind, Principal};
    /// let p = Principal::builder(CredentialKind::Bearer, "alice").session(Some("fam-1".into())).build();
    /// assert_eq!(p.session_id(), Some("fam-1"));
    /// ```
    pub fn session_id(&self) -> Option<&str> {
        self.0.session_id.as_deref()
    }
    /// The token's `exp` (seconds since the Unix epoch), for a bearer token.
    pub fn expires_at(&self) -> Option<u64> {
        self.0.expires_at
    }
    /// The API key's public identifier, for `CredentialKind::ApiKey`.
    pub fn key_id(&self) -> Option<&str> {
        self.0.key_id.as_deref()
    }
    /// All claims of a bearer token (empty for other kinds).
    pub fn claims(&self) -> &Map<String, Value> {
        self.0.claims.get_or_init(|| {
            use base64::Engine as _;
            self.0
                .payload
                .as_deref()
                .and_then(|p| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(p)
                        .ok()
                })
                .and_then(|json| serde_json::from_slice(&json).ok())
                .unwrap_or_default()
        })
    }
}

/// Builds a [`Principal`]; see [`Principal::builder`].
pub struct PrincipalBuilder(Inner);

impl PrincipalBuilder {
    /// Sets the granted scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.0.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the roles.
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.0.roles = roles.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the permissions.
    pub fn permissions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, perms: I) -> Self {
        self.0.permissions = perms.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the token id (`jti`) and expiry (`exp`).
    pub fn token(mut self, jti: Option<String>, exp: Option<u64>) -> Self {
        self.0.token_id = jti;
        self.0.expires_at = exp;
        self
    }
    /// Sets the session (`sid`) the token belongs to.
    pub fn session(mut self, sid: Option<String>) -> Self {
        self.0.session_id = sid;
        self
    }
    /// Sets the API key identifier.
    pub fn key_id(mut self, id: impl Into<String>) -> Self {
        self.0.key_id = Some(id.into());
        self
    }
    /// Sets the raw claims.
    pub fn claims(mut self, claims: Map<String, Value>) -> Self {
        self.0.claims = OnceLock::from(claims);
        self
    }
    /// The payload segment of a verified JWT, parsed into claims on demand.
    pub(crate) fn jwt_payload(mut self, segment: &str) -> Self {
        self.0.payload = Some(segment.into());
        self
    }
    /// Finishes the principal.
    pub fn build(self) -> Principal {
        Principal(Arc::new(self.0))
    }
}
