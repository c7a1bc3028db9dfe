//! The decision polls each store's `Answer`: ready at once (in memory) or
//! later (a network store). These tests send the same requests through the
//! in-memory stores and through the same stores wrapped so that they answer
//! only later, and check that the answers are the same and that every step
//! ran exactly once per request (a limiter counted twice would refuse early;
//! a skipped revocation check would admit a revoked token).

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use poem::{
    endpoint::BoxEndpoint,
    handler,
    http::StatusCode,
    test::{TestClient, TestResponse},
    EndpointExt, Request,
};
use poem_secure::{
    public,
    route::{get, Route},
    secure,
    testing::token,
    Answer, CredentialError, Denied, JwtConfig, LimiterUnavailable, MemoryRateLimiter,
    MemorySessionStore, Principal, RateLimiter, RateOutcome, RateQuery, RevocationList,
    Revocations, Security, SessionStore,
};

const SECRET: &[u8; 32] = b"guard-paths-test-secret-32-bytes";

/// A limiter that answers only later,
/// counting the checks it was asked for.
struct AsyncLimiter {
    inner: MemoryRateLimiter,
    checks: Arc<AtomicUsize>,
}

impl RateLimiter for AsyncLimiter {
    fn check<'a>(
        &'a self,
        query: RateQuery<'a>,
    ) -> Answer<'a, Result<RateOutcome, LimiterUnavailable>> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.check(query);
        Answer::later(async move {
            // Really suspend once, as a network store would.
            tokio::task::yield_now().await;
            inner.await
        })
    }
    fn refund<'a>(&'a self, query: RateQuery<'a>) -> Answer<'a, Result<(), LimiterUnavailable>> {
        self.inner.refund(query)
    }
}

/// A revocation list that answers only later.
struct AsyncRevocations {
    inner: Revocations,
    lookups: Arc<AtomicUsize>,
}

impl RevocationList for AsyncRevocations {
    fn is_revoked<'a>(&'a self, jti: &'a str) -> Answer<'a, Result<bool, CredentialError>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.is_revoked(jti);
        Answer::later(async move {
            tokio::task::yield_now().await;
            inner.await
        })
    }
}

static CHECKS: AtomicUsize = AtomicUsize::new(0);

async fn even_only(_p: &Principal, req: &Request) -> Result<(), Denied> {
    CHECKS.fetch_add(1, Ordering::SeqCst);
    match req.raw_path_param("n").and_then(|n| n.parse::<u32>().ok()) {
        Some(n) if n % 2 == 0 => Ok(()),
        _ => Err(Denied::forbidden().because("odd")),
    }
}

#[secure(scopes = "items", rate = "2/min")]
#[handler]
async fn limited(who: Principal) -> String {
    format!("limited:{}", who.subject())
}

#[secure(scopes = "items")]
#[handler]
async fn items(who: Principal) -> String {
    format!("items:{}", who.subject())
}

#[secure(scopes = "items", check = even_only)]
#[handler]
async fn checked(who: Principal) -> String {
    format!("checked:{}", who.subject())
}

#[public(rate = "1/min")]
#[handler]
async fn open(who: Option<Principal>) -> String {
    format!(
        "open:{}",
        who.map_or("-".to_owned(), |p| p.subject().to_owned())
    )
}

/// Which stores answer only asynchronously.
#[derive(Clone, Copy, Debug)]
struct Mode {
    async_limiter: bool,
    async_revocations: bool,
}

const MODES: [Mode; 4] = [
    Mode {
        async_limiter: false,
        async_revocations: false,
    },
    Mode {
        async_limiter: true,
        async_revocations: false,
    },
    Mode {
        async_limiter: false,
        async_revocations: true,
    },
    Mode {
        async_limiter: true,
        async_revocations: true,
    },
];

struct Setup {
    security: Security,
    sessions: Arc<MemorySessionStore>,
    limiter_checks: Arc<AtomicUsize>,
    revocation_lookups: Arc<AtomicUsize>,
    client: TestClient<BoxEndpoint<'static>>,
}

fn setup(mode: Mode) -> Setup {
    let sessions = Arc::new(MemorySessionStore::new());
    let limiter_checks = Arc::new(AtomicUsize::new(0));
    let revocation_lookups = Arc::new(AtomicUsize::new(0));
    let mut b = Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer("paths")
                .audience("paths-api"),
        )
        .rate_limit_headers(true);
    b = if mode.async_limiter {
        b.rate_limiter(AsyncLimiter {
            inner: MemoryRateLimiter::new(),
            checks: limiter_checks.clone(),
        })
    } else {
        b.rate_limiter(MemoryRateLimiter::new())
    };
    let revocations = Revocations::of(sessions.clone());
    b = if mode.async_revocations {
        b.revocations(AsyncRevocations {
            inner: revocations,
            lookups: revocation_lookups.clone(),
        })
    } else {
        b.revocations(revocations)
    };
    let security = b.build().unwrap();
    let app = Route::new()
        .at("/limited", get(limited))
        .at("/items", get(items))
        .at("/checked/:n", get(checked))
        .at("/open", get(open))
        .with(security.clone())
        .boxed();
    Setup {
        security,
        sessions,
        limiter_checks,
        revocation_lookups,
        client: TestClient::new(app),
    }
}

