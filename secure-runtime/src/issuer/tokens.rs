//! The OAuth2 token endpoint (RFC 6749 §4.3 password grant, §6 refresh),
//! refresh rotation and logout, as a ready poem-openapi API.

use std::{marker::PhantomData, sync::Arc};

use poem::Request;
use poem_openapi::{
    payload::{Form, Json},
    ApiResponse, Object, OpenApi,
};
use serde::Deserialize;

use crate::{
    issuer::sessions::InstalledSessions,
    issuer::sessions::Peek,
    issuer::sessions::Rotation,
    issuer::sessions::Session,
    issuer::sessions::SessionStore,
    issuer::users::Authenticator,
    issuer::users::LoginError,
    issuer::users::UserRecord,
    model::audit::AUDIT_TARGET,
    model::catalogue::is_scope_token,
    model::catalogue::Catalogue,
    model::policy::{Policy, Rate, Requirement},
    model::rate::PartitionKey,
    model::rate::RateQuery,
    model::secrets::hash_secret,
    model::secrets::random_secret,
    web::failure::LoginAttempt,
    web::failure::LoginLimits,
    web::openapi::OaiGuard,
    web::openapi::OaiScopes,
    web::openapi::OperationOutput,
    web::openapi::Secured,
    web::security::AccessToken,
    web::security::Security,
    ConfigError, Principal, Protected,
};

/// What a login limit counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKey {
    /// The client IP.
    Ip,
    /// The pair (client IP, username): slows guessing at one account from one
    /// place without letting anyone lock the account out from elsewhere.
    IpAndUsername,
    /// The username alone. **Opt-in only**: anyone anywhere can then lock a
    /// victim out by failing logins in their name (OWASP ASVS 6.1.1 warns
    /// against it). Prefer `IpAndUsername`.
    UsernameAnywhere,
}

/// Configuration and logic of the token endpoint; [`TokenService::api`] turns
/// it into poem-openapi operations:
///
/// * `POST /auth/token` — form `grant_type=password`, `username`, `password`,
///   optional `scope` (granted = requested ∩ allowed; omitted = all allowed);
///   also `grant_type=refresh_token` with `refresh_token`.
/// * `POST /auth/refresh` — form `refresh_token`: rotation.
/// * `POST /auth/logout` — bearer: revokes the refresh family (`sid`) and the
///   presented access token's `jti`, at once.
///
/// Every response carries `Cache-Control: no-store`. Unknown user, wrong
/// password and disabled user get one status and one body, for the same work.
#[derive(Clone)]
pub struct TokenService(Arc<Inner>);

#[derive(Clone)]
struct Inner {
    security: Security,
    auth: Arc<Authenticator>,
    sessions: Arc<dyn SessionStore>,
    refresh_ttl_secs: u64,
    failure_limits: Option<LoginLimits>,
    attempt_limits: Vec<(LoginKey, Rate)>,
}

