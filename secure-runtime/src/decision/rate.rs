//! The rate-limit step of the decision: allow-lists, dry run, and the
//! limiter's answer turned into an admission or a 429.

use std::{
    collections::HashSet,
    sync::{Arc, OnceLock},
};

use ipnet::IpNet;

use crate::model::{
    answer::Answer,
    audit::AUDIT_TARGET,
    rate::{LimiterUnavailable, PartitionKey, RateLimiter, RateOutcome, RateQuery, RateStatus},
    rejection::{AuthRejection, RejectionKind},
};

/// Per-request slot through which the guard hands the route's rate status to
/// [`crate::SecurityEndpoint`], which adds the header fields to the response
/// (only installed when `rate_limit_headers(true)`).
#[derive(Clone, Default)]
pub(crate) struct RateSlot(pub(crate) Arc<OnceLock<RateStatus>>);

/// The rate-limit configuration of a [`crate::Security`].
pub(crate) struct RateSettings {
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) allow_ips: Vec<IpNet>,
    pub(crate) allow_keys: HashSet<Box<str>>,
    pub(crate) dry_run: bool,
    pub(crate) headers: bool,
    /// What a per-IP limit does for a client without an IP address.
    pub(crate) unknown_client: UnknownClient,
}

/// What a per-IP limit does with a client whose address is unknown (a
/// Unix-socket peer, or a trusted proxy that sent no forwarding header).
/// See [`SecurityBuilder::unknown_client`](crate::SecurityBuilder::unknown_client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownClient {
    /// Such clients share one bucket per limit; the first time it happens
    /// the process logs a warning (never silently).
    #[default]
    SharedBucket,
    /// Such a request is refused (500, an error log naming the fix): for
    /// deployments that must never pool unknown clients.
    Refuse,
}

/// What [`RateSettings::enforce`] did with an admitted request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Enforced {
    /// The request was counted by the limiter (and may be refunded).
    pub(crate) counted: bool,
    /// What the header fields report (`None`: exempt or unknown).
    pub(crate) status: Option<RateStatus>,
}

impl RateSettings {
    pub(crate) fn new(limiter: Arc<dyn RateLimiter>) -> RateSettings {
        RateSettings {
            limiter,
            allow_ips: Vec::new(),
            allow_keys: HashSet::new(),
            dry_run: false,
            headers: false,
            unknown_client: UnknownClient::default(),
        }
    }