async fn get_with(s: &Setup, path: &str, bearer: Option<&str>) -> TestResponse {
    let mut r = s.client.get(path);
    if let Some(t) = bearer {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.send().await
}

#[tokio::test]
async fn every_mode_counts_each_request_once_and_refuses_the_third() {
    for mode in MODES {
        let s = setup(mode);
        let t = token(&s.security, "alice").scopes(["items"]).sign();
        for _ in 0..2 {
            let resp = get_with(&s, "/limited", Some(&t)).await;
            resp.assert_status_is_ok();
            resp.assert_text("limited:alice").await;
        }
        let resp = get_with(&s, "/limited", Some(&t)).await;
        assert_eq!(resp.0.status(), StatusCode::TOO_MANY_REQUESTS, "{mode:?}");
        assert!(resp.0.headers().contains_key("retry-after"), "{mode:?}");
        let expected_async = if mode.async_limiter { 3 } else { 0 };
        assert_eq!(
            s.limiter_checks.load(Ordering::SeqCst),
            expected_async,
            "{mode:?}: the limiter must be asked once per request, on one path"
        );
        let expected_lookups = if mode.async_revocations { 3 } else { 0 };
        assert_eq!(
            s.revocation_lookups.load(Ordering::SeqCst),
            expected_lookups,
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn every_mode_sends_the_rate_limit_headers_on_admission() {
    for mode in MODES {
        let s = setup(mode);
        let t = token(&s.security, "bob").scopes(["items"]).sign();
        let resp = get_with(&s, "/limited", Some(&t)).await;
        resp.assert_status_is_ok();
        assert!(
            resp.0.headers().contains_key("ratelimit")
                && resp.0.headers().contains_key("ratelimit-policy"),
            "{mode:?}: {:?}",
            resp.0.headers()
        );
    }
}

#[tokio::test]
async fn every_mode_refuses_a_revoked_token_and_admits_the_others() {
    for mode in MODES {
        let s = setup(mode);
        let revoked = token(&s.security, "carol")
            .scopes(["items"])
            .jti("revoked-jti")
            .sign();
        let fine = token(&s.security, "carol").scopes(["items"]).sign();
        s.sessions
            .revoke_access("revoked-jti", u64::MAX / 2)
            .await
            .unwrap();
        let resp = get_with(&s, "/items", Some(&revoked)).await;
        resp.assert_status(StatusCode::UNAUTHORIZED);
        let resp = get_with(&s, "/items", Some(&fine)).await;
        resp.assert_status_is_ok();
        resp.assert_text("items:carol").await;
        // The revoked token is refused before the limiter counts it.
        let resp = get_with(&s, "/limited", Some(&revoked)).await;
        resp.assert_status(StatusCode::UNAUTHORIZED);
        assert_eq!(s.limiter_checks.load(Ordering::SeqCst), 0, "{mode:?}");
    }
}

#[tokio::test]
async fn every_mode_checks_scopes_after_counting() {
    for mode in MODES {
        let s = setup(mode);
        let t = token(&s.security, "dave").scopes(["other"]).sign();
        let resp = get_with(&s, "/limited", Some(&t)).await;
        resp.assert_status(StatusCode::FORBIDDEN);
        let resp = get_with(&s, "/limited", Some(&t)).await;
        resp.assert_status(StatusCode::FORBIDDEN);
        // Counted (the limit applies before authorisation, so a caller
        // probing for scopes is throttled too): the third is a 429.
        let resp = get_with(&s, "/limited", Some(&t)).await;
        resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
        let resp = get_with(&s, "/limited", None).await;
        resp.assert_status(StatusCode::UNAUTHORIZED);
        let resp = get_with(&s, "/limited", Some("not.a.token")).await;
        resp.assert_status(StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn every_mode_runs_the_custom_check_once_after_the_grants() {
    for mode in MODES {
        let s = setup(mode);
        let t = token(&s.security, "erin").scopes(["items"]).sign();
        let before = CHECKS.load(Ordering::SeqCst);
        let resp = get_with(&s, "/checked/2", Some(&t)).await;
        resp.assert_status_is_ok();
        resp.assert_text("checked:erin").await;
        let resp = get_with(&s, "/checked/3", Some(&t)).await;
        resp.assert_status(StatusCode::FORBIDDEN);
        // Missing scope: refused before the check runs.
        let other = token(&s.security, "erin").scopes(["x"]).sign();
        let resp = get_with(&s, "/checked/2", Some(&other)).await;
        resp.assert_status(StatusCode::FORBIDDEN);
        // Only this test reaches `even_only`: it ran for the two requests
        // that passed the grants, not for the one refused by scope.
        assert_eq!(CHECKS.load(Ordering::SeqCst), before + 2, "{mode:?}");
    }
}

#[tokio::test]
async fn every_mode_limits_anonymous_callers_of_a_public_route() {
    for mode in MODES {
        let s = setup(mode);
        let resp = get_with(&s, "/open", None).await;
        resp.assert_status_is_ok();
        resp.assert_text("open:-").await;
        let resp = get_with(&s, "/open", None).await;
        resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
        let expected_async = if mode.async_limiter { 2 } else { 0 };
        assert_eq!(
            s.limiter_checks.load(Ordering::SeqCst),
            expected_async,
            "{mode:?}"
        );
        // A bad token on a public route is refused, not ignored.
        let resp = get_with(&s, "/open", Some("not.a.token")).await;
        resp.assert_status(StatusCode::UNAUTHORIZED);
    }
}
