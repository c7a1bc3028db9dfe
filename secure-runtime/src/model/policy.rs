//! The static policy that `#[secure]` and `#[public]` compile a declaration into.
//!
//! Generated code builds one [`Policy`] per handler as a `const` and hands it to
//! the runtime through a zero-sized [`Requirement`] type; all the logic that
//! enforces it lives in [`crate::Security`].

use std::{fmt, future::Future, pin::Pin};

use poem::Request;

use crate::{
    model::{catalogue::Catalogue, rule::Rule},
    Denied, Principal,
};

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
/// Built by the macros through the `const fn` constructors below; the fields
/// are private so that the runtime can grow without breaking generated code.
/// The getters let a test inspect a policy.
///
/// ```
/// use secure_runtime::{Policy, Rate, Roles};
///
/// const P: Policy = Policy::secured("app::admin_items")
///     .with_scopes(&["items"])
///     .with_roles(Roles::Any(&["admin"]))
///     .with_rate(Rate::per_minute(5));
/// assert_eq!(P.scopes(), ["items"]);
/// assert_eq!(P.rate().map(|r| r.burst()), Some(5));
/// assert!(!P.is_public());
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Policy {
    id: &'static str,
    public: bool,
    auth: AuthKinds,
    scopes: &'static [&'static str],
    roles: Roles,
    permissions: &'static [&'static str],
    rate: Option<Rate>,
    rate_key: RateKey,
    rate_group: Option<&'static str>,
    check: Option<CheckFn>,
    check_name: Option<&'static str>,
    catalogue: Option<&'static Catalogue>,
    rule: Option<&'static Rule>,
}

