//! The static policy that `#[secure]` and `#[public]` compile a declaration into.
//!
//! Generated code builds one [`Policy`] per handler as a `const` and hands it to
//! the runtime through a zero-sized [`Requirement`] type; all the logic that
//! enforces it lives in [`crate::Security`].

use std::{future::Future, pin::Pin};

use poem::Request;

use crate::{catalogue::Catalogue, Denied, Principal};

/// A future returned by a `check` function, boxed so that a policy can store it.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Denied>> + Send + 'a>>;

/// The shape of a `check = path` rule once generated code has wrapped the user's
/// `async fn(&Principal, &Request) -> Result<(), Denied>`.
pub type CheckFn = for<'a> fn(&'a Principal, &'a Request) -> CheckFuture<'a>;

/// Boxes the future of a `check` rule; generated code calls it so that a rule
/// with the wrong output type is reported at the rule's path.
pub fn check_future<'a, F>(f: F) -> CheckFuture<'a>
where
    F: Future<Output = Result<(), Denied>> + Send + 'a,
{
    Box::pin(f)
}

/// The shape of a custom `rate_key = path` function.
pub type RateKeyFn = fn(&Request, Option<&Principal>) -> String;

/// The security declaration of one handler, as plain typed data.
///
/// Built by the macros; users rarely write one by hand, but every field is
/// public so that a policy can be inspected (for example in a test).
///
/// ```
/// use secure_runtime::{AuthKinds, Policy, Rate, RateKey, Roles};
///
/// const P: Policy = Policy {
///     id: "app::admin_items",
///     public: false,
///     auth: AuthKinds::BEARER,
///     scopes: &["items"],
///     roles: Roles::Any(&["admin"]),
///     permissions: &[],
///     rate: Some(Rate { count: 5, period_secs: 60, burst: None }),
///     rate_key: RateKey::Default,
///     rate_group: None,
///     check: None,
///     catalogue: None,
/// };
/// assert_eq!(P.rate.unwrap().burst(), 5);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// A process-unique name of the declaration (`module::handler`): log
    /// lines name it, and each declaration owns its own rate-limit bucket.
    pub id: &'static str,
    /// `true` for `#[public]`: no credential required.
    pub public: bool,
    /// The credential kinds accepted.
    pub auth: AuthKinds,
    /// Scopes that must all be granted (OAuth2 semantics).
    pub scopes: &'static [&'static str],
    /// Roles required.
    pub roles: Roles,
    /// Permissions that must all be held.
    pub permissions: &'static [&'static str],
    /// The rate limit, if any.
    pub rate: Option<Rate>,
    /// What the rate limit is counted per.
    pub rate_key: RateKey,
    /// A bucket shared by every declaration naming the same group
    /// (`rate_group = "login"`); `None`: the declaration's own bucket (`id`).
    pub rate_group: Option<&'static str>,
    /// A custom rule run after the built-in ones.
    pub check: Option<CheckFn>,
    /// The scope and role catalogue the declaration was checked against.
    pub catalogue: Option<&'static Catalogue>,
}

impl Policy {
    /// The rate-limit bucket: the shared group if named, else the declaration.
    pub fn rate_bucket(&self) -> &'static str {
        match self.rate_group {
            Some(g) => g,
            None => self.id,
        }
    }
}

/// Which credential kinds a handler accepts (`auth = ...`).
///
/// ```
/// use secure_runtime::AuthKinds;
/// let any = AuthKinds::BEARER.or(AuthKinds::API_KEY);
/// assert!(any.accepts_bearer() && any.accepts_api_key() && !any.accepts_basic());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthKinds(u8);

impl AuthKinds {
    /// `Authorization: Bearer <JWT>`.
    pub const BEARER: AuthKinds = AuthKinds(1);
    /// An API key in a header (`X-API-Key` by default).
    pub const API_KEY: AuthKinds = AuthKinds(2);
    /// `Authorization: Basic ...`.
    pub const BASIC: AuthKinds = AuthKinds(4);