/// A token response body (RFC 6749 §5.1).
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct TokenBody {
    /// The access token (a JWT, RFC 9068).
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// The opaque refresh token (rotated on every use).
    pub refresh_token: String,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// An OAuth2 error body (RFC 6749 §5.2).
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type` or `invalid_scope`.
    pub error: String,
    /// A human-readable explanation.
    pub error_description: String,
}

/// An RFC 9457 problem body.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `about:blank`.
    #[oai(rename = "type")]
    pub ty: String,
    /// The status's reason phrase.
    pub title: String,
    /// The status code.
    pub status: u16,
    /// What happened.
    pub detail: String,
}

impl Problem {
    fn new(status: u16, title: &str, detail: &str) -> Self {
        Problem {
            ty: "about:blank".into(),
            title: title.into(),
            status,
            detail: detail.into(),
        }
    }
}

const NO_STORE: &str = "no-store";

/// The answers of the token endpoints.
#[derive(ApiResponse, Debug)]
#[oai(bad_request_handler = "bad_form")]
pub enum TokenResponse {
    /// Tokens issued.
    #[oai(status = 200)]
    Ok(
        Json<TokenBody>,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Pragma")] String,
    ),
    /// The request or the grant is invalid (one body for every failed login).
    #[oai(status = 400)]
    Invalid(Json<OAuthError>, #[oai(header = "Cache-Control")] String),
    /// Too many attempts.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooMany(
        Json<Problem>,
        #[oai(header = "Retry-After")] u64,
        #[oai(header = "Cache-Control")] String,
        /// The limit that refused (draft-ietf-httpapi-ratelimit-headers).
        #[oai(header = "RateLimit-Policy")]
        Option<String>,
        /// The limit's state: no request left, and when it resets.
        #[oai(header = "RateLimit")]
        Option<String>,
    ),
    /// The credential stores or password hashing are saturated or unreachable.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Cache-Control")] String),
}

fn bad_form(_err: poem::Error) -> TokenResponse {
    oauth_error(
        "invalid_request",
        "The request must be a form with the fields this grant requires.",
    )
}

fn oauth_error(error: &str, description: &str) -> TokenResponse {
    TokenResponse::Invalid(
        Json(OAuthError {
            error: error.into(),
            error_description: description.into(),
        }),
        NO_STORE.into(),
    )
}

fn invalid_grant() -> TokenResponse {
    oauth_error("invalid_grant", "The credentials are invalid.")
}

/// A refusal of the login limits as a documented token-endpoint answer.
fn limited(e: &crate::AuthRejection) -> TokenResponse {
    let status = e.rate_status();
    let field =
        |v: Option<poem::http::HeaderValue>| v.and_then(|v| v.to_str().ok().map(str::to_owned));
    match e.retry_after_secs() {
        Some(secs) => TokenResponse::TooMany(
            Json(Problem::new(
                429,
                "Too Many Requests",
                "Too many login attempts; retry later.",
            )),
            secs,
            NO_STORE.into(),
            status.and_then(|s| field(s.policy_header())),
            status.and_then(|s| field(s.limit_header())),
        ),
        None => unavailable(),
    }
}

fn unavailable() -> TokenResponse {
    TokenResponse::Unavailable(
        Json(Problem::new(
            503,
            "Service Unavailable",
            "The service is temporarily unavailable.",
        )),
        NO_STORE.into(),
    )
}

/// The token request form (`application/x-www-form-urlencoded`).
#[derive(Object, Deserialize, Debug)]
pub struct TokenForm {
    /// `password` or `refresh_token`.
    pub grant_type: String,
    /// For `password`.
    pub username: Option<String>,
    /// For `password`.
    #[oai(write_only)]
    pub password: Option<String>,
    /// Requested scopes, space-separated (optional).
    pub scope: Option<String>,
    /// For `refresh_token`.
    #[oai(write_only)]
    pub refresh_token: Option<String>,
}

/// A refresh token as given to the client: `family.secret`. The family id
/// (the access tokens' `sid`) lets the store find the one record of the
/// family; only the secret's hash is stored.
fn compose_refresh(family: &str, secret: &str) -> String {
    format!("{family}.{secret}")
}

/// The refresh form.
#[derive(Object, Deserialize, Debug)]
pub struct RefreshForm {
    /// The current refresh token.
    #[oai(write_only)]
    pub refresh_token: String,
    /// Optionally narrower scopes (never wider than the session's).
    pub scope: Option<String>,
}

/// A `scope` parameter that is not a space-separated list of scope tokens.
struct MalformedScope;

fn parse_scopes(s: Option<&str>) -> Result<Option<Vec<&str>>, MalformedScope> {
    // RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    let Some(s) = s.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let parts: Vec<&str> = s.split(' ').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| !is_scope_token(p)) {
        return Err(MalformedScope);
    }
    Ok(Some(parts))
}

fn malformed_scope() -> TokenResponse {
    oauth_error("invalid_scope", "The scope parameter is malformed.")
}

impl TokenService {
    /// A token service issuing through `security`, which must have a JWT
    /// signing key and a session store
    /// ([`SecurityBuilder::sessions`](crate::SecurityBuilder::sessions)):
    /// refresh sessions live there, and the guards check revocations there.
    pub fn new(security: Security, authenticator: Authenticator) -> Result<Self, ConfigError> {
        if !security.can_issue_tokens() {
            return Err(ConfigError::new(
                "the token service needs a JWT signing key",
            ));
        }
        let Some(InstalledSessions(sessions)) = security.extension::<InstalledSessions>().cloned()
        else {
            return Err(ConfigError::new(
                "the token service needs a session store: give it to Security with SecurityBuilder::sessions",
            ));
        };
        Ok(TokenService(Arc::new(Inner {
            security,
            auth: Arc::new(authenticator),
            sessions,
            refresh_ttl_secs: 14 * 24 * 3600,
            failure_limits: Some(LoginLimits::new()),
            attempt_limits: Vec::new(),
        })))
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.0);
        f(&mut inner);
        TokenService(Arc::new(inner))
    }

    /// Lifetime of a refresh token (renewed by each rotation; default 14 days).
    pub fn refresh_ttl_secs(self, secs: u64) -> Self {
        self.map(|i| i.refresh_ttl_secs = secs)
    }

    /// The failure-driven login limits (default [`LoginLimits::new`]: failed
    /// logins per client IP and per (IP, user name); successes never count).
    pub fn failure_limits(self, limits: LoginLimits) -> Self {
        self.map(|i| i.failure_limits = Some(limits))
    }

    /// Also limits every login attempt, failed or not, per `key` (for a
    /// service whose contract names a plain rate, e.g. 5/min per client IP).
    pub fn attempt_limit(self, key: LoginKey, rate: Rate) -> Self {
        self.map(|i| i.attempt_limits.push((key, rate)))
    }

    /// The authenticator (user store and password hasher).
    pub fn authenticator(&self) -> &Authenticator {
        &self.0.auth
    }

    /// Applies the attempt limits, then reserves a failure in the failure
    /// limits; the caller reports the attempt's outcome.
    async fn limit_login(
        &self,
        req: &Request,
        username: &str,
    ) -> Result<Option<LoginAttempt>, TokenResponse> {
        let security = &self.0.security;
        let ip = security.client_ip(req);
        let user = username.trim().to_lowercase();
        for (key, rate) in &self.0.attempt_limits {
            let (bucket, key) = match key {
                LoginKey::Ip => ("login:attempts:ip", PartitionKey::Ip(ip)),
                LoginKey::IpAndUsername => (
                    "login:attempts:ip_username",
                    PartitionKey::IpUser(ip, &user),
                ),
                LoginKey::UsernameAnywhere => {
                    ("login:attempts:username", PartitionKey::User(&user))
                }
            };
            let q = RateQuery {
                bucket,
                key,
                rate: *rate,
                ip,
            };
            security
                .rate_settings()
                .enforce(&q, bucket, "auth/token")
                .await
                .map_err(|e| limited(&e))?;
        }
        match &self.0.failure_limits {
            Some(l) => l
                .guard(security, req, username)
                .await
                .map(Some)
                .map_err(|e| limited(&e)),
            None => Ok(None),
        }
    }

    /// Issues a new session's tokens for an authenticated user.
    async fn start_session(&self, user: &UserRecord, granted: Vec<String>) -> TokenResponse {
        let (Some(family), Some(refresh)) = (random_secret(16), random_secret(32)) else {
            return unavailable();
        };
        let session = Session {
            family,
            subject: user.username.clone(),
            scopes: granted,
            roles: user.roles.clone(),
            permissions: user.permissions.clone(),
        };
        if self
            .0
            .sessions
            .create(&session, &hash_secret(&refresh), self.0.refresh_ttl_secs)
            .await
            .is_err()
        {
            return unavailable();
        }
        let refresh = compose_refresh(&session.family, &refresh);
        self.respond(&session, refresh)
    }

    fn respond(&self, s: &Session, refresh: String) -> TokenResponse {
        let scopes: Vec<&str> = s.scopes.iter().map(String::as_str).collect();
        let roles: Vec<&str> = s.roles.iter().map(String::as_str).collect();
        let perms: Vec<&str> = s.permissions.iter().map(String::as_str).collect();
        let token = AccessToken {
            subject: &s.subject,
            scopes: &scopes,
            roles: &roles,
            permissions: &perms,
            session_id: Some(&s.family),
        };
        match self.0.security.issue_access_token(&token) {
            Ok(t) => TokenResponse::Ok(
                Json(TokenBody {
                    access_token: t.token,
                    token_type: "bearer".into(),
                    expires_in: t.expires_in,
                    refresh_token: refresh,
                    scope: scopes.join(" "),
                }),
                NO_STORE.into(),
                "no-cache".into(),
            ),
            Err(_) => unavailable(),
        }
    }

    /// The password grant.
    pub async fn password_grant(
        &self,
        req: &Request,
        username: &str,
        password: &str,
        scope: Option<&str>,
    ) -> TokenResponse {
        let requested = match parse_scopes(scope) {
            Ok(r) => r,
            Err(MalformedScope) => return malformed_scope(),
        };
        let attempt = match self.limit_login(req, username).await {
            Ok(a) => a,
            Err(r) => return r,
        };
        let user = match self.0.auth.authenticate(username, password).await {
            Ok(u) => {
                if let Some(a) = attempt {
                    a.succeeded().await;
                }
                u
            }
            Err(LoginError::Invalid) => {
                if let Some(a) = attempt {
                    a.failed();
                }
                return invalid_grant();
            }
            Err(LoginError::TooLong) => {
                if let Some(a) = attempt {
                    a.failed();
                }
                return oauth_error("invalid_request", "The password is longer than 1024 bytes.");
            }
            Err(LoginError::Busy | LoginError::Unavailable) => {
                // Not the caller's failure: give the reservation back.
                if let Some(a) = attempt {
                    a.succeeded().await;
                }
                return unavailable();
            }
        };
        let granted: Vec<String> = match &requested {
            None => user.scopes.clone(),
            Some(req) => user
                .scopes
                .iter()
                .filter(|s| req.contains(&s.as_str()))
                .cloned()
                .collect(),
        };
        if requested.is_some() && granted.is_empty() {
            return oauth_error(
                "invalid_scope",
                "None of the requested scopes can be granted.",
            );
        }
        self.start_session(&user, granted).await
    }

    /// The refresh grant: rotates `refresh_token`. Reuse of a rotated token
    /// revokes its family; a user disabled or removed since login cannot
    /// refresh; roles are re-read; scopes never widen.
    pub async fn refresh(&self, refresh_token: &str, scope: Option<&str>) -> TokenResponse {
        let requested = match parse_scopes(scope) {
            Ok(r) => r,
            Err(MalformedScope) => return malformed_scope(),
        };
        let Some(next) = random_secret(32) else {
            return unavailable();
        };
        // `family.secret`: the family names the one record to look at.
        let Some((family, secret)) = refresh_token
            .split_once('.')
            .filter(|(f, s)| !f.is_empty() && f.len() <= 64 && !s.is_empty())
        else {
            return invalid_grant();
        };
        let presented = hash_secret(secret);
        // Everything that may refuse is checked before the token is consumed,
        // so a refused or failed refresh leaves it usable for a retry.
        let mut session = match self.0.sessions.peek(family, &presented).await {
            Ok(Peek::Current(s)) => Some(s),
            Ok(Peek::NotCurrent) => {
                // Unknown, expired, or already rotated: `rotate` revokes the
                // family in the last case (theft detection).
                if let Ok(Rotation::Reused) = self
                    .0
                    .sessions
                    .rotate(family, &presented, &hash_secret(&next), 1)
                    .await
                {
                    tracing::warn!(target: AUDIT_TARGET, event = "refresh_reuse_detected");
                }
                return invalid_grant();
            }
            Ok(Peek::Unsupported) => None,
            Err(_) => return unavailable(),
        };
        if let Some(s) = &mut session {
            if let Err(r) = self.recheck(s, requested.as_deref()).await {
                return r;
            }
        }
        let rotated = self
            .0
            .sessions
            .rotate(
                family,
                &presented,
                &hash_secret(&next),
                self.0.refresh_ttl_secs,
            )
            .await;
        let stored = match rotated {
            Ok(Rotation::Rotated(s)) => s,
            Ok(Rotation::Reused) => {
                tracing::warn!(target: AUDIT_TARGET, event = "refresh_reuse_detected");
                return invalid_grant();
            }
            Ok(Rotation::Invalid) => return invalid_grant(),
            Err(_) => return unavailable(),
        };
        let session = match session {
            Some(s) => s,
            // A store without `peek`: the checks run after the rotation.
            None => {
                let mut s = stored;
                if let Err(r) = self.recheck(&mut s, requested.as_deref()).await {
                    return r;
                }
                s
            }
        };
        let next = compose_refresh(family, &next);
        self.respond(&session, next)
    }

    /// Re-reads the user (a disabled or removed user cannot refresh; roles
    /// are current) and narrows the scopes to `requested`, never widening.
    async fn recheck(
        &self,
        session: &mut Session,
        requested: Option<&[&str]>,
    ) -> Result<(), TokenResponse> {
        match self.0.auth.users().find(&session.subject).await {
            Ok(Some(u)) if !u.disabled => {
                session.roles = u.roles.clone();
                session.permissions = u.permissions.clone();
                session.scopes.retain(|s| u.scopes.contains(s));
            }
            Ok(_) => {
                let _ = self.0.sessions.revoke_family(&session.family).await;
                return Err(invalid_grant());
            }
            Err(_) => return Err(unavailable()),
        }
        if let Some(req) = requested {
            if req.iter().any(|r| !session.scopes.iter().any(|s| s == r)) {
                return Err(oauth_error(
                    "invalid_scope",
                    "A refresh cannot widen the granted scopes.",
                ));
            }
            session.scopes.retain(|s| req.contains(&s.as_str()));
        }
        Ok(())
    }

    /// Logout: revokes the caller's refresh family and the presented access
    /// token, effective at once for every instance sharing the stores.
    pub async fn logout(&self, who: &Principal) -> Result<(), crate::CredentialError> {
        if let Some(sid) = who.claims().get("sid").and_then(|v| v.as_str()) {
            self.0.sessions.revoke_family(sid).await?;
        }
        if let (Some(jti), Some(exp)) = (who.token_id(), who.expires_at()) {
            self.0.sessions.revoke_access(jti, exp).await?;
        }
        tracing::info!(target: AUDIT_TARGET, event = "logout", subject = who.subject());
        Ok(())
    }

    /// The poem-openapi operations. `C` names the app's catalogue so that
    /// logout is documented with the app's own security scheme.
    pub fn api<C: AuthCatalogue>(&self) -> AuthApi<C> {
        AuthApi {
            service: self.clone(),
            _c: PhantomData,
        }
    }
}

/// Names the catalogue the token API documents its bearer scheme with.
///
/// ```
/// use secure_runtime::{tokens::AuthCatalogue, Catalogue};
/// pub const ACCESS: Catalogue = Catalogue::new().token_url("/auth/token");
/// pub struct Access;
/// impl AuthCatalogue for Access {
///     const CATALOGUE: Option<&'static Catalogue> = Some(&ACCESS);
/// }
/// ```
pub trait AuthCatalogue: Send + Sync + 'static {
    /// The catalogue, if any.
    const CATALOGUE: Option<&'static Catalogue>;
}

