//! Layer 4, the decision: one state machine that authenticates, checks
//! revocation, applies the rate limit, the grants and the custom check, in
//! that order, polling each store's [`Answer`].
//!
//! Every step is written once. A store that answers at once
//! ([`Answer::Ready`]: static JWT keys, the in-memory limiter and session
//! store) lets the machine go straight on to the next step in the same poll,
//! so the common configuration decides in one poll, without a future and
//! without an allocation; a store that needs I/O ([`Answer::Later`]) parks
//! the machine on that step until it answers.
//!
//! What a step borrows lives in the request ([`Slots`]): the verified
//! principal and a custom rate key are recorded there before the steps that
//! borrow them, so the machine holds no reference into itself.

mod audit;
mod basic;
pub(crate) mod failures;
// Without `testing`, a stub that never finds a mock.
#[cfg_attr(not(feature = "testing"), path = "mocks_off.rs")]
pub(crate) mod mocks;
pub(crate) mod rate;

use std::{
    net::IpAddr,
    sync::OnceLock,
    task::{Context, Poll},
};

use poem::Request;

use self::{
    audit::{misconfigured, refused, token_refused, unauthenticated},
    basic::{bearer_result, verify_basic},
    rate::{Enforced, RateSettings, RateSlot},
};
use crate::{
    model::{
        answer::Answer,
        policy::{CheckFuture, Policy, RateKey},
        principal::{CredentialKind, Principal},
        rate::{LimiterUnavailable, PartitionKey, RateOutcome, RateQuery},
        rejection::{AuthRejection, RejectionKind},
    },
    verify::{
        credentials::{ApiKeyVerifier, BasicVerifier, CredentialError, RevocationList},
        jwt::{JwtVerifier, TokenError},
    },
};

/// The verifiers and stores a decision consults (built once, by
/// [`SecurityBuilder::build`](crate::SecurityBuilder::build)).
pub(crate) struct Decider {
    pub(crate) jwt: Option<JwtVerifier>,
    pub(crate) api_keys: Option<std::sync::Arc<dyn ApiKeyVerifier>>,
    pub(crate) basic: Option<std::sync::Arc<dyn BasicVerifier>>,
    pub(crate) revocations: Option<std::sync::Arc<dyn RevocationList>>,
    pub(crate) rate: RateSettings,
    /// Failure budgets of Basic passwords and API keys.
    pub(crate) failures: failures::CredentialLimits,
    /// Principals registered by test code (feature `testing` only).
    #[cfg(feature = "testing")]
    pub(crate) mocks: mocks::MockRegistry,
}

/// A presented `Authorization` credential, borrowed from the request.
#[derive(Clone, Copy)]
pub(crate) enum Presented<'r> {
    Bearer(&'r str),
    Basic(&'r str),
}

/// What a request presents: the `Authorization` credential and the API key,
/// each only when the policy accepts its kind.
#[derive(Clone, Copy, Default)]
pub(crate) struct Credentials<'r> {
    pub(crate) authz: Option<Presented<'r>>,
    pub(crate) api_key: Option<&'r str>,
}

/// Per-request storage the decision borrows from (installed by the
/// [`Security`](crate::Security) middleware).
#[derive(Default, Clone)]
pub(crate) struct Slots {
    /// The authenticated caller.
    pub(crate) principal: OnceLock<Principal>,
    /// A custom `rate_key` function's answer.
    pub(crate) custom_key: OnceLock<String>,
    /// Set once a policy admitted the request: only then do extractors see
    /// the principal.
    pub(crate) admitted: OnceLock<()>,
    /// The id of the policy whose typed `check` is still to run, in the
    /// handler, once its arguments are extracted.
    pub(crate) check_due: OnceLock<&'static str>,
}

/// What the web layer hands a decision.
pub(crate) struct Input<'r> {
    pub(crate) creds: Credentials<'r>,
    /// The client's address (allow-lists, logs).
    pub(crate) ip: Option<IpAddr>,
    /// The client's network as per-IP limits count it (IPv6 by /64).
    pub(crate) ip_key: Option<IpAddr>,
    /// For custom `check` and `rate_key` functions only.
    pub(crate) req: &'r Request,
    pub(crate) slots: &'r Slots,
    /// Where a limited route leaves its rate status for the response headers.
    pub(crate) rate_slot: Option<&'r RateSlot>,
}