impl Policy {
    /// A `#[secure]` declaration named `id` (a process-unique name such as
    /// `module::handler`: log lines name it, and it owns its own rate-limit
    /// bucket). Accepts bearer tokens and requires nothing else until the
    /// `with_*` calls add to it.
    pub const fn secured(id: &'static str) -> Policy {
        Policy {
            id,
            public: false,
            auth: AuthKinds::BEARER,
            scopes: &[],
            roles: Roles::None,
            permissions: &[],
            rate: None,
            rate_key: RateKey::Default,
            rate_group: None,
            check: None,
            check_name: None,
            catalogue: None,
            rule: None,
        }
    }
    /// A `#[public]` declaration: no credential required; a presented one is
    /// still verified (a bad credential is never ignored).
    pub const fn public(id: &'static str) -> Policy {
        let mut p = Policy::secured(id);
        p.public = true;
        p
    }
    /// The credential kinds accepted (`auth = ...`).
    #[must_use]
    pub const fn with_auth(mut self, auth: AuthKinds) -> Policy {
        self.auth = auth;
        self
    }
    /// Scopes that must all be granted.
    #[must_use]
    pub const fn with_scopes(mut self, scopes: &'static [&'static str]) -> Policy {
        self.scopes = scopes;
        self
    }
    /// The role requirement.
    #[must_use]
    pub const fn with_roles(mut self, roles: Roles) -> Policy {
        self.roles = roles;
        self
    }
    /// Permissions that must all be held.
    #[must_use]
    pub const fn with_permissions(mut self, permissions: &'static [&'static str]) -> Policy {
        self.permissions = permissions;
        self
    }
    /// The rate limit.
    #[must_use]
    pub const fn with_rate(mut self, rate: Rate) -> Policy {
        self.rate = Some(rate);
        self
    }
    /// What the rate limit is counted per.
    #[must_use]
    pub const fn with_rate_key(mut self, key: RateKey) -> Policy {
        self.rate_key = key;
        self
    }
    /// A rate-limit bucket shared by every declaration naming the same group.
    #[must_use]
    pub const fn with_rate_group(mut self, group: &'static str) -> Policy {
        self.rate_group = Some(group);
        self
    }
    /// A custom rule run after the built-in ones.
    #[must_use]
    pub const fn with_check(mut self, check: CheckFn) -> Policy {
        self.check = Some(check);
        self
    }
    /// The name of the declaration's `check` rule (its path as written, with
    /// the arguments it takes), for documentation and the security matrix.
    ///
    /// ```
    /// use secure_runtime::Policy;
    /// const P: Policy = Policy::secured("app::delete").with_check_name("owns_note(id, self)");
    /// assert_eq!(P.check_name(), Some("owns_note(id, self)"));
    /// ```
    #[must_use]
    pub const fn with_check_name(mut self, name: &'static str) -> Policy {
        self.check_name = Some(name);
        self
    }
    /// The scope and role catalogue the declaration was checked against.
    #[must_use]
    pub const fn with_catalogue(mut self, catalogue: &'static Catalogue) -> Policy {
        self.catalogue = Some(catalogue);
        self
    }

    /// A composed requirement (`any(...)` / `all(...)` groups), met in
    /// addition to the scopes, roles and permissions; see [`Rule::evaluate`].
    ///
    /// ```
    /// use secure_runtime::{Policy, Roles, Rule};
    ///
    /// const RULE: Rule = Rule::Any(&[Rule::Roles(Roles::Any(&["admin"])), Rule::Permissions(&["notes:delete-any"])]);
    /// const P: Policy = Policy::secured("app::delete").with_scopes(&["notes:write"]).with_rule(&RULE);
    /// assert_eq!(P.rule(), Some(&RULE));
    /// ```
    #[must_use]
    pub const fn with_rule(mut self, rule: &'static Rule) -> Policy {
        self.rule = Some(rule);
        self
    }

    /// The declaration's name (`module::handler`).
    pub const fn id(&self) -> &'static str {
        self.id
    }
    /// `true` for `#[public]`.
    pub const fn is_public(&self) -> bool {
        self.public
    }
    /// The credential kinds accepted.
    pub const fn auth(&self) -> AuthKinds {
        self.auth
    }
    /// Scopes that must all be granted.
    pub const fn scopes(&self) -> &'static [&'static str] {
        self.scopes
    }
    /// The role requirement.
    pub const fn roles(&self) -> Roles {
        self.roles
    }
    /// Permissions that must all be held.
    pub const fn permissions(&self) -> &'static [&'static str] {
        self.permissions
    }
    /// The rate limit, if any.
    pub const fn rate(&self) -> Option<Rate> {
        self.rate
    }
    /// What the rate limit is counted per.
    pub const fn rate_key(&self) -> RateKey {
        self.rate_key
    }
    /// The shared rate-limit group, if named.
    pub const fn rate_group(&self) -> Option<&'static str> {
        self.rate_group
    }
    /// The custom rule, if any.
    pub const fn check(&self) -> Option<CheckFn> {
        self.check
    }
    /// The name of the `check` rule, if the declaration has one (also when
    /// the check runs inside the handler, with typed arguments).
    pub const fn check_name(&self) -> Option<&'static str> {
        self.check_name
    }
    /// The composed requirement (`any(...)` / `all(...)`), if any: met in
    /// addition to [`scopes`](Policy::scopes), [`roles`](Policy::roles) and
    /// [`permissions`](Policy::permissions).
    pub const fn rule(&self) -> Option<&'static Rule> {
        self.rule
    }
    /// The catalogue the declaration was checked against.
    pub const fn catalogue(&self) -> Option<&'static Catalogue> {
        self.catalogue
    }
    /// The rate-limit bucket: the shared group if named, else the declaration.
    pub const fn rate_bucket(&self) -> &'static str {
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
/// The `const` constructors take any count; every builder that is given a
/// rate ([`FailureLimit`](crate::FailureLimit), the login limits, the token
/// endpoint) refuses a zero count or period at startup, and the macros refuse
/// one at compile time. [`FromStr`](std::str::FromStr) reads the grammar of
/// `#[secure(rate = "...")]`.
///
/// ```
/// use secure_runtime::Rate;
/// let r = Rate::per_minute(5);
/// assert_eq!(r.emission_interval_nanos(), 12_000_000_000); // one every 12 s
/// assert_eq!(r.burst(), 5);
/// assert_eq!("5/min".parse::<Rate>(), Ok(r));
/// assert_eq!("10/s, burst = 20".parse::<Rate>(), Ok(Rate::per_second(10).with_burst(20)));
/// assert!("0/min".parse::<Rate>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    count: u32,
    period_secs: u32,
    burst: Option<u32>,
}