    /// The union of two sets (`any(a, b)`).
    pub const fn or(self, other: AuthKinds) -> AuthKinds {
        AuthKinds(self.0 | other.0)
    }
    /// Whether a bearer token is accepted.
    pub const fn accepts_bearer(self) -> bool {
        self.0 & 1 != 0
    }
    /// Whether an API key is accepted.
    pub const fn accepts_api_key(self) -> bool {
        self.0 & 2 != 0
    }
    /// Whether HTTP Basic credentials are accepted.
    pub const fn accepts_basic(self) -> bool {
        self.0 & 4 != 0
    }
}

/// The role requirement of a declaration.
///
/// ```
/// use secure_runtime::Roles;
/// assert!(Roles::Any(&["admin", "owner"]).satisfied_by(&["owner".to_owned()]));
/// assert!(!Roles::All(&["admin", "owner"]).satisfied_by(&["owner".to_owned()]));
/// assert!(Roles::None.satisfied_by(&[]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    /// No role required.
    None,
    /// Any one of these suffices (`roles = ["a", "b"]`).
    Any(&'static [&'static str]),
    /// All of these are required (`roles = all("a", "b")`).
    All(&'static [&'static str]),
}

impl Roles {
    /// Whether a caller holding `held` satisfies the requirement.
    pub fn satisfied_by(&self, held: &[String]) -> bool {
        let has = |r: &&str| held.iter().any(|h| h == r);
        match self {
            Roles::None => true,
            Roles::Any(rs) => rs.iter().any(has),
            Roles::All(rs) => rs.iter().all(has),
        }
    }
}

/// A rate: `count` requests per `period_secs`, with an optional burst.
///
/// ```
/// use secure_runtime::Rate;
/// let r = Rate { count: 5, period_secs: 60, burst: None };
/// assert_eq!(r.emission_interval_nanos(), 12_000_000_000); // one every 12 s
/// assert_eq!(r.burst(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests admitted per period.
    pub count: u32,
    /// The period in seconds.
    pub period_secs: u32,
    /// The burst size; defaults to `count`.
    pub burst: Option<u32>,
}

impl Rate {
    /// The burst size: `burst` when given, else `count`.
    pub const fn burst(&self) -> u32 {
        match self.burst {
            Some(b) => b,
            None => self.count,
        }
    }
    /// The GCRA emission interval (time between two steady admissions).
    pub const fn emission_interval_nanos(&self) -> u64 {
        (self.period_secs as u64 * 1_000_000_000) / self.count as u64
    }
}

/// What a rate limit is counted per (`rate_key = ...`).
#[derive(Debug, Clone, Copy)]
pub enum RateKey {
    /// `user` when authenticated, `ip` on `#[public]`.
    Default,
    /// The client IP.
    Ip,
    /// The authenticated subject.
    User,
    /// The API key's identifier.
    ApiKey,
    /// The pair (client IP, subject).
    IpUser,
    /// A user function.
    Custom(RateKeyFn),
}

/// Ties a handler to its policy: generated code defines one zero-sized type per
/// declaration and implements this trait for it.
///
/// ```
/// use secure_runtime::{AuthKinds, Policy, RateKey, Requirement, Roles};
/// struct AnyCaller;
/// impl Requirement for AnyCaller {
///     const POLICY: &'static Policy = &Policy {
///         id: "doc::any", public: false, auth: AuthKinds::BEARER, scopes: &[],
///         roles: Roles::None, permissions: &[], rate: None,
///         rate_key: RateKey::Default, rate_group: None, check: None, catalogue: None,
///     };
/// }
/// assert!(!AnyCaller::POLICY.public);
/// ```
pub trait Requirement: Send + Sync + 'static {
    /// The handler's policy.
    const POLICY: &'static Policy;
    /// The description of the documented 403 response; generated code names
    /// the exact scopes, roles and permissions.
    const FORBIDDEN_DOC: &'static str = "The caller lacks a required scope, role or permission.";
}