/// The outcome: the admitted caller (`None`: anonymous on a public route).
pub(crate) type Verdict<'r> = Result<Option<&'r Principal>, AuthRejection>;

/// Where the machine stands.
enum Step<'r> {
    /// Nothing done yet.
    Start,
    /// Verifying the `Authorization` credential (a key source, or Basic).
    Authz(Answer<'r, Result<Principal, AuthRejection>>),
    /// An invalid bearer token is counted against the client's failure
    /// budget: within it the answer stays the 401, over it a 429.
    BearerFailure(
        RateQuery<'r>,
        Answer<'r, Result<RateOutcome, LimiterUnavailable>>,
        Option<AuthRejection>,
    ),
    /// The bearer's revocation check.
    Revocation(&'r Principal, Answer<'r, Result<bool, CredentialError>>),
    /// Verifying the API key (`first`: the `Authorization` principal, which
    /// wins when both were presented and both pass).
    ApiKey(
        Option<Principal>,
        Answer<'r, Result<Principal, AuthRejection>>,
    ),
    /// The rate limit.
    Limit(
        Option<&'r Principal>,
        RateQuery<'r>,
        Answer<'r, Result<RateOutcome, LimiterUnavailable>>,
    ),
    /// The custom `check`.
    Check(&'r Principal, CheckFuture<'r>),
    /// Answered.
    Done,
}

/// What a step leads to.
enum Next<'r> {
    Go(Step<'r>),
    Finish(Verdict<'r>),
}

/// One request's decision for one policy.
pub(crate) struct Decision<'r> {
    d: &'r Decider,
    policy: &'static Policy,
    input: Input<'r>,
    step: Step<'r>,
}

impl<'r> Decision<'r> {
    pub(crate) fn new(d: &'r Decider, policy: &'static Policy, input: Input<'r>) -> Self {
        Decision {
            d,
            policy,
            input,
            step: Step::Start,
        }
    }

