//! Mock principals for any verifier: see [`principal`].

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde_json::{Map, Value};

use crate::{
    model::{
        catalogue::Catalogue,
        principal::{CredentialKind, Principal},
        secrets::random_secret,
        suggest::NameKind,
    },
    verify::jwt::now_secs,
    Security,
};

/// Starts a mock principal for `subject` that `security` will admit,
/// whatever verifier it is configured with (static keys, JWKS, discovery,
/// introspection, an API key store, a Basic verifier).
///
/// Finish it with [`bearer`](MockPrincipal::bearer),
/// [`api_key`](MockPrincipal::api_key) or [`basic`](MockPrincipal::basic):
/// each registers the principal on `security` behind a fresh random
/// credential (256 bits) and returns that credential. Only this `Security`
/// (and its clones, which share its state) accepts it; nothing is accepted
/// that test code did not register, and without the `testing` feature the
/// registry does not exist. The request then goes through the same decision
/// as a real credential: revocation, rate limit, scopes, roles, permissions,
/// composed rules, the custom `check`, and the audit log.
///
/// With [`catalogue`](MockPrincipal::catalogue), every scope, role and
/// permission given is checked against it, and a misspelt one fails the test
/// with the nearest declared name.
///
/// ```
/// use poem::Request;
/// use secure_runtime::{testing, JwtConfig, Policy, RejectionKind, Security};
///
/// static NOTES: Policy = Policy::secured("notes::list").with_scopes(&["notes:read"]);
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // The production configuration: tokens of an external provider, no key of ours.
/// let security = Security::builder()
///     .jwt(JwtConfig::discover_lazily("https://idp.example.com/realms/notes").unwrap().audience("notes-api"))
///     .build()
///     .unwrap();
///
/// let reader = testing::principal(&security, "alice").scopes(["notes:read"]).bearer();
/// let req = Request::builder().header("Authorization", reader).finish();
/// let who = security.authorize(&NOTES, &req).await.unwrap().unwrap();
/// assert_eq!(who.subject(), "alice");
///
/// let other = testing::principal(&security, "bob").scopes(["me"]).bearer();
/// let req = Request::builder().header("Authorization", other).finish();
/// let refused = security.authorize(&NOTES, &req).await.unwrap_err();
/// assert!(matches!(refused.kind(), RejectionKind::InsufficientScope(_)));
/// # });
/// ```
pub fn principal<'s>(security: &'s Security, subject: &str) -> MockPrincipal<'s> {
    MockPrincipal {
        security,
        subject: subject.to_owned(),
        scopes: Vec::new(),
        roles: Vec::new(),
        permissions: Vec::new(),
        claims: Map::new(),
        token_id: None,
        session_id: None,
        catalogue: None,
    }
}

/// A mock principal being built; see [`principal`].
#[derive(Clone)]
pub struct MockPrincipal<'s> {
    security: &'s Security,
    subject: String,
    scopes: Vec<String>,
    roles: Vec<String>,
    permissions: Vec<String>,
    claims: Map<String, Value>,
    token_id: Option<String>,
    session_id: Option<String>,
    catalogue: Option<&'static Catalogue>,
}

impl std::fmt::Debug for MockPrincipal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockPrincipal")
            .field("subject", &self.subject)
            .field("scopes", &self.scopes)
            .field("roles", &self.roles)
            .field("permissions", &self.permissions)
            .finish_non_exhaustive()
    }
}