impl Rate {
    /// `count` requests per `period_secs` seconds.
    pub const fn new(count: u32, period_secs: u32) -> Rate {
        Rate {
            count,
            period_secs,
            burst: None,
        }
    }
    /// `count` per second.
    pub const fn per_second(count: u32) -> Rate {
        Rate::new(count, 1)
    }
    /// `count` per minute.
    pub const fn per_minute(count: u32) -> Rate {
        Rate::new(count, 60)
    }
    /// `count` per hour.
    pub const fn per_hour(count: u32) -> Rate {
        Rate::new(count, 3600)
    }
    /// `count` per day.
    pub const fn per_day(count: u32) -> Rate {
        Rate::new(count, 86_400)
    }
    /// The same rate admitting bursts of `burst` requests.
    #[must_use]
    pub const fn with_burst(mut self, burst: u32) -> Rate {
        self.burst = Some(burst);
        self
    }
    /// Requests admitted per period.
    pub const fn count(&self) -> u32 {
        self.count
    }
    /// The period in seconds.
    pub const fn period_secs(&self) -> u32 {
        self.period_secs
    }
    /// The burst size: the one given, else `count`.
    pub const fn burst(&self) -> u32 {
        match self.burst {
            Some(b) => b,
            None => self.count,
        }
    }
    /// The GCRA emission interval (time between two steady admissions);
    /// a zero count (refused by every builder) counts as one.
    pub const fn emission_interval_nanos(&self) -> u64 {
        let count = if self.count == 0 { 1 } else { self.count };
        (self.period_secs as u64 * 1_000_000_000) / count as u64
    }
    /// Refuses what no limiter can enforce: a zero count, period or burst,
    /// or more than one request per nanosecond.
    pub fn validate(&self) -> Result<(), RateError> {
        if self.count == 0 {
            return Err(RateError("the count must be at least 1".into()));
        }
        if self.period_secs == 0 {
            return Err(RateError("the period must be at least one second".into()));
        }
        if self.burst == Some(0) {
            return Err(RateError("the burst must be at least 1".into()));
        }
        if u64::from(self.count) > u64::from(self.period_secs) * 1_000_000_000 {
            return Err(RateError(
                "more than one request per nanosecond cannot be limited".into(),
            ));
        }
        Ok(())
    }
}

/// A rate that cannot be enforced, or text that is not a rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateError(String);

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid rate: {}", self.0)
    }
}

impl std::error::Error for RateError {}

/// The units of the rate grammar.
pub const RATE_UNITS: &str =
    "`s`, `min`, `h` or `day` (also `sec`, `second`, `m`, `minute`, `hour`, `d`)";

impl std::str::FromStr for Rate {
    type Err = RateError;

    /// `count/unit`, optionally `, burst = N`: `"5/min"`, `"100/h, burst = 20"`.
    fn from_str(text: &str) -> Result<Rate, RateError> {
        let bad = |why: String| RateError(format!("`{text}`: {why}"));
        let (main, rest) = match text.split_once(',') {
            Some((m, r)) => (m, Some(r)),
            None => (text, None),
        };
        let Some((count, unit)) = main.split_once('/') else {
            return Err(bad("write it as `count/unit`, e.g. \"5/min\"".into()));
        };
        let count: u32 = count.trim().parse().map_err(|_| {
            bad(format!(
                "`{}` is not a whole number of requests",
                count.trim()
            ))
        })?;
        let period_secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            other => {
                return Err(bad(format!(
                    "unknown unit `{other}`; use one of {RATE_UNITS}"
                )))
            }
        };
        let mut rate = Rate::new(count, period_secs);
        if let Some(r) = rest {
            let Some((k, v)) = r.split_once('=') else {
                return Err(bad("after the comma write `burst = N`".into()));
            };
            if k.trim() != "burst" {
                return Err(bad(format!(
                    "unknown option `{}`; the only option is `burst = N`",
                    k.trim()
                )));
            }
            let n = v
                .trim()
                .parse::<u32>()
                .map_err(|_| bad(format!("`{}` is not a whole number", v.trim())))?;
            rate = rate.with_burst(n);
        }
        rate.validate().map_err(|e| bad(e.0))?;
        Ok(rate)
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
/// use secure_runtime::{Policy, Requirement};
/// struct AnyCaller;
/// impl Requirement for AnyCaller {
///     const POLICY: &'static Policy = &Policy::secured("doc::any");
/// }
/// assert!(!AnyCaller::POLICY.is_public());
/// ```
pub trait Requirement: Send + Sync + 'static {
    /// The handler's policy.
    const POLICY: &'static Policy;
    /// The description of the documented 403 response; generated code names
    /// the exact scopes, roles and permissions.
    const FORBIDDEN_DOC: &'static str = "The caller lacks a required scope, role or permission.";
    /// The description of the documented 429 response; generated code states
    /// the limit and what it counts per.
    const RATE_DOC: &'static str = "Rate limit exceeded; see `Retry-After`.";
}