/// No catalogue: logout is documented with the HTTP bearer scheme.
pub struct NoCatalogue;

impl AuthCatalogue for NoCatalogue {
    const CATALOGUE: Option<&'static Catalogue> = None;
}

/// The requirement of `POST /auth/logout`: any bearer.
pub struct LogoutRequirement<C>(PhantomData<fn() -> C>);

impl<C: AuthCatalogue> Requirement for LogoutRequirement<C> {
    const POLICY: &'static Policy = &match C::CATALOGUE {
        Some(c) => Policy::secured("poem_secure::auth::logout").with_catalogue(c),
        None => Policy::secured("poem_secure::auth::logout"),
    };
    const FORBIDDEN_DOC: &'static str = "Forbidden.";
}

/// The outcome of logout.
#[derive(ApiResponse, Debug)]
pub enum LogoutResponse {
    /// Revoked.
    #[oai(status = 204)]
    Done,
    /// The session store cannot be reached.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl<C: AuthCatalogue> OperationOutput<LogoutResponse> for LogoutRequirement<C> {
    fn convert(value: LogoutResponse) -> poem::Result<poem::Response> {
        Ok(poem::IntoResponse::into_response(value))
    }
}

/// The token endpoints as a poem-openapi API (see [`TokenService`]). They are
/// deliberately public (logout requires a bearer) and rate limited by the
/// service's login limits, hence `Protected`.
pub struct AuthApi<C = NoCatalogue> {
    service: TokenService,
    _c: PhantomData<fn() -> C>,
}

