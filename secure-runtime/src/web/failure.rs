//! Failure-driven limits (fail2ban style) and login protection.

use std::net::IpAddr;

use poem::Request;

use crate::model::rate::{OwnedPartitionKey, PartitionKey, RateQuery};
use crate::{model::rejection::AuthRejection, Rate, Security};

/// A limit that counts only failed attempts — failed logins, refused tokens —
/// so that honest traffic is never throttled by it.
///
/// It shares the [`Security`]'s limiter, allow-lists and dry-run setting.
/// Before the attempt, [`guard`](Self::guard) refuses with 429 when the key
/// has no failures left, and otherwise *reserves* one; the attempt then
/// reports [`succeeded`](FailureAttempt::succeeded) (the reservation is
/// given back) or [`failed`](FailureAttempt::failed) (it is kept). Reserving
/// first makes the limit exact under concurrency: a thousand parallel
/// password guesses get no more tries than a thousand sequential ones. An
/// attempt dropped without a verdict counts as a failure.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use secure_runtime::{FailureLimit, PartitionKey, Rate, Security};
///
/// const BAD_TOKENS: FailureLimit =
///     FailureLimit::new("bad_tokens", Rate::new(3, 60));
/// let security = Security::builder().build().unwrap();
/// let ip = Some("192.0.2.1".parse().unwrap());
///
/// // Successes never count...
/// for _ in 0..10 {
///     BAD_TOKENS.guard(&security, PartitionKey::Ip(ip), ip).await.unwrap().succeeded().await;
/// }
/// // ...failures do.
/// for _ in 0..3 {
///     BAD_TOKENS.guard(&security, PartitionKey::Ip(ip), ip).await.unwrap().failed();
/// }
/// let refused = BAD_TOKENS.guard(&security, PartitionKey::Ip(ip), ip).await.unwrap_err();
/// assert_eq!(refused.status(), 429);
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    bucket: &'static str,
    rate: Rate,
}

impl FailureLimit {
    /// A limit of `rate` failures per key in its own `bucket` (also the
    /// policy name of its `RateLimit` header fields).
    pub const fn new(bucket: &'static str, rate: Rate) -> FailureLimit {
        FailureLimit { bucket, rate }
    }

    /// The bucket.
    pub const fn bucket(&self) -> &'static str {
        self.bucket
    }

    /// The rate of failures admitted.
    pub const fn rate(&self) -> Rate {
        self.rate
    }

    /// Before an attempt: 429 when `key` has no failures left (503 when the
    /// limiter is unavailable and fails closed); otherwise reserves one
    /// failure and returns the pending attempt.
    ///
    /// # Errors
    /// The refusal to answer with.
    pub async fn guard(
        &self,
        security: &Security,
        key: PartitionKey<'_>,
        ip: Option<IpAddr>,
    ) -> Result<FailureAttempt, AuthRejection> {
        let q = RateQuery {
            bucket: self.bucket,
            key,
            rate: self.rate,
            ip,
        };
        let e = security
            .rate_settings()
            .enforce(&q, self.bucket, self.bucket)
            .await?;
        Ok(FailureAttempt {
            security: security.clone(),
            limit: *self,
            key: key.to_owned_key(),
            ip,
            reserved: e.counted,
        })
    }

    /// Records a failure observed without a prior [`guard`](Self::guard)
    /// (a failure that is already over the limit changes nothing).
    pub async fn record_failure(
        &self,
        security: &Security,
        key: PartitionKey<'_>,
        ip: Option<IpAddr>,
    ) {
        let q = RateQuery {
            bucket: self.bucket,
            key,
            rate: self.rate,
            ip,
        };
        // Already refused or unavailable: logged by `enforce`; nothing else to do.
        let _ = security
            .rate_settings()
            .enforce(&q, self.bucket, self.bucket)
            .await;
    }
}

/// An attempt admitted by [`FailureLimit::guard`], holding one reserved
/// failure until its outcome is known. Dropping it counts as a failure.
#[must_use = "report the outcome with `succeeded().await` or `failed()`"]
#[derive(Debug)]
pub struct FailureAttempt {
    security: Security,
    limit: FailureLimit,
    key: OwnedPartitionKey,
    ip: Option<IpAddr>,
    reserved: bool,
}

impl FailureAttempt {
    /// The attempt succeeded: it does not count.
    pub async fn succeeded(self) {
        if self.reserved {
            let q = RateQuery {
                bucket: self.limit.bucket,
                key: self.key.as_key(),
                rate: self.limit.rate,
                ip: self.ip,
            };
            self.security.rate_settings().refund(&q).await;
        }
    }

    /// The attempt failed: it counts (the same as dropping it).
    pub fn failed(self) {}
}

