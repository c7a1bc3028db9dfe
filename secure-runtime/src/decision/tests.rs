//! Which configurations decide in one poll (no future, no allocation for
//! one) and which wait on a store; `tests/guard_paths.rs` checks that both
//! answer alike, with every step run once.

use std::{
    sync::Arc,
    task::{Context, Poll, Waker},
};

use poem::Request;

use super::{Slots, Verdict};
use crate::{
    model::{
        answer::Answer,
        policy::{Policy, Rate},
        rate::{LimiterUnavailable, RateLimiter, RateOutcome, RateQuery},
    },
    verify::credentials::{CredentialError, RevocationList},
    AccessToken, AuthKinds, JwtConfig, MemoryRateLimiter, MemorySessionStore, Revocations,
    Security, SecurityBuilder,
};

const PLAIN: Policy = Policy::secured("tests::items").with_scopes(&["items"]);
static LIMITED: Policy = PLAIN.with_rate(Rate::per_minute(100));
static KEYED: Policy = PLAIN.with_auth(AuthKinds::API_KEY);

/// Suspends once, as a network round trip does.
async fn round_trip() {
    let mut waited = false;
    std::future::poll_fn(|cx| {
        if waited {
            Poll::Ready(())
        } else {
            waited = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// A revocation list that answers later (as Redis).
struct Remote;
impl RevocationList for Remote {
    fn is_revoked<'a>(&'a self, _: &'a str) -> Answer<'a, Result<bool, CredentialError>> {
        Answer::later(async {
            round_trip().await;
            Ok(false)
        })
    }
}

/// A limiter that answers later (as Redis).
struct RemoteLimiter(MemoryRateLimiter);
impl RateLimiter for RemoteLimiter {
    fn check<'a>(
        &'a self,
        q: RateQuery<'a>,
    ) -> Answer<'a, Result<RateOutcome, LimiterUnavailable>> {
        let now = self.0.check(q);
        Answer::later(async move {
            round_trip().await;
            now.await
        })
    }
    fn refund<'a>(&'a self, q: RateQuery<'a>) -> Answer<'a, Result<(), LimiterUnavailable>> {
        self.0.refund(q)
    }
}

fn builder() -> SecurityBuilder {
    Security::builder().jwt(
        JwtConfig::hs256([7u8; 32])
            .unwrap()
            .issuer("t")
            .audience("a"),
    )
}

fn request(security: &Security, scopes: &[&str]) -> Request {
    let t = security
        .issue_access_token(&AccessToken {
            subject: "alice",
            scopes,
            ..AccessToken::default()
        })
        .unwrap();
    Request::builder()
        .header("authorization", format!("Bearer {}", t.token))
        .finish()
}

/// Polls the decision once, as a guard's first poll does.
fn first_poll(security: &Security, policy: &'static Policy, req: &Request) -> &'static str {
    let slots = Slots::default();
    let mut d = match security.decision(policy, req, &slots) {
        Ok(d) => d,
        Err(_) => return "refused",
    };
    let mut cx = Context::from_waker(Waker::noop());
    let verdict: Poll<Verdict<'_>> = d.poll_decide(&mut cx);
    match verdict {
        Poll::Ready(Ok(Some(_))) => "admitted",
        Poll::Ready(Ok(None)) => "anonymous",
        Poll::Ready(Err(_)) => "refused",
        Poll::Pending => "waiting",
    }
}

#[test]
fn in_memory_configurations_decide_in_one_poll() {
    let store = Arc::new(MemorySessionStore::new());
    for security in [
        builder().build().unwrap(),
        builder()
            .revocations(Revocations::of(store.clone()))
            .build()
            .unwrap(),
    ] {
        let ok = request(&security, &["items"]);
        assert_eq!(first_poll(&security, &PLAIN, &ok), "admitted");
        assert_eq!(first_poll(&security, &LIMITED, &ok), "admitted");
        let wrong_scope = request(&security, &["other"]);
        assert_eq!(first_poll(&security, &PLAIN, &wrong_scope), "refused");
        let none = Request::builder().finish();
        assert_eq!(first_poll(&security, &PLAIN, &none), "refused");
        let bad = Request::builder()
            .header("authorization", "Bearer x.y.z")
            .finish();
        assert_eq!(first_poll(&security, &PLAIN, &bad), "refused");
    }
}

#[test]
fn a_store_that_answers_later_parks_the_decision_on_its_step() {
    let security = builder().revocations(Remote).build().unwrap();
    let ok = request(&security, &["items"]);
    assert_eq!(first_poll(&security, &PLAIN, &ok), "waiting");

    let security = builder()
        .rate_limiter(RemoteLimiter(MemoryRateLimiter::new()))
        .build()
        .unwrap();
    let ok = request(&security, &["items"]);
    assert_eq!(first_poll(&security, &PLAIN, &ok), "admitted");
    assert_eq!(first_poll(&security, &LIMITED, &ok), "waiting");
    // Still refused at once when a step before the store refuses.
    let wrong_scope_limited = request(&security, &["other"]);
    assert_eq!(
        first_poll(&security, &PLAIN, &wrong_scope_limited),
        "refused"
    );

    // No API key store: a misconfiguration, refused at once.
    let with_key = Request::builder().header("x-api-key", "k.s").finish();
    assert_eq!(first_poll(&security, &KEYED, &with_key), "refused");
}

#[test]
fn a_decision_polled_after_its_answer_refuses() {
    let security = builder().build().unwrap();
    let ok = request(&security, &["items"]);
    let slots = Slots::default();
    let mut d = security.decision(&PLAIN, &ok, &slots).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(d.poll_decide(&mut cx), Poll::Ready(Ok(Some(_)))));
    assert!(matches!(d.poll_decide(&mut cx), Poll::Ready(Err(_))));
}