impl MockPrincipal<'_> {
    grant_setters!();
    /// An extra claim, seen by handlers through
    /// [`Principal::claims`](crate::Principal::claims) (it replaces a
    /// standard claim of the same name).
    ///
    /// ```
    /// # use secure_runtime::{testing, Security, JwtConfig};
    /// # let security = Security::builder().jwt(JwtConfig::hs256_random().unwrap().issuer("me").audience("api")).build().unwrap();
    /// let bearer = testing::principal(&security, "alice")
    ///     .claim("tenant", "acme")
    ///     .claim("email_verified", true)
    ///     .bearer();
    /// # assert!(bearer.starts_with("Bearer "));
    /// ```
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }
    /// The bearer token's `jti` (default: a fresh random one), e.g. to
    /// revoke it through the app's revocation list in a test.
    pub fn token_id(mut self, jti: impl Into<String>) -> Self {
        self.token_id = Some(jti.into());
        self
    }
    /// The bearer token's session (`sid`), e.g. to test session revocation.
    pub fn session(mut self, sid: impl Into<String>) -> Self {
        self.session_id = Some(sid.into());
        self
    }
    /// Checks every scope, role and permission against `catalogue` when the
    /// credential is made: a name it does not declare fails the test, with
    /// the nearest declared name when there is one.
    ///
    /// ```should_panic
    /// use secure_runtime::{testing, Catalogue, JwtConfig, Security};
    /// const ACCESS: Catalogue = Catalogue::new().scopes(&[("notes:read", "Read notes")]);
    /// let security = Security::builder().jwt(JwtConfig::hs256_random().unwrap().issuer("me").audience("api")).build().unwrap();
    /// testing::principal(&security, "alice").catalogue(&ACCESS).scopes(["notes:raed"]).bearer();
    /// ```
    pub fn catalogue(mut self, catalogue: &'static Catalogue) -> Self {
        self.catalogue = Some(catalogue);
        self
    }

    /// Registers the principal behind a new random bearer token and returns
    /// `Bearer <token>`, for the `Authorization` header. The token is opaque
    /// (not a JWT): the app's JWT verifier never sees it.
    ///
    /// # Panics
    /// When a name is missing from the [`catalogue`](Self::catalogue), or
    /// the `Security` has no JWT verifier (the request would be refused with
    /// a 500, as in production).
    pub fn bearer(&self) -> String {
        self.require(self.security.verifiers().0, "JWT verifier (`.jwt(..)`)");
        let token = format!("mock.{}", secret(32));
        let jti = self.token_id.clone().unwrap_or_else(|| secret(16));
        let exp = now_secs() + 300;
        let mut claims = Map::new();
        claims.insert("sub".into(), self.subject.clone().into());
        claims.insert("scope".into(), self.scopes.join(" ").into());
        claims.insert("roles".into(), self.roles.clone().into());
        if !self.permissions.is_empty() {
            claims.insert("permissions".into(), self.permissions.clone().into());
        }
        claims.insert("jti".into(), jti.clone().into());
        if let Some(sid) = &self.session_id {
            claims.insert("sid".into(), sid.clone().into());
        }
        claims.insert("iat".into(), now_secs().into());
        claims.insert("exp".into(), exp.into());
        claims.extend(self.claims.clone());
        let p = self
            .base(CredentialKind::Bearer)
            .token(Some(jti), Some(exp))
            .session(self.session_id.clone())
            .claims(claims)
            .build();
        self.register(&token, p);
        format!("Bearer {token}")
    }

    /// Registers the principal behind a new random API key and returns the
    /// key, for the app's API key header (`X-API-Key` unless configured
    /// otherwise). The principal's [`key_id`](crate::Principal::key_id) is
    /// the part before the `.`.
    ///
    /// # Panics
    /// As [`bearer`](Self::bearer), for an API key store (`.api_keys(..)`).
    pub fn api_key(&self) -> String {
        self.require(
            self.security.verifiers().1,
            "API key store (`.api_keys(..)`)",
        );
        let id = format!("mock{}", secret(6));
        let key = format!("{id}.{}", secret(32));
        let p = self
            .base(CredentialKind::ApiKey)
            .key_id(id)
            .claims(self.claims.clone())
            .build();
        self.register(&key, p);
        key
    }

    /// Registers the principal behind HTTP Basic credentials (the subject as
    /// user name, a new random password) and returns `Basic <base64>`, for
    /// the `Authorization` header.
    ///
    /// # Panics
    /// As [`bearer`](Self::bearer), for a Basic verifier (`.basic(..)`), and
    /// when the subject contains `:` (not a valid Basic user name).
    pub fn basic(&self) -> String {
        self.require(self.security.verifiers().2, "Basic verifier (`.basic(..)`)");
        if self.subject.contains(':') {
            panic!("poem_secure::testing::principal: a Basic user name cannot contain `:`");
        }
        let b64 = STANDARD.encode(format!("{}:{}", self.subject, secret(32)));
        let p = self
            .base(CredentialKind::Basic)
            .claims(self.claims.clone())
            .build();
        self.register(&b64, p);
        format!("Basic {b64}")
    }

    fn base(&self, kind: CredentialKind) -> crate::PrincipalBuilder {
        Principal::builder(kind, self.subject.clone())
            .scopes(self.scopes.clone())
            .roles(self.roles.clone())
            .permissions(self.permissions.clone())
    }

    fn require(&self, configured: bool, what: &str) {
        if !configured {
            panic!(
                "poem_secure::testing::principal: the Security has no {what}, so this credential \
                 would be refused (500) as in production: configure it as the app does"
            );
        }
        if let Some(message) = self.undeclared_names() {
            panic!("poem_secure::testing::principal: {message}");
        }
    }

    /// Every name missing from the catalogue, with suggestions.
    fn undeclared_names(&self) -> Option<String> {
        let cat = self.catalogue?;
        let lists = [
            (NameKind::Scope, &self.scopes),
            (NameKind::Role, &self.roles),
            (NameKind::Permission, &self.permissions),
        ];
        let missing: Vec<String> = lists
            .iter()
            .flat_map(|(kind, names)| names.iter().map(move |n| (*kind, n)))
            .filter(|(kind, name)| !cat.declares(*kind, name))
            .map(|(kind, name)| {
                let noun = kind.noun();
                match cat.nearest(kind, name) {
                    Some(near) => format!(
                        "{noun} `{name}` is not declared in the catalogue: did you mean `{near}`?"
                    ),
                    None => format!("{noun} `{name}` is not declared in the catalogue"),
                }
            })
            .collect();
        (!missing.is_empty()).then(|| missing.join("; "))
    }

    fn register(&self, value: &str, p: Principal) {
        if !self.security.mocks().register(value, p) {
            panic!("poem_secure::testing::principal: the mock registry is poisoned");
        }
    }
}

/// `bytes` random bytes, base64url.
fn secret(bytes: usize) -> String {
    match random_secret(bytes) {
        Some(s) => s,
        None => panic!("poem_secure::testing: the OS random source failed"),
    }
}