    /// A per-IP key without an IP: pooled (with a warning, once) or refused.
    fn unknown_client(&self, q: &RateQuery<'_>) -> Result<(), AuthRejection> {
        if !matches!(
            q.key,
            PartitionKey::Ip(None) | PartitionKey::IpUser(None, _)
        ) {
            return Ok(());
        }
        match self.unknown_client {
            UnknownClient::SharedBucket => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!(target: AUDIT_TARGET, event = "unknown_client_ip", bucket = q.bucket,
                        "a client without an IP address is rate limited in one bucket shared by all such clients; configure trusted_proxies with the forwarding header your proxy sends, or SecurityBuilder::unknown_client(UnknownClient::Refuse)");
                });
                Ok(())
            }
            UnknownClient::Refuse => {
                tracing::error!(target: AUDIT_TARGET, event = "unknown_client_ip", bucket = q.bucket,
                    "refused: a per-IP limit cannot tell this client apart (no IP address); configure trusted_proxies with the forwarding header your proxy sends");
                Err(AuthRejection::new(RejectionKind::Misconfigured))
            }
        }
    }

    /// Whether an allow-list exempts the query: the client address, and —
    /// `by_key`, for a route's limit, whose key is an authenticated subject
    /// or API key — the key. Never a value the client submits (a login's
    /// user name, a custom key).
    pub(crate) fn exempt(&self, q: &RateQuery<'_>, by_key: bool) -> bool {
        let by_ip = !self.allow_ips.is_empty()
            && q.ip
                .map(|ip| ip.to_canonical())
                .is_some_and(|ip| self.allow_ips.iter().any(|n| n.contains(&ip)));
        let by_key = by_key
            && !self.allow_keys.is_empty()
            && q.key
                .allow_value()
                .is_some_and(|k| self.allow_keys.contains(k));
        by_ip || by_key
    }

    /// Asks the limiter about `q`; `None` when an allow-list exempts it
    /// (nothing is counted).
    pub(crate) fn begin<'a>(
        &'a self,
        q: RateQuery<'a>,
    ) -> Result<Option<Answer<'a, Result<RateOutcome, LimiterUnavailable>>>, AuthRejection> {
        if self.exempt(&q, true) {
            return Ok(None);
        }
        self.unknown_client(&q)?;
        Ok(Some(self.limiter.check(q)))
    }

    /// Applies allow-lists, the limiter and dry-run to one request: `Ok`
    /// admits, `Err` is the 429 (or the 503 of an unavailable limiter).
    /// For limits outside the decision (failure limits, the token
    /// endpoint), whose keys the client chooses: only the address
    /// allow-list exempts.
    pub(crate) async fn enforce(
        &self,
        q: &RateQuery<'_>,
        policy: &'static str,
        route: &str,
    ) -> Result<Enforced, AuthRejection> {
        if self.exempt(q, false) {
            return Ok(Enforced {
                counted: false,
                status: None,
            });
        }
        self.unknown_client(q)?;
        let result = self.limiter.check(*q).await;
        self.decide(q, result, policy, route)
    }

    pub(crate) fn decide(
        &self,
        q: &RateQuery<'_>,
        result: Result<RateOutcome, LimiterUnavailable>,
        policy: &'static str,
        route: &str,
    ) -> Result<Enforced, AuthRejection> {
        match result {
            Ok(d) => {
                let status = RateStatus::new(policy, q.rate, &d);
                if d.allowed {
                    return Ok(Enforced {
                        counted: true,
                        status: Some(status),
                    });
                }
                let retry = d.retry_after_secs().unwrap_or(1);
                if self.dry_run {
                    tracing::warn!(target: AUDIT_TARGET, event = "rate_limit_dry_run", route,
                        bucket = q.bucket, key = %q.key, retry_after_secs = retry,
                        "rate limit exceeded; admitted because dry-run is on");
                    return Ok(Enforced {
                        counted: false,
                        status: Some(status),
                    });
                }
                tracing::info!(target: AUDIT_TARGET, event = "rate_limited", route,
                    bucket = q.bucket, key = %q.key, retry_after_secs = retry);
                Err(AuthRejection::rate_limited_with(retry, status))
            }
            Err(LimiterUnavailable) => {
                if self.dry_run {
                    tracing::error!(target: AUDIT_TARGET, event = "limiter_unavailable", route,
                        bucket = q.bucket, "rate limiter unavailable; admitted because dry-run is on");
                    return Ok(Enforced {
                        counted: false,
                        status: None,
                    });
                }
                tracing::error!(target: AUDIT_TARGET, event = "limiter_unavailable", route,
                    bucket = q.bucket, "rate limiter unavailable; refusing (fail closed)");
                Err(AuthRejection::unavailable())
            }
        }
    }

    /// Gives back one admission counted by `enforce`.
    pub(crate) async fn refund(&self, q: &RateQuery<'_>) {
        if self.limiter.refund(*q).await.is_err() {
            tracing::error!(target: AUDIT_TARGET, event = "limiter_unavailable", bucket = q.bucket,
                "could not refund a rate-limit reservation");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::audit::capture::Capture;
    use crate::{
        model::rate::{fingerprint, policy_name},
        MemoryRateLimiter, PartitionKey, Rate,
    };
    use tracing::Level;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn spent(settings: &RateSettings) -> RateQuery<'static> {
        let q = RateQuery {
            bucket: "logged",
            key: PartitionKey::User("u"),
            rate: Rate::new(1, 60),
            ip: None,
        };
        assert!(block_on(settings.enforce(&q, "default", "r")).is_ok());
        q
    }

    #[test]
    fn dry_run_admits_and_logs_a_warning() {
        let mut s = RateSettings::new(Arc::new(MemoryRateLimiter::new()));
        s.dry_run = true;
        let q = spent(&s);
        let log = Capture::default();
        let e = log.run(|| block_on(s.enforce(&q, "default", "r"))).unwrap();
        assert!(!e.counted);
        assert_eq!(e.status.map(|st| st.remaining), Some(0));
        assert_eq!(
            log.events(),
            [(Level::WARN, "rate_limit_dry_run".to_owned())]
        );
    }

    #[test]
    fn enforcing_refuses_and_logs_at_info() {
        let s = RateSettings::new(Arc::new(MemoryRateLimiter::new()));
        let q = spent(&s);
        let log = Capture::default();
        let e = log
            .run(|| block_on(s.enforce(&q, "default", "r")))
            .unwrap_err();
        assert_eq!(e.status(), 429);
        assert_eq!(e.retry_after_secs(), Some(60));
        let st = e.rate_status().expect("RateLimit fields");
        assert_eq!(
            (st.quota, st.window_secs, st.remaining, st.reset_secs),
            (1, 60, 0, 60)
        );
        assert_eq!(log.events(), [(Level::INFO, "rate_limited".to_owned())]);
    }

    struct Down;
    impl RateLimiter for Down {
        fn check<'a>(
            &'a self,
            _: RateQuery<'a>,
        ) -> Answer<'a, Result<RateOutcome, LimiterUnavailable>> {
            Answer::later(async { Err(LimiterUnavailable) })
        }
        fn refund<'a>(&'a self, _: RateQuery<'a>) -> Answer<'a, Result<(), LimiterUnavailable>> {
            Answer::later(async { Err(LimiterUnavailable) })
        }
    }

    #[test]
    fn unavailable_limiter_fails_closed_with_503_and_an_error_log() {
        let s = RateSettings::new(Arc::new(Down));
        let q = RateQuery {
            bucket: "b",
            key: PartitionKey::Ip(Some(std::net::Ipv4Addr::LOCALHOST.into())),
            rate: Rate::new(1, 1),
            ip: None,
        };
        let log = Capture::default();
        let e = log.run(|| block_on(s.enforce(&q, "default", "r")));
        assert_eq!(e.unwrap_err().status(), 503);
        assert_eq!(
            log.events(),
            [(Level::ERROR, "limiter_unavailable".to_owned())]
        );
        // Dry-run admits even then, still logging the error.
        let mut s = RateSettings::new(Arc::new(Down));
        s.dry_run = true;
        let log = Capture::default();
        assert!(log.run(|| block_on(s.enforce(&q, "default", "r"))).is_ok());
        assert_eq!(
            log.events(),
            [(Level::ERROR, "limiter_unavailable".to_owned())]
        );
    }

    #[test]
    fn policy_names_that_need_escaping_become_default() {
        assert_eq!(policy_name("login"), "login");
        assert_eq!(policy_name("app::handler"), "app::handler");
        assert_eq!(policy_name("a\"b"), "default");
        assert_eq!(policy_name(""), "default");
        assert_eq!(policy_name("naïve"), "default");
    }

    #[test]
    fn partition_encoding_is_unambiguous() {
        let enc = |k: PartitionKey<'_>| {
            let mut v = Vec::new();
            k.encode(&mut v);
            v
        };
        assert_ne!(enc(PartitionKey::User("a")), enc(PartitionKey::ApiKey("a")));
        assert_ne!(
            enc(PartitionKey::User("ab")),
            enc(PartitionKey::Custom("ab"))
        );
        assert_ne!(
            enc(PartitionKey::IpUser(None, "x")),
            enc(PartitionKey::IpUser(Some("0.0.0.0".parse().unwrap()), "x"))
        );
    }

    #[test]
    fn fingerprints_separate_buckets_and_keys_short_and_long() {
        let st = std::hash::RandomState::new();
        let long = "x".repeat(500);
        let long2 = format!("{}y", "x".repeat(499));
        let f = |b: &str, k: PartitionKey<'_>| fingerprint(&st, b, &k);
        assert_eq!(
            f("b", PartitionKey::User(&long)),
            f("b", PartitionKey::User(&long.clone()))
        );
        assert_ne!(
            f("b", PartitionKey::User(&long)),
            f("b", PartitionKey::User(&long2))
        );
        assert_ne!(
            f("b", PartitionKey::User("u")),
            f("c", PartitionKey::User("u"))
        );
        // The bucket/key boundary is unambiguous.
        assert_ne!(
            f("ab", PartitionKey::Custom("c")),
            f("a", PartitionKey::Custom("bc"))
        );
        assert_ne!(
            f("b", PartitionKey::User("u")),
            f("b", PartitionKey::ApiKey("u"))
        );
    }

    #[test]
    fn allow_keys_match_authenticated_subjects_and_key_ids_only() {
        let mut s = RateSettings::new(Arc::new(MemoryRateLimiter::new()));
        s.allow_keys.insert("svc-monitor".into());
        s.allow_ips.push("192.0.2.0/24".parse().unwrap());
        let q = |key, ip: Option<&str>| RateQuery {
            bucket: "b",
            key,
            rate: Rate::new(1, 60),
            ip: ip.map(|i| i.parse().unwrap()),
        };
        assert!(s.exempt(&q(PartitionKey::User("svc-monitor"), None), true));
        assert!(s.exempt(&q(PartitionKey::ApiKey("svc-monitor"), None), true));
        // A custom key's value, and any key of a limit whose key the client
        // submits (a login's user name), never match the allow-list.
        assert!(!s.exempt(&q(PartitionKey::Custom("svc-monitor"), None), true));
        assert!(!s.exempt(&q(PartitionKey::IpUser(None, "svc-monitor"), None), false));
        assert!(!s.exempt(&q(PartitionKey::User("alice"), Some("198.51.100.1")), true));
        assert!(s.exempt(&q(PartitionKey::User("alice"), Some("192.0.2.77")), true));
        assert!(s.exempt(&q(PartitionKey::Ip(None), Some("::ffff:192.0.2.1")), false));
    }
}
