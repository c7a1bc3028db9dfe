//! Failure-driven limits on the credentials a client can guess: HTTP Basic
//! passwords and API keys. Before the (expensive) verification, one failure
//! is reserved per client network and per (client, named identity); a
//! success gives the reservations back, so only failures count. A client
//! over its budget gets a 429 with `Retry-After` before any hashing runs.

use std::{future::Future, net::IpAddr};

use super::rate::RateSettings;
use crate::{
    model::{
        policy::Rate,
        rate::{PartitionKey, RateQuery},
        rejection::AuthRejection,
    },
    verify::credentials::CredentialError,
};

/// The failure budgets of guessable credentials (see
/// [`SecurityBuilder::credential_failure_limits`](crate::SecurityBuilder::credential_failure_limits)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CredentialLimits {
    /// Failures per client network (IPv6 /64), over every identity.
    pub(crate) per_client: Option<Rate>,
    /// Failures per (client network, user name or API key id).
    pub(crate) per_client_and_identity: Option<Rate>,
}

impl CredentialLimits {
    /// 50 failures per 5 minutes per client, 5 per (client, identity): the
    /// token endpoint's login defaults.
    pub(crate) const DEFAULT: CredentialLimits = CredentialLimits {
        per_client: Some(Rate::new(50, 300)),
        per_client_and_identity: Some(Rate::new(5, 300)),
    };

    pub(crate) fn is_off(&self) -> bool {
        self.per_client.is_none() && self.per_client_and_identity.is_none()
    }
}

/// The bucket of invalid bearer tokens per client (counted after the
/// verification, which is cheap: a valid token never touches the limiter).
pub(crate) const BEARER_BUCKET: &str = "auth:bearer:failures:client";

/// Which credential a budget is for (its buckets are separate).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Guessable {
    Basic,
    ApiKey,
}

impl Guessable {
    fn buckets(self) -> (&'static str, &'static str) {
        match self {
            Guessable::Basic => ("auth:basic:failures:client", "auth:basic:failures:identity"),
            Guessable::ApiKey => (
                "auth:api_key:failures:client",
                "auth:api_key:failures:identity",
            ),
        }
    }
}

/// The longest identity (user name, key id) a budget keys on; longer ones
/// are cut (they never name a real account).
const MAX_IDENTITY_BYTES: usize = 256;

/// What a failure budget needs to know about the request.
pub(crate) struct Attempt<'a> {
    pub(crate) settings: &'a RateSettings,
    pub(crate) limits: CredentialLimits,
    pub(crate) kind: Guessable,
    pub(crate) route: &'static str,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) ip_key: Option<IpAddr>,
}

impl Attempt<'_> {
    /// Runs `verify` within the budgets: `Err` is the 429 (or 503) of a
    /// client over budget, answered before `verify` runs.
    pub(crate) async fn run<T, F>(
        self,
        identity: Option<&str>,
        verify: impl FnOnce() -> F,
    ) -> Result<Result<T, CredentialError>, AuthRejection>
    where
        F: Future<Output = Result<T, CredentialError>>,
    {
        let identity: Option<String> = identity.map(|id| {
            let mut end = id.len().min(MAX_IDENTITY_BYTES);
            while !id.is_char_boundary(end) {
                end -= 1;
            }
            id[..end].to_lowercase()
        });
        let (client_bucket, identity_bucket) = self.kind.buckets();
        let mut queries: Vec<(&'static str, RateQuery<'_>)> = Vec::with_capacity(2);
        if let (Some(rate), Some(id)) = (self.limits.per_client_and_identity, identity.as_deref()) {
            queries.push((
                identity_bucket,
                RateQuery {
                    bucket: identity_bucket,
                    key: PartitionKey::IpUser(self.ip_key, id),
                    rate,
                    ip: self.ip,
                },
            ));
        }
        if let Some(rate) = self.limits.per_client {
            queries.push((
                client_bucket,
                RateQuery {
                    bucket: client_bucket,
                    key: PartitionKey::Ip(self.ip_key),
                    rate,
                    ip: self.ip,
                },
            ));
        }
        let mut reserved = Vec::with_capacity(queries.len());
        for (name, q) in &queries {
            match self.settings.enforce(q, name, self.route).await {
                Ok(done) if done.counted => reserved.push(*q),
                Ok(_) => {}
                Err(refusal) => {
                    // A refused attempt is not an attempt: give back what
                    // was reserved for it.
                    for q in &reserved {
                        self.settings.refund(q).await;
                    }
                    return Err(refusal);
                }
            }
        }
        // Only now is the verifier asked (it may hash eagerly).
        let verdict = verify().await;
        // Only a wrong credential counts; a success, or a store that could
        // not answer, gives the reservations back.
        if !matches!(verdict, Err(CredentialError::Invalid)) {
            for q in &reserved {
                self.settings.refund(q).await;
            }
        }
        Ok(verdict)
    }
}