    /// Runs the steps until one must wait for I/O, or the decision is made.
    /// Polled again after its answer it refuses (never a second admission,
    /// never a panic).
    pub(crate) fn poll_decide(&mut self, cx: &mut Context<'_>) -> Poll<Verdict<'r>> {
        loop {
            let next = match &mut self.step {
                Step::Start => self.start(),
                Step::Authz(answer) => match poll_answer(answer, cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(p)) => self.authenticated_by_authz(p),
                    Poll::Ready(Err(e)) => self.authz_failed(e),
                },
                Step::BearerFailure(q, answer, refusal) => {
                    let q = *q;
                    match poll_answer(answer, cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(result) => {
                            let route = self.policy.id();
                            let refusal = refusal.take().unwrap_or_else(|| {
                                AuthRejection::new(RejectionKind::Misconfigured)
                            });
                            match self
                                .d
                                .rate
                                .decide(&q, result, failures::BEARER_BUCKET, route)
                            {
                                Ok(_) => Next::Finish(Err(refusal)),
                                Err(over_budget) => Next::Finish(Err(over_budget)),
                            }
                        }
                    }
                }
                Step::Revocation(p, answer) => {
                    let p = *p;
                    match poll_answer(answer, cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(a) => self.revocation_answered(p, a),
                    }
                }
                Step::ApiKey(first, answer) => match poll_answer(answer, cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(p)) => {
                        let p = first.take().unwrap_or(p);
                        self.record(p)
                    }
                    Poll::Ready(Err(e)) => Next::Finish(Err(e)),
                },
                Step::Limit(p, q, answer) => {
                    let (p, q) = (*p, *q);
                    match poll_answer(answer, cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(result) => {
                            let route = self.policy.id();
                            match self.d.rate.decide(&q, result, self.group(), route) {
                                Ok(done) => {
                                    self.note(done);
                                    self.after_limit(p)
                                }
                                Err(e) => Next::Finish(Err(e)),
                            }
                        }
                    }
                }
                Step::Check(p, check) => {
                    let p = *p;
                    match check.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) => Next::Finish(Ok(Some(p))),
                        Poll::Ready(Err(d)) => {
                            audit::denied_by_check(self.policy, p, &d);
                            Next::Finish(Err(AuthRejection::denied(&d)))
                        }
                    }
                }
                Step::Done => Next::Finish(Err(AuthRejection::new(RejectionKind::Misconfigured))),
            };
            match next {
                Next::Go(step) => self.step = step,
                Next::Finish(verdict) => {
                    self.step = Step::Done;
                    if verdict.is_ok() {
                        let _ = self.input.slots.admitted.set(());
                    }
                    return Poll::Ready(verdict);
                }
            }
        }
    }

    /// Authentication: the `Authorization` credential first, then the API
    /// key. A presented credential that fails refuses the request even when
    /// another would pass: no credential is ever silently ignored.
    fn start(&mut self) -> Next<'r> {
        let creds = self.input.creds;
        match creds.authz {
            Some(Presented::Bearer(token)) => {
                let Some(jwt) = &self.d.jwt else {
                    return Next::Finish(Err(misconfigured(
                        self.policy,
                        "auth = bearer but no JWT verifier is configured",
                    )));
                };
                if let Some(p) = self.mock(CredentialKind::Bearer, token) {
                    return Next::Go(Step::Authz(Answer::Ready(Ok(p))));
                }
                let policy = self.policy;
                Next::Go(Step::Authz(map_answer(jwt.verify(token), move |r| {
                    bearer_result(policy, r)
                })))
            }
            Some(Presented::Basic(b64)) => {
                let Some(basic) = &self.d.basic else {
                    return Next::Finish(Err(misconfigured(
                        self.policy,
                        "auth = basic but no Basic verifier is configured",
                    )));
                };
                if let Some(p) = self.mock(CredentialKind::Basic, b64) {
                    return Next::Go(Step::Authz(Answer::Ready(Ok(p))));
                }
                let attempt = self.attempt(failures::Guessable::Basic);
                Next::Go(Step::Authz(verify_basic(
                    self.policy,
                    basic.as_ref(),
                    b64,
                    attempt,
                )))
            }
            None => match creds.api_key {
                Some(key) => self.verify_api_key(None, key),
                None => {
                    if let Err(e) = unauthenticated(self.policy) {
                        return Next::Finish(Err(e));
                    }
                    self.limit(None)
                }
            },
        }
    }

    /// The `Authorization` credential failed. An invalid bearer token is
    /// counted against the client's failure budget (only failures touch the
    /// limiter: a valid token costs nothing more).
    fn authz_failed(&mut self, e: AuthRejection) -> Next<'r> {
        let counted = matches!(self.input.creds.authz, Some(Presented::Bearer(_)))
            && matches!(e.kind(), RejectionKind::Invalid(..));
        let Some(rate) = self.d.failures.per_client.filter(|_| counted) else {
            return Next::Finish(Err(e));
        };
        let q = RateQuery {
            bucket: failures::BEARER_BUCKET,
            key: PartitionKey::Ip(self.input.ip_key),
            rate,
            ip: self.input.ip,
        };
        match self.d.rate.begin(q) {
            Ok(Some(answer)) => Next::Go(Step::BearerFailure(q, answer, Some(e))),
            Ok(None) => Next::Finish(Err(e)),
            Err(refused) => Next::Finish(Err(refused)),
        }
    }

    fn authenticated_by_authz(&mut self, p: Principal) -> Next<'r> {
        if p.kind() == CredentialKind::Bearer {
            if let Some(list) = &self.d.revocations {
                if p.token_id().is_none() {
                    return Next::Finish(Err(token_refused(self.policy, TokenError::Malformed)));
                }
                let p = match self.store_principal(p) {
                    Ok(p) => p,
                    Err(e) => return Next::Finish(Err(e)),
                };
                let jti = p.token_id().unwrap_or_default();
                // The token itself, or its whole session (`sid`, read at
                // verification): logout and refresh reuse end every access
                // token of the session.
                let answer = list.is_token_revoked(jti, p.session_id());
                return Next::Go(Step::Revocation(p, answer));
            }
        }
        self.after_authz(p)
    }

    fn revocation_answered(
        &mut self,
        p: &'r Principal,
        answer: Result<bool, CredentialError>,
    ) -> Next<'r> {
        match answer {
            Ok(false) => self.after_authz(p.clone()),
            Ok(true) => Next::Finish(Err(token_refused(self.policy, TokenError::Revoked))),
            Err(e) => Next::Finish(Err(refused(self.policy, CredentialKind::Bearer, e))),
        }
    }

    /// The `Authorization` credential passed: the API key, if presented too,
    /// must pass as well.
    fn after_authz(&mut self, p: Principal) -> Next<'r> {
        match self.input.creds.api_key {
            Some(key) => self.verify_api_key(Some(p), key),
            None => self.record(p),
        }
    }

    fn verify_api_key(&mut self, first: Option<Principal>, key: &'r str) -> Next<'r> {
        let Some(store) = &self.d.api_keys else {
            return Next::Finish(Err(misconfigured(
                self.policy,
                "auth = api_key but no API key store is configured",
            )));
        };
        if let Some(p) = self.mock(CredentialKind::ApiKey, key) {
            return Next::Go(Step::ApiKey(first, Answer::Ready(Ok(p))));
        }
        let policy = self.policy;
        let refuse = move |e| refused(policy, CredentialKind::ApiKey, e);
        let Some(attempt) = self.attempt(failures::Guessable::ApiKey) else {
            return Next::Go(Step::ApiKey(
                first,
                map_answer(store.verify(key), move |r| r.map_err(refuse)),
            ));
        };
        // Our keys read `id.secret`: the id names the identity guessed at.
        let id = key.split_once('.').map(|(id, _)| id);
        Next::Go(Step::ApiKey(
            first,
            Answer::later(async move {
                match attempt.run(id, || store.verify(key)).await {
                    Ok(verdict) => verdict.map_err(refuse),
                    Err(limited) => Err(limited),
                }
            }),
        ))
    }

    /// The failure budget of a guessable credential, if one is set.
    fn attempt(&self, kind: failures::Guessable) -> Option<failures::Attempt<'r>> {
        let d = self.d;
        (!d.failures.is_off()).then(|| failures::Attempt {
            settings: &d.rate,
            limits: d.failures,
            kind,
            route: self.policy.id(),
            ip: self.input.ip,
            ip_key: self.input.ip_key,
        })
    }

    /// Keeps the authenticated principal in the request, then limits.
    fn record(&mut self, p: Principal) -> Next<'r> {
        match self.store_principal(p) {
            Ok(p) => self.limit(Some(p)),
            Err(e) => Next::Finish(Err(e)),
        }
    }

    fn store_principal(&mut self, p: Principal) -> Result<&'r Principal, AuthRejection> {
        let slots = self.input.slots;
        if let Some(existing) = slots.principal.get() {
            // A second guard on the same request: it must have found the
            // same caller, or the request is refused.
            return if same_caller(existing, &p) {
                Ok(existing)
            } else {
                Err(misconfigured(
                    self.policy,
                    "two guards on one request authenticated different callers",
                ))
            };
        }
        Ok(slots.principal.get_or_init(|| p))
    }

    /// The rate limit (when the policy has one).
    fn limit(&mut self, p: Option<&'r Principal>) -> Next<'r> {
        let Some(rate) = self.policy.rate() else {
            return self.after_limit(p);
        };
        let key = match self.partition_key(p) {
            Ok(key) => key,
            Err(e) => return Next::Finish(Err(e)),
        };
        let q = RateQuery {
            bucket: self.policy.rate_bucket(),
            key,
            rate,
            ip: self.input.ip,
        };
        match self.d.rate.begin(q) {
            Err(e) => Next::Finish(Err(e)),
            Ok(None) => {
                self.note(Enforced {
                    counted: false,
                    status: None,
                });
                self.after_limit(p)
            }
            Ok(Some(answer)) => Next::Go(Step::Limit(p, q, answer)),
        }
    }

    /// Scopes, roles and permissions, then the custom check.
    fn after_limit(&mut self, p: Option<&'r Principal>) -> Next<'r> {
        let Some(p) = p else {
            return Next::Finish(Ok(None));
        };
        match audit::grants(self.policy, p) {
            Err(e) => Next::Finish(Err(e)),
            Ok(false) => Next::Finish(Ok(Some(p))),
            Ok(true) => match self.policy.check() {
                Some(check) => Next::Go(Step::Check(p, check(p, self.input.req))),
                // A typed check runs in the handler, after its arguments are
                // extracted; the guard leaves word that it is due.
                None => {
                    let due = self.input.slots.check_due.get_or_init(|| self.policy.id());
                    if *due == self.policy.id() {
                        Next::Finish(Ok(Some(p)))
                    } else {
                        Next::Finish(Err(misconfigured(
                            self.policy,
                            "two typed checks are due on one request",
                        )))
                    }
                }
            },
        }
    }

    /// What the request is counted per.
    fn partition_key(
        &mut self,
        p: Option<&'r Principal>,
    ) -> Result<PartitionKey<'r>, AuthRejection> {
        let policy = self.policy;
        let ip = self.input.ip_key;
        Ok(match (policy.rate_key(), p) {
            (RateKey::Custom(f), p) => {
                let value = f(self.input.req, p);
                let slot = &self.input.slots.custom_key;
                let stored = slot.get_or_init(|| value.clone());
                if *stored != value {
                    return Err(misconfigured(
                        policy,
                        "two custom rate keys on one request disagree",
                    ));
                }
                PartitionKey::Custom(stored)
            }
            (RateKey::Ip, _) | (_, None) => PartitionKey::Ip(ip),
            (RateKey::Default, Some(_)) if policy.is_public() => PartitionKey::Ip(ip),
            (RateKey::Default | RateKey::User, Some(p)) => PartitionKey::User(p.subject()),
            (RateKey::ApiKey, Some(p)) => PartitionKey::ApiKey(p.key_id().unwrap_or(p.subject())),
            (RateKey::IpUser, Some(p)) => PartitionKey::IpUser(ip, p.subject()),
        })
    }

    fn group(&self) -> &'static str {
        self.policy.rate_group().unwrap_or("default")
    }

    /// Leaves a limited route's status for the `RateLimit` response headers.
    fn note(&self, done: Enforced) {
        if let (Some(status), Some(slot)) = (done.status, self.input.rate_slot) {
            let _ = slot.0.set(status);
        }
    }
}

