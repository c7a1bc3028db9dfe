//! The OAuth2 token endpoint (RFC 6749 §4.3 password grant, §6 refresh),
//! refresh rotation and logout, as a ready poem-openapi API.

use std::sync::Arc;

use super::token_wire::{invalid_grant, limited, oauth_error, unavailable, NO_STORE};

use poem::Request;
use poem_openapi::payload::Json;

pub use super::token_api::{
    AuthApi, AuthCatalogue, LogoutRequirement, LogoutResponse, NoCatalogue,
};
pub use super::token_wire::{
    OAuthError, Problem, RefreshForm, TokenBody, TokenForm, TokenResponse,
};

use crate::{
    issuer::sessions::InstalledSessions, issuer::sessions::Peek, issuer::sessions::Rotation,
    issuer::sessions::Session, issuer::sessions::SessionStore, issuer::users::Authenticator,
    issuer::users::LoginError, issuer::users::UserRecord, model::audit::AUDIT_TARGET,
    model::catalogue::is_scope_token, model::policy::Rate, model::rate::PartitionKey,
    model::rate::RateQuery, model::secrets::hash_secret, model::secrets::random_secret,
    web::failure::LoginAttempt, web::failure::LoginLimits, web::security::AccessToken,
    web::security::Security, ConfigError, Principal,
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
    refresh_limit: Option<Rate>,
}

/// A refresh token as given to the client: `family.secret`. The family id
/// (the access tokens' `sid`) lets the store find the one record of the
/// family; only the secret's hash is stored.
fn compose_refresh(family: &str, secret: &str) -> String {
    format!("{family}.{secret}")
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
            refresh_limit: Some(Rate::per_minute(60)),
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

    /// Limits refresh-token grants per client network (IPv6 /64) and per
    /// session (the family the token names), each at `rate`, on every
    /// endpoint that carries the grant (`/auth/token` with
    /// `grant_type=refresh_token` and `/auth/refresh`); default 60/min,
    /// `None` for none. Every attempt counts, valid or not.
    pub fn refresh_limit(self, rate: Option<Rate>) -> Self {
        self.map(|i| i.refresh_limit = rate)
    }

    /// Applies the refresh limit to one refresh attempt.
    pub(super) async fn limit_refresh(
        &self,
        req: &Request,
        refresh_token: &str,
    ) -> Result<(), TokenResponse> {
        let Some(rate) = self.0.refresh_limit else {
            return Ok(());
        };
        let security = &self.0.security;
        let ip = security.client_ip(req);
        let mut queries = vec![(
            "refresh:attempts:ip",
            RateQuery {
                bucket: "refresh:attempts:ip",
                key: PartitionKey::Ip(security.rate_key_ip(ip)),
                rate,
                ip,
            },
        )];
        // `family.secret`: the family a token names is limited too, so one
        // stolen (or demo) session cannot be refreshed in a loop from many
        // addresses.
        if let Some((family, _)) = refresh_token
            .split_once('.')
            .filter(|(f, _)| !f.is_empty() && f.len() <= 64)
        {
            queries.push((
                "refresh:attempts:family",
                RateQuery {
                    bucket: "refresh:attempts:family",
                    key: PartitionKey::Custom(family),
                    rate,
                    ip,
                },
            ));
        }
        for (name, q) in &queries {
            security
                .rate_settings()
                .enforce(q, name, "auth/refresh")
                .await
                .map_err(|e| limited(&e))?;
        }
        Ok(())
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
        let key_ip = security.rate_key_ip(ip);
        let user = username.trim().to_lowercase();
        for (key, rate) in &self.0.attempt_limits {
            let (bucket, key) = match key {
                LoginKey::Ip => ("login:attempts:ip", PartitionKey::Ip(key_ip)),
                LoginKey::IpAndUsername => (
                    "login:attempts:ip_username",
                    PartitionKey::IpUser(key_ip, &user),
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
        AuthApi::new(self.clone())
    }
}