impl<C> Protected for AuthApi<C> {}

#[OpenApi(prefix_path = "/auth", tag = "AuthTag::Auth")]
impl<C: AuthCatalogue> AuthApi<C> {
    /// OAuth2 token endpoint (password and refresh_token grants).
    #[oai(path = "/token", method = "post")]
    async fn token(&self, req: &Request, form: Form<TokenForm>) -> TokenResponse {
        let f = form.0;
        match f.grant_type.as_str() {
            "password" => match (f.username.as_deref(), f.password.as_deref()) {
                (Some(u), Some(p)) => {
                    self.service
                        .password_grant(req, u, p, f.scope.as_deref())
                        .await
                }
                _ => oauth_error(
                    "invalid_request",
                    "The password grant needs `username` and `password`.",
                ),
            },
            "refresh_token" => match f.refresh_token.as_deref() {
                Some(t) => self.service.refresh(t, f.scope.as_deref()).await,
                None => oauth_error(
                    "invalid_request",
                    "The refresh_token grant needs `refresh_token`.",
                ),
            },
            _ => oauth_error(
                "unsupported_grant_type",
                "Supported grants: password, refresh_token.",
            ),
        }
    }

    /// Rotates a refresh token: a new pair, the old refresh token dead.
    #[oai(path = "/refresh", method = "post")]
    async fn refresh(&self, form: Form<RefreshForm>) -> TokenResponse {
        self.service
            .refresh(&form.0.refresh_token, form.0.scope.as_deref())
            .await
    }

    /// Revokes the caller's refresh family and this access token.
    #[oai(path = "/logout", method = "post")]
    async fn logout(
        &self,
        _scopes: OaiScopes<LogoutRequirement<C>>,
        _guard: OaiGuard<LogoutRequirement<C>>,
        who: Principal,
    ) -> Secured<LogoutResponse, LogoutRequirement<C>> {
        Secured::new(match self.service.logout(&who).await {
            Ok(()) => LogoutResponse::Done,
            Err(_) => LogoutResponse::Unavailable(Json(Problem::new(
                503,
                "Service Unavailable",
                "The service is temporarily unavailable.",
            ))),
        })
    }
}

#[derive(poem_openapi::Tags)]
enum AuthTag {
    /// Login, refresh and logout.
    Auth,
}