/// The answer of a typed `check`, run by the handler once its arguments are
/// extracted: a refusal is logged like any other and becomes the
/// [`Denied`](crate::Denied)'s 403 or 404.
pub(crate) fn check_answered(
    policy: &Policy,
    p: &Principal,
    answer: Result<(), crate::Denied>,
) -> Result<(), AuthRejection> {
    answer.map_err(|d| {
        audit::denied_by_check(policy, p, &d);
        AuthRejection::denied(&d)
    })
}

/// Whether two principals stand for the same verified caller.
fn same_caller(a: &Principal, b: &Principal) -> bool {
    a.kind() == b.kind()
        && a.subject() == b.subject()
        && a.token_id() == b.token_id()
        && a.key_id() == b.key_id()
}

/// Polls an answer; a ready one is taken without a future.
fn poll_answer<T>(answer: &mut Answer<'_, T>, cx: &mut Context<'_>) -> Poll<T> {
    match answer {
        Answer::Later(f) => f.as_mut().poll(cx),
        Answer::Ready(_) => match std::mem::replace(answer, Answer::Taken) {
            Answer::Ready(v) => Poll::Ready(v),
            _ => Poll::Pending,
        },
        Answer::Taken => Poll::Pending,
    }
}

/// Maps an answer's value, keeping a ready one ready.
fn map_answer<'a, T: Send + 'a, U>(
    answer: Answer<'a, T>,
    f: impl FnOnce(T) -> U + Send + 'a,
) -> Answer<'a, U> {
    match answer {
        Answer::Ready(v) => Answer::Ready(f(v)),
        Answer::Later(fut) => Answer::later(async move { f(fut.await) }),
        Answer::Taken => Answer::Taken,
    }
}

#[cfg(test)]
mod tests;