/// Login protection for a token or login endpoint: failure-driven limits per
/// client IP and per (client IP, user name), with an opt-in per-user-name
/// limit.
///
/// Defaults (all counting failures only):
/// - per (client IP, user name): `Rate { count: 5, period_secs: 300 }` — five
///   wrong passwords, then one more guess a minute;
/// - per client IP: `Rate { count: 50, period_secs: 300 }` — fifty failures
///   over any user names, then one every 6 s.
///
/// A limit per user name alone is **not** enabled by default: anyone who
/// knows a user name could lock its owner out from anywhere (OWASP ASVS
/// 6.1.1 / V2.2.1). [`per_username_allowing_lockout`](Self::per_username_allowing_lockout)
/// enables it explicitly, for deployments that prefer that risk to
/// distributed guessing.
///
/// User names are compared after trimming and lower-casing, so `Alice` and
/// `alice ` share a counter (this only ever merges counters).
///
/// For the CPU cost of password hashing, limit *all* attempts too, e.g.
/// `#[public(rate = "30/min", rate_key = ip)]` on the token endpoint.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use secure_runtime::{LoginLimits, Rate, Security};
///
/// const LOGIN: LoginLimits = LoginLimits::new()
///     .per_ip_and_username(Some(Rate::new(3, 900)));
/// let security = Security::builder().build().unwrap();
/// let ip = Some("192.0.2.1".parse().unwrap());
///
/// for _ in 0..3 {
///     let attempt = LOGIN.guard_ip(&security, ip, "alice").await.unwrap();
///     // ... the password was wrong:
///     attempt.failed();
/// }
/// assert_eq!(LOGIN.guard_ip(&security, ip, "Alice").await.unwrap_err().status(), 429);
/// // Another IP is not locked out, nor is another user from this IP.
/// let other = Some("198.51.100.7".parse().unwrap());
/// LOGIN.guard_ip(&security, other, "alice").await.unwrap().succeeded().await;
/// LOGIN.guard_ip(&security, ip, "bob").await.unwrap().succeeded().await;
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    per_ip: Option<Rate>,
    per_ip_username: Option<Rate>,
    per_username: Option<Rate>,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginLimits {
    /// The bucket of the per-IP limit.
    pub const IP_BUCKET: &'static str = "login:ip";
    /// The bucket of the per-(IP, user name) limit.
    pub const IP_USERNAME_BUCKET: &'static str = "login:ip_username";
    /// The bucket of the opt-in per-user-name limit.
    pub const USERNAME_BUCKET: &'static str = "login:username";

    /// The defaults described above.
    pub const fn new() -> LoginLimits {
        LoginLimits {
            per_ip: Some(Rate::new(50, 300)),
            per_ip_username: Some(Rate::new(5, 300)),
            per_username: None,
        }
    }

    /// Sets (or with `None` removes) the failure limit per client IP.
    #[must_use]
    pub const fn per_ip(mut self, rate: Option<Rate>) -> LoginLimits {
        self.per_ip = rate;
        self
    }

    /// Sets (or with `None` removes) the failure limit per (client IP, user
    /// name).
    #[must_use]
    pub const fn per_ip_and_username(mut self, rate: Option<Rate>) -> LoginLimits {
        self.per_ip_username = rate;
        self
    }

    /// **Opt-in, with a denial-of-service risk**: also limits failures per
    /// user name alone, from any IP. An attacker who knows a user name can
    /// then keep its owner locked out by failing on purpose from anywhere
    /// (OWASP ASVS 6.1.1). Prefer the per-(IP, user name) limit; use this
    /// only together with a way for the owner to get in (e.g. a second
    /// factor or a reset link) and with monitoring.
    #[must_use]
    pub const fn per_username_allowing_lockout(mut self, rate: Rate) -> LoginLimits {
        self.per_username = Some(rate);
        self
    }

    /// [`guard_ip`](Self::guard_ip) with the request's client IP
    /// ([`Security::client_ip`], which honours trusted proxies).
    ///
    /// # Errors
    /// The 429 (or 503) to answer with; no password must be checked then.
    pub async fn guard(
        &self,
        security: &Security,
        req: &Request,
        username: &str,
    ) -> Result<LoginAttempt, AuthRejection> {
        self.guard_ip(security, security.client_ip(req), username)
            .await
    }

    /// Before checking a password: refuses when any of the limits has no
    /// failures left; otherwise reserves one failure in each and returns the
    /// pending attempt.
    ///
    /// # Errors
    /// The 429 (or 503) to answer with; no password must be checked then.
    pub async fn guard_ip(
        &self,
        security: &Security,
        ip: Option<IpAddr>,
        username: &str,
    ) -> Result<LoginAttempt, AuthRejection> {
        let user = normalize(username);
        let key_ip = security.rate_key_ip(ip);
        let limits = [
            self.per_ip_username.map(|r| {
                (
                    FailureLimit::new(Self::IP_USERNAME_BUCKET, r),
                    PartitionKey::IpUser(key_ip, &user),
                )
            }),
            self.per_ip.map(|r| {
                (
                    FailureLimit::new(Self::IP_BUCKET, r),
                    PartitionKey::Ip(key_ip),
                )
            }),
            self.per_username.map(|r| {
                (
                    FailureLimit::new(Self::USERNAME_BUCKET, r),
                    PartitionKey::User(&user),
                )
            }),
        ];
        let mut held = Vec::with_capacity(3);
        for (limit, key) in limits.into_iter().flatten() {
            match limit.guard(security, key, ip).await {
                Ok(a) => held.push(a),
                Err(e) => {
                    // A refused attempt is not an attempt: give back the
                    // reservations already made.
                    for a in held {
                        a.succeeded().await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(LoginAttempt { held })
    }
}

fn normalize(username: &str) -> String {
    username.trim().to_lowercase()
}

/// A login attempt admitted by [`LoginLimits::guard`]; report its outcome.
/// Dropping it counts as a failure.
#[must_use = "report the outcome with `succeeded().await` or `failed()`"]
#[derive(Debug)]
pub struct LoginAttempt {
    held: Vec<FailureAttempt>,
}

impl LoginAttempt {
    /// The password was right: the attempt does not count.
    pub async fn succeeded(self) {
        for a in self.held {
            a.succeeded().await;
        }
    }

    /// The password (or user name) was wrong: the attempt counts.
    pub fn failed(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryRateLimiter, PartitionKey};

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[tokio::test]
    async fn successes_never_count_and_failures_do() {
        let sec = Security::builder().build().unwrap();
        let lim = FailureLimit::new("f", Rate::new(2, 3600));
        let k = PartitionKey::User("u");
        for _ in 0..100 {
            lim.guard(&sec, k, None).await.unwrap().succeeded().await;
        }
        lim.guard(&sec, k, None).await.unwrap().failed();
        // Dropped without a verdict: a failure.
        drop(lim.guard(&sec, k, None).await.unwrap());
        assert_eq!(lim.guard(&sec, k, None).await.unwrap_err().status(), 429);
    }

    #[tokio::test]
    async fn parallel_guesses_get_no_more_tries_than_the_limit() {
        let sec = Security::builder()
            .rate_limiter(MemoryRateLimiter::new())
            .build()
            .unwrap();
        let lim = FailureLimit::new("f", Rate::new(5, 3600));
        // All guards first (the attempts are in flight), then all fail.
        let mut admitted = Vec::new();
        for _ in 0..50 {
            if let Ok(a) = lim.guard(&sec, PartitionKey::User("victim"), None).await {
                admitted.push(a);
            }
        }
        assert_eq!(admitted.len(), 5);
        admitted.into_iter().for_each(FailureAttempt::failed);
    }

    #[tokio::test]
    async fn record_failure_counts_without_a_guard() {
        let sec = Security::builder().build().unwrap();
        let lim = FailureLimit::new("f", Rate::new(1, 3600));
        lim.record_failure(&sec, PartitionKey::Ip(ip("192.0.2.9")), None)
            .await;
        assert!(lim
            .guard(&sec, PartitionKey::Ip(ip("192.0.2.9")), None)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn login_refusal_gives_back_the_other_reservations() {
        let sec = Security::builder().build().unwrap();
        let one = Rate::new(1, 3600);
        let login = LoginLimits::new()
            .per_ip_and_username(Some(one))
            .per_ip(Some(Rate::new(2, 3600)));
        login
            .guard_ip(&sec, ip("192.0.2.1"), "alice")
            .await
            .unwrap()
            .failed();
        // (IP, alice) is spent; the refusal must not consume the IP's quota.
        for _ in 0..5 {
            assert!(login
                .guard_ip(&sec, ip("192.0.2.1"), "alice")
                .await
                .is_err());
        }
        login
            .guard_ip(&sec, ip("192.0.2.1"), "bob")
            .await
            .unwrap()
            .failed();
        // Now the IP has failed twice: everything from it is refused.
        assert!(login
            .guard_ip(&sec, ip("192.0.2.1"), "carol")
            .await
            .is_err());
        // The username-only limit is off by default: alice is not locked out
        // from elsewhere.
        login
            .guard_ip(&sec, ip("198.51.100.1"), "alice")
            .await
            .unwrap()
            .succeeded()
            .await;
    }

    #[tokio::test]
    async fn opt_in_username_limit_locks_out_from_everywhere() {
        let sec = Security::builder().build().unwrap();
        let login = LoginLimits::new().per_username_allowing_lockout(Rate::new(2, 3600));
        login
            .guard_ip(&sec, ip("192.0.2.1"), "alice")
            .await
            .unwrap()
            .failed();
        login
            .guard_ip(&sec, ip("192.0.2.2"), "ALICE")
            .await
            .unwrap()
            .failed();
        assert!(login
            .guard_ip(&sec, ip("198.51.100.1"), "alice")
            .await
            .is_err());
    }
}
