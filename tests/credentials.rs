//! Credentials without tokens: the argon2id password hasher (parameters,
//! re-hash, bounded concurrency off the executor, length limits), the
//! `Authenticator` over a `UserStore` (unknown, disabled and wrong-password
//! logins cannot be told apart, not even by the work they cost), the password
//! policy, HTTP Basic against the same store, and API keys (format, hashed
//! storage, scopes, revocation, expiry, header name, `any(bearer, api_key)`).
//!
//! Timing equality is tested structurally, never with a stopwatch: a hasher
//! with one slot is kept busy by a login whose stored hash is deliberately
//! slow, and every kind of failed login must then queue for that slot (and get
//! `Busy`) exactly like a wrong password does.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use poem::{
    handler,
    http::{header, StatusCode},
    test::{TestClient, TestResponse},
    Endpoint,
};
use poem_secure::{
    route::{get, Route},
    secure,
    testing::token,
    ApiKeyStore, ApiKeyVerifier, ApiKeys, Authenticator, BoxFuture, CredentialError,
    CredentialKind, JwtConfig, LoginError, MemoryApiKeyStore, MemoryUserStore, PasswordError,
    PasswordHasher, PasswordPolicy, PolicyViolation, Principal, Security, StoredApiKey, UserRecord,
    UserStore, MAX_PASSWORD_BYTES,
};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const SECRET: &[u8; 32] = b"credentials-test-secret-32-byte!";

/// Small argon2 parameters: the tests exercise behaviour, not cost.
fn fast_hasher() -> PasswordHasher {
    PasswordHasher::with_params(1024, 1, 1).unwrap()
}

/// A PHC string whose verification costs thousands of argon2 passes (seconds
/// of work) and never matches: verifying it holds a hashing slot for a long
/// time. Verification always uses the stored hash's own parameters.
const SLOW_PHC: &str = "$argon2id$v=19$m=1024,t=9000,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The argon2 reference implementation's documented example: argon2i,
/// m = 65536 KiB, t = 2, p = 4, salt "somesalt", password "password".
const ARGON2I_REFERENCE: &str =
    "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

fn user(name: &str, phc: String, disabled: bool) -> UserRecord {
    UserRecord {
        username: name.into(),
        password_hash: phc,
        roles: vec!["user".into()],
        permissions: vec!["notes:delete-own".into()],
        scopes: vec!["me".into(), "notes:read".into()],
        disabled,
    }
}

/// alice (active), bob (disabled, correct password known), slowpoke (a hash
/// that takes seconds to verify).
async fn users(hasher: &PasswordHasher) -> Arc<MemoryUserStore> {
    Arc::new(MemoryUserStore::new([
        user(
            "alice",
            hasher.hash("alice-password-1").await.unwrap(),
            false,
        ),
        user("bob", hasher.hash("bob-password-1").await.unwrap(), true),
        user("slowpoke", SLOW_PHC.to_owned(), false),
    ]))
}

/// Parameters `(m, t, p)` of a PHC string.
fn phc_params(phc: &str) -> (u32, u32, u32) {
    let params = phc.split('$').nth(3).unwrap();
    let get = |k: &str| -> u32 {
        params
            .split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    (get("m"), get("t"), get("p"))
}

/// Starts a login of `slowpoke`, which holds the hasher's only slot for
/// seconds, and waits until it has taken the slot.
async fn occupy(
    auth: &Arc<Authenticator>,
) -> tokio::task::JoinHandle<Result<UserRecord, LoginError>> {
    let a = auth.clone();
    let h = tokio::spawn(async move { a.authenticate("slowpoke", "whatever").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!h.is_finished(), "the slow login must still be running");
    h
}

// ---------------------------------------------------------------------------
// The hasher: parameters and PHC strings
// ---------------------------------------------------------------------------

#[tokio::test]
async fn default_hasher_uses_argon2id_with_owasp_parameters() {
    let phc = PasswordHasher::new()
        .hash("correct horse battery staple")
        .await
        .unwrap();
    assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
    let (m, t, p) = phc_params(&phc);
    assert!(m >= 19 * 1024, "m = {m} KiB is below OWASP's 19 MiB");
    assert!(t >= 2, "t = {t} is below OWASP's 2");
    assert!(p >= 1);
    // A hash made with the defaults does not ask to be re-hashed by them.
    let v = PasswordHasher::new()
        .verify("correct horse battery staple", &phc)
        .await
        .unwrap();
    assert!(!v.needs_rehash);
}

#[tokio::test]
async fn hashes_are_salted_phc_strings_and_verify() {
    let h = fast_hasher();
    let a = h.hash("same password").await.unwrap();
    let b = h.hash("same password").await.unwrap();
    assert_ne!(a, b, "two hashes of one password must use different salts");
    for phc in [&a, &b] {
        let parts: Vec<&str> = phc.split('$').collect();
        // "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
        assert_eq!(parts.len(), 6, "{phc}");
        assert_eq!(parts[1], "argon2id");
        assert_eq!(phc_params(phc), (1024, 1, 1));
        assert!(!phc.contains("same password"));
        assert!(!h.verify("same password", phc).await.unwrap().needs_rehash);
    }
    assert_eq!(
        h.verify("same passworD", &a).await,
        Err(PasswordError::Mismatch)
    );
    assert_eq!(h.verify("", &a).await, Err(PasswordError::Mismatch));
}

#[tokio::test]
async fn hashes_made_with_other_parameters_verify_and_need_rehash() {
    let current = fast_hasher();
    for (m, t, p) in [(2048, 1, 1), (1024, 2, 1), (1024, 1, 2), (8, 1, 1)] {
        let old = PasswordHasher::with_params(m, t, p).unwrap();
        let phc = old.hash("pw-under-old-params").await.unwrap();
        let v = current.verify("pw-under-old-params", &phc).await.unwrap();
        assert!(v.needs_rehash, "m={m} t={t} p={p} must need a rehash");
        assert_eq!(
            current.verify("wrong", &phc).await,
            Err(PasswordError::Mismatch),
            "m={m} t={t} p={p}"
        );
    }
}

#[tokio::test]
async fn argon2i_hash_of_another_implementation_verifies_and_needs_rehash() {
    let h = fast_hasher();
    let v = h.verify("password", ARGON2I_REFERENCE).await.unwrap();
    assert!(v.needs_rehash, "argon2i must be upgraded to argon2id");
    assert_eq!(
        h.verify("Password", ARGON2I_REFERENCE).await,
        Err(PasswordError::Mismatch)
    );
}

#[tokio::test]
async fn malformed_stored_hashes_never_verify() {
    let h = fast_hasher();
    for bad in [
        "",
        "plaintext-password",
        "$argon2id$v=19$m=1024,t=1,p=1$",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", // bcrypt
        "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$!!!not-base64!!!",
    ] {
        let r = h.verify("plaintext-password", bad).await;
        assert!(r.is_err(), "{bad:?} verified: {r:?}");
        assert_ne!(r, Err(PasswordError::Busy), "{bad:?}");
    }
    // Through the authenticator, a user with a broken hash looks like a wrong
    // password.
    let auth = Authenticator::new(
        MemoryUserStore::new([user("broken", "plaintext-password".into(), false)]),
        h,
    );
    assert_eq!(
        auth.authenticate("broken", "plaintext-password")
            .await
            .unwrap_err(),
        LoginError::Invalid
    );
}

// ---------------------------------------------------------------------------
// Passwords are compared as given, with an upper bound
// ---------------------------------------------------------------------------

#[tokio::test]
async fn passwords_are_compared_exactly_without_truncation_or_normalisation() {
    let h = fast_hasher();
    let long: String = (0..100)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let phc = h.hash(&long).await.unwrap();
    assert!(h.verify(&long, &phc).await.is_ok());
    // bcrypt-style truncation at 72 bytes, or at any shorter prefix, must not pass.
    for cut in [99, 72, 64, 1] {
        assert_eq!(
            h.verify(&long[..cut], &phc).await,
            Err(PasswordError::Mismatch),
            "prefix of {cut} bytes accepted"
        );
    }
    // A change in the last character is a mismatch.
    let mut last_changed = long.clone();
    last_changed.pop();
    last_changed.push('#');
    assert_eq!(
        h.verify(&last_changed, &phc).await,
        Err(PasswordError::Mismatch)
    );

    // No trimming and no Unicode normalisation.
    let padded = h.hash(" secret ").await.unwrap();
    assert_eq!(
        h.verify("secret", &padded).await,
        Err(PasswordError::Mismatch)
    );
    assert!(h.verify(" secret ", &padded).await.is_ok());
    let composed = h.hash("caf\u{e9}").await.unwrap();
    assert_eq!(
        h.verify("cafe\u{301}", &composed).await,
        Err(PasswordError::Mismatch)
    );
    assert!(h.verify("caf\u{e9}", &composed).await.is_ok());
}

#[tokio::test]
async fn passwords_up_to_1024_bytes_are_accepted() {
    assert_eq!(MAX_PASSWORD_BYTES, 1024);
    let h = fast_hasher();
    for pw in [
        "x".repeat(64),
        "y".repeat(200),
        "z".repeat(1024),
        "\u{e9}".repeat(512), // 1024 bytes in 512 characters
    ] {
        let phc = h
            .hash(&pw)
            .await
            .unwrap_or_else(|e| panic!("{} bytes: {e}", pw.len()));
        assert!(h.verify(&pw, &phc).await.is_ok(), "{} bytes", pw.len());
    }
}

#[tokio::test]
async fn passwords_over_1024_bytes_are_refused_before_any_hashing() {
    // One slot, kept busy: anything that reached the hasher would be `Busy`.
    let h = fast_hasher()
        .concurrency(1)
        .wait_timeout(Duration::from_millis(20));
    let auth = Arc::new(Authenticator::new(users(&fast_hasher()).await, h.clone()));
    let occupant = occupy(&auth).await;

    for pw in [
        "x".repeat(1025),
        format!("{}a", "\u{e9}".repeat(512)),
        "x".repeat(100_000),
    ] {
        assert_eq!(h.hash(&pw).await, Err(PasswordError::TooLong));
        assert_eq!(h.verify(&pw, SLOW_PHC).await, Err(PasswordError::TooLong));
        for name in ["alice", "bob", "nobody"] {
            assert_eq!(
                auth.authenticate(name, &pw).await.unwrap_err(),
                LoginError::TooLong,
                "{name}"
            );
        }
    }
    assert!(
        !occupant.is_finished(),
        "the slot must have stayed busy throughout"
    );
    occupant.abort();
}

// ---------------------------------------------------------------------------
// Bounded concurrency, off the executor
// ---------------------------------------------------------------------------

/// `#[tokio::test]` runs on one thread: if argon2 ran on it, nothing else
/// could make progress while a hash is computed.
#[tokio::test(flavor = "current_thread")]
async fn hashing_runs_off_the_async_executor() {
    let h = fast_hasher();
    let slow = {
        let h = h.clone();
        tokio::spawn(async move { h.verify("x", SLOW_PHC).await })
    };
    // Let the slow verification start.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The executor's only thread still runs other tasks and timers.
    let ticks = Arc::new(Mutex::new(0u32));
    let t2 = ticks.clone();
    let ticker = tokio::spawn(async move {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            *t2.lock().unwrap() += 1;
        }
    });
    tokio::time::timeout(Duration::from_secs(30), ticker)
        .await
        .expect("the ticker must run while hashing")
        .unwrap();
    assert_eq!(*ticks.lock().unwrap(), 5);
    assert!(
        !slow.is_finished(),
        "the ticker must have run while the verification was still computing"
    );
    assert_eq!(slow.await.unwrap(), Err(PasswordError::Mismatch));
}

#[tokio::test]
async fn a_saturated_hasher_answers_busy_after_its_wait_timeout() {
    let h = fast_hasher()
        .concurrency(1)
        .wait_timeout(Duration::from_millis(50));
    let occupant = {
        let h = h.clone();
        tokio::spawn(async move { h.verify("x", SLOW_PHC).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fast = fast_hasher().hash("pw").await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), h.verify("pw", &fast))
        .await
        .expect("a caller over the bound must not wait beyond the wait timeout");
    assert_eq!(r, Err(PasswordError::Busy));
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), h.hash("pw"))
            .await
            .unwrap(),
        Err(PasswordError::Busy)
    );
    assert!(!occupant.is_finished());
    // Once the slot is free again, the same call succeeds.
    assert_eq!(occupant.await.unwrap(), Err(PasswordError::Mismatch));
    assert!(h.verify("pw", &fast).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_queue_is_bounded() {
    // A long wait timeout: only the bound on the queue can refuse quickly.
    let h = fast_hasher()
        .concurrency(1)
        .wait_timeout(Duration::from_secs(120));
    let fast = fast_hasher().hash("pw").await.unwrap();
    let occupant = {
        let h = h.clone();
        tokio::spawn(async move {
            let r = h.verify("x", SLOW_PHC).await;
            (r, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let (h, fast) = (h.clone(), fast.clone());
            tokio::spawn(async move {
                let r = h.verify("pw", &fast).await;
                (r, Instant::now())
            })
        })
        .collect();
    let mut results = Vec::new();
    for c in callers {
        results.push(
            tokio::time::timeout(Duration::from_secs(120), c)
                .await
                .expect("no caller may hang")
                .unwrap(),
        );
    }
    let (occ, occupant_done) = occupant.await.unwrap();
    assert_eq!(occ, Err(PasswordError::Mismatch));
    let busy: Vec<Instant> = results
        .iter()
        .filter(|(r, _)| *r == Err(PasswordError::Busy))
        .map(|(_, at)| *at)
        .collect();
    let served = results.iter().filter(|(r, _)| r.is_ok()).count();
    assert_eq!(busy.len() + served, 20, "{results:?}");
    assert!(
        busy.len() >= 12,
        "at most 8 callers (8 x concurrency) may queue; {} were refused",
        busy.len()
    );
    assert!(
        served >= 1,
        "callers within the bound wait for a slot and are served"
    );
    assert!(
        busy.iter().all(|at| *at < occupant_done),
        "callers over the bound are refused at once, not after the slot frees up"
    );
}

/// A client that disconnects drops its login future; the argon2 work it
/// started still runs on the blocking pool. If the slot were released with
/// the future, a storm of abandoned logins would run unbounded concurrent
/// argon2 work (and memory), defeating the bound.
#[tokio::test]
async fn an_abandoned_verification_keeps_its_slot_until_its_work_ends() {
    let h = fast_hasher()
        .concurrency(1)
        .wait_timeout(Duration::from_millis(50));
    let fast = fast_hasher().hash("pw").await.unwrap();
    let abandoned = tokio::time::timeout(Duration::from_millis(300), h.verify("x", SLOW_PHC)).await;
    assert!(
        abandoned.is_err(),
        "the slow verification is abandoned while running"
    );
    // Its argon2 work (seconds) is still running: the only slot is not free.
    assert_eq!(h.verify("pw", &fast).await, Err(PasswordError::Busy));
}

// ---------------------------------------------------------------------------
// Authenticator over a UserStore
// ---------------------------------------------------------------------------

#[tokio::test]
async fn authenticate_returns_the_user_for_the_right_password() {
    let h = fast_hasher();
    let auth = Authenticator::new(users(&h).await, h);
    let u = auth
        .authenticate("alice", "alice-password-1")
        .await
        .unwrap();
    assert_eq!(u.username, "alice");
    assert_eq!(u.roles, ["user"]);
    assert_eq!(u.scopes, ["me", "notes:read"]);
    // The username is matched exactly.
    assert_eq!(
        auth.authenticate("Alice", "alice-password-1")
            .await
            .unwrap_err(),
        LoginError::Invalid
    );
    assert_eq!(
        auth.authenticate("alice ", "alice-password-1")
            .await
            .unwrap_err(),
        LoginError::Invalid
    );
}

#[tokio::test]
async fn unknown_disabled_and_wrong_password_are_one_error() {
    let h = fast_hasher();
    let auth = Authenticator::new(users(&h).await, h);
    for (name, pw) in [
        ("alice", "wrong-password"),
        ("alice", ""),
        ("nobody", "alice-password-1"),
        ("", ""),
        ("bob", "bob-password-1"), // disabled, right password
        ("bob", "wrong-password"),
    ] {
        assert_eq!(
            auth.authenticate(name, pw).await.unwrap_err(),
            LoginError::Invalid,
            "{name}/{pw}"
        );
    }
}

/// The structural form of "the same work": with the only hashing slot busy,
/// a login for an unknown or disabled user must wait for the hasher (and be
/// refused as `Busy`) exactly like a wrong password, instead of answering at
/// once.
#[tokio::test]
async fn unknown_and_disabled_users_cost_a_hash_like_a_wrong_password() {
    let h = fast_hasher()
        .concurrency(1)
        .wait_timeout(Duration::from_millis(50));
    let auth = Arc::new(Authenticator::new(users(&fast_hasher()).await, h));
    // Control, unsaturated: all three are plain `Invalid` (this also makes the
    // dummy hash exist, so below the per-login path is what is measured).
    for (name, pw) in [
        ("alice", "wrong"),
        ("nobody", "x"),
        ("bob", "bob-password-1"),
    ] {
        assert_eq!(
            auth.authenticate(name, pw).await.unwrap_err(),
            LoginError::Invalid
        );
    }
    let occupant = occupy(&auth).await;
    for (name, pw) in [
        ("alice", "wrong"),
        ("nobody", "x"),
        ("another-unknown", "alice-password-1"),
        ("bob", "bob-password-1"),
        ("bob", "wrong"),
    ] {
        assert_eq!(
            auth.authenticate(name, pw).await.unwrap_err(),
            LoginError::Busy,
            "{name}: a login that skips the hasher answers before the slot frees up"
        );
    }
    assert!(!occupant.is_finished());
    occupant.abort();
}

#[tokio::test]
async fn the_first_unknown_user_also_waits_for_the_hasher() {
    // No login has happened yet: the dummy hash does not exist.
    let h = fast_hasher()
        .concurrency(1)
        .wait_timeout(Duration::from_millis(50));
    let auth = Arc::new(Authenticator::new(users(&fast_hasher()).await, h));
    let occupant = occupy(&auth).await;
    assert_eq!(
        auth.authenticate("nobody", "x").await.unwrap_err(),
        LoginError::Busy
    );
    assert!(!occupant.is_finished());
    occupant.abort();
}

#[tokio::test]
async fn a_login_with_old_parameters_upgrades_the_stored_hash() {
    let old = PasswordHasher::with_params(2048, 1, 1).unwrap();
    let store = Arc::new(MemoryUserStore::new([user(
        "alice",
        old.hash("alice-password-1").await.unwrap(),
        false,
    )]));
    let current = fast_hasher();
    let auth = Authenticator::new(store.clone(), current.clone());
    auth.authenticate("alice", "alice-password-1")
        .await
        .unwrap();
    let stored = store.find("alice").await.unwrap().unwrap().password_hash;
    assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
    assert_eq!(phc_params(&stored), (1024, 1, 1));
    assert!(
        !current
            .verify("alice-password-1", &stored)
            .await
            .unwrap()
            .needs_rehash
    );
    // The upgraded hash still works, and a wrong password does not upgrade.
    auth.authenticate("alice", "alice-password-1")
        .await
        .unwrap();
    let before = store.find("alice").await.unwrap().unwrap().password_hash;
    let _ = auth.authenticate("alice", "nope").await;
    assert_eq!(
        store.find("alice").await.unwrap().unwrap().password_hash,
        before
    );
}

#[tokio::test]
async fn a_failed_login_never_upgrades_a_hash() {
    let old = PasswordHasher::with_params(2048, 1, 1).unwrap();
    let phc = old.hash("alice-password-1").await.unwrap();
    let store = Arc::new(MemoryUserStore::new([user("alice", phc.clone(), false), {
        user("bob", old.hash("bob-password-1").await.unwrap(), true)
    }]));
    let auth = Authenticator::new(store.clone(), fast_hasher());
    let _ = auth.authenticate("alice", "wrong").await;
    assert_eq!(
        store.find("alice").await.unwrap().unwrap().password_hash,
        phc
    );
    // A disabled user's right password is a refusal: no upgrade either.
    let bob_before = store.find("bob").await.unwrap().unwrap().password_hash;
    let _ = auth.authenticate("bob", "bob-password-1").await;
    assert_eq!(
        store.find("bob").await.unwrap().unwrap().password_hash,
        bob_before
    );
}

struct DownStore;

impl UserStore for DownStore {
    fn find<'a>(
        &'a self,
        _username: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, CredentialError>> {
        Box::pin(async { Err(CredentialError::Unavailable) })
    }
}

#[tokio::test]
async fn an_unreachable_user_store_is_unavailable_not_invalid() {
    let auth = Authenticator::new(DownStore, fast_hasher());
    assert_eq!(
        auth.authenticate("alice", "alice-password-1")
            .await
            .unwrap_err(),
        LoginError::Unavailable
    );
}

#[tokio::test]
async fn debug_output_never_shows_a_password_hash() {
    let h = fast_hasher();
    let phc = h.hash("alice-password-1").await.unwrap();
    let rec = user("alice", phc.clone(), false);
    let dbg = format!("{rec:?}");
    assert!(dbg.contains("alice"));
    let hash_part = phc.rsplit('$').next().unwrap();
    assert!(!dbg.contains(hash_part), "{dbg}");
    assert!(!dbg.contains("argon2"), "{dbg}");
}

// ---------------------------------------------------------------------------
// Password policy
// ---------------------------------------------------------------------------

#[test]
fn policy_default_requires_12_characters_counted_as_characters() {
    let p = PasswordPolicy::default();
    assert_eq!(
        p.check("elevenchars"),
        Err(PolicyViolation::TooShort { min: 12 })
    );
    assert_eq!(p.check(""), Err(PolicyViolation::TooShort { min: 12 }));
    assert_eq!(p.check("twelve chars"), Ok(()));
    // 11 two-byte characters are 22 bytes but still 11 characters.
    assert_eq!(
        p.check(&"\u{e9}".repeat(11)),
        Err(PolicyViolation::TooShort { min: 12 })
    );
    assert_eq!(p.check(&"\u{e9}".repeat(12)), Ok(()));
    // No composition rules (NIST SP 800-63B).
    assert_eq!(p.check("aaaaaaaaaaaa"), Ok(()));
}

#[test]
fn policy_accepts_long_passphrases_and_refuses_over_1kib() {
    let p = PasswordPolicy::default();
    assert_eq!(p.check(&"w".repeat(64)), Ok(()));
    assert_eq!(p.check(&"w".repeat(1024)), Ok(()));
    assert_eq!(p.check(&"w".repeat(1025)), Err(PolicyViolation::TooLong));
    assert_eq!(
        p.check(&"\u{e9}".repeat(513)),
        Err(PolicyViolation::TooLong)
    );
    assert!(PolicyViolation::TooLong.to_string().contains("1024"));
}

#[test]
fn policy_minimum_is_configurable() {
    let p = PasswordPolicy::default().min_chars(20);
    assert_eq!(
        p.check(&"a".repeat(19)),
        Err(PolicyViolation::TooShort { min: 20 })
    );
    assert_eq!(p.check(&"a".repeat(20)), Ok(()));
    let msg = PolicyViolation::TooShort { min: 20 }.to_string();
    assert!(msg.contains("20"), "{msg}");
}

#[test]
fn policy_breached_hook_sees_the_password_as_given() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let p = PasswordPolicy::default().breached(move |pw: &str| {
        s2.lock().unwrap().push(pw.to_owned());
        pw == "Password1234" || pw == " correct horse "
    });
    assert_eq!(p.check("Password1234"), Err(PolicyViolation::Breached));
    assert_eq!(p.check(" correct horse "), Err(PolicyViolation::Breached));
    assert_eq!(
        p.check("password1234"),
        Ok(()),
        "compared as given, not case-folded"
    );
    assert_eq!(p.check("correct horse"), Ok(()), "not trimmed");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "Password1234",
            " correct horse ",
            "password1234",
            "correct horse"
        ]
    );
    assert!(PolicyViolation::Breached.to_string().contains("breach"));
}

// ---------------------------------------------------------------------------
// HTTP Basic against the same store and hasher
// ---------------------------------------------------------------------------

#[secure(auth = basic)]
#[handler]
async fn basic_me(who: Principal) -> String {
    format!(
        "{}|{:?}|{}|{}|{}",
        who.subject(),
        who.kind(),
        who.roles().join(" "),
        who.scopes().join(" "),
        who.permissions().join(" ")
    )
}

#[secure(auth = api_key, scopes = "stats:read")]
#[handler]
async fn stats(who: Principal) -> String {
    format!(
        "{}|{:?}|{}",
        who.subject(),
        who.kind(),
        who.key_id().unwrap_or("-")
    )
}

#[secure(auth = any(bearer, api_key), scopes = "stats:read")]
#[handler]
async fn stats_any(who: Principal) -> String {
    format!("{}|{:?}", who.subject(), who.kind())
}

fn app(sec: &Security) -> impl Endpoint {
    Route::new()
        .at("/basic", get(basic_me))
        .at("/stats", get(stats))
        .at("/stats-any", get(stats_any))
        .with(sec.clone())
}

fn security_with(auth: Arc<Authenticator>, keys: ApiKeys, key_header: Option<&str>) -> Security {
    let mut b = Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer("cred-test")
                .audience("cred-api"),
        )
        .basic(auth)
        .api_keys(keys);
    if let Some(h) = key_header {
        b = b.api_key_header(h);
    }
    b.build().unwrap()
}

fn basic(user: &str, pass: &str) -> String {
    use base64::engine::general_purpose::STANDARD;
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

async fn body(resp: TestResponse) -> String {
    resp.0.into_body().into_string().await.unwrap()
}

/// Status, the `WWW-Authenticate` values, content type and body of a response.
async fn shape(resp: TestResponse) -> (StatusCode, Vec<String>, String, String) {
    let status = resp.0.status();
    let www = resp
        .0
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let ct = resp
        .0
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, www, ct, body(resp).await)
}

#[tokio::test]
async fn basic_auth_checks_the_user_store_with_the_password_hasher() {
    let h = fast_hasher();
    // A password containing colons: only the first colon separates the user.
    let store = Arc::new(MemoryUserStore::new([user(
        "carol",
        h.hash("s3cret:with:colons").await.unwrap(),
        false,
    )]));
    let auth = Arc::new(Authenticator::new(store, h));
    let sec = security_with(auth, ApiKeys::new(MemoryApiKeyStore::new()), None);
    let cli = TestClient::new(app(&sec));
    let resp = cli
        .get("/basic")
        .header(header::AUTHORIZATION, basic("carol", "s3cret:with:colons"))
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(
        body(resp).await,
        "carol|Basic|user|me notes:read|notes:delete-own"
    );
}

#[tokio::test]
async fn basic_auth_failures_share_one_401() {
    let h = fast_hasher();
    let auth = Arc::new(Authenticator::new(users(&h).await, h));
    let sec = security_with(auth, ApiKeys::new(MemoryApiKeyStore::new()), None);
    let cli = TestClient::new(app(&sec));
    let reference = shape(
        cli.get("/basic")
            .header(header::AUTHORIZATION, basic("alice", "wrong-password"))
            .send()
            .await,
    )
    .await;
    assert_eq!(reference.0, StatusCode::UNAUTHORIZED);
    assert_eq!(reference.2, "application/problem+json");
    assert!(
        reference.1.iter().any(|v| v.starts_with("Basic")),
        "{:?}",
        reference.1
    );
    let too_long = "x".repeat(1025);
    for (u, p) in [
        ("nobody", "alice-password-1"),
        ("bob", "bob-password-1"),
        ("alice", "alice-password-"),
        ("alice", too_long.as_str()),
    ] {
        let got = shape(
            cli.get("/basic")
                .header(header::AUTHORIZATION, basic(u, p))
                .send()
                .await,
        )
        .await;
        assert_eq!(got, reference, "{u}");
    }
    // Control: the right password passes.
    cli.get("/basic")
        .header(header::AUTHORIZATION, basic("alice", "alice-password-1"))
        .send()
        .await
        .assert_status_is_ok();
}

#[tokio::test]
async fn basic_auth_with_a_saturated_hasher_is_503_for_every_user() {
    let h = fast_hasher()
        .concurrency(1)
        .wait_timeout(Duration::from_millis(50));
    let auth = Arc::new(Authenticator::new(users(&fast_hasher()).await, h));
    let sec = security_with(auth.clone(), ApiKeys::new(MemoryApiKeyStore::new()), None);
    let cli = TestClient::new(app(&sec));
    let occupant = occupy(&auth).await;
    for (u, p) in [
        ("alice", "alice-password-1"),
        ("alice", "wrong"),
        ("nobody", "x"),
        ("bob", "bob-password-1"),
    ] {
        let resp = cli
            .get("/basic")
            .header(header::AUTHORIZATION, basic(u, p))
            .send()
            .await;
        resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
        resp.assert_content_type("application/problem+json");
    }
    assert!(!occupant.is_finished());
    occupant.abort();
}

// ---------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------

/// A store that keeps, as JSON, everything written to it.
#[derive(Clone, Default)]
struct RecordingStore {
    inner: Arc<MemoryApiKeyStore>,
    written: Arc<Mutex<Vec<String>>>,
}

impl ApiKeyStore for RecordingStore {
    fn insert<'a>(&'a self, key: &'a StoredApiKey) -> BoxFuture<'a, Result<(), CredentialError>> {
        self.written
            .lock()
            .unwrap()
            .push(serde_json::to_string(key).unwrap());
        self.inner.insert(key)
    }
    fn get<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredApiKey>, CredentialError>> {
        self.inner.get(id)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<StoredApiKey>, CredentialError>> {
        self.inner.list()
    }
    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, CredentialError>> {
        self.inner.revoke(id)
    }
}

#[tokio::test]
async fn api_keys_are_prefix_dot_secret_with_a_256_bit_secret_stored_only_hashed() {
    let store = RecordingStore::default();
    let keys = ApiKeys::new(store.clone());
    let issued = keys
        .issue("exporter", "svc-stats", &["stats:read"], None)
        .await
        .unwrap();
    let (prefix, secret) = issued.key.split_once('.').unwrap();
    assert_eq!(prefix, issued.record.id);
    assert!(!prefix.is_empty() && !secret.is_empty());
    let raw = URL_SAFE_NO_PAD
        .decode(secret)
        .expect("the secret is base64url");
    assert!(raw.len() >= 32, "secret has {} bytes", raw.len());
    assert_eq!(issued.record.owner, "svc-stats");
    assert_eq!(issued.record.name, "exporter");
    assert_eq!(issued.record.scopes, ["stats:read"]);
    assert!(!issued.record.revoked);
    assert_eq!(issued.record.expires_at, None);

    // What reached the store holds no trace of the secret.
    let written = store.written.lock().unwrap().clone();
    assert_eq!(written.len(), 1);
    assert!(!written[0].contains(secret), "{}", written[0]);
    assert_ne!(issued.record.secret_hash, secret);
    assert!(!issued.record.secret_hash.contains(secret));
    // Listing shows no secret either, and Debug output never prints it.
    for k in keys.list().await.unwrap() {
        assert!(!serde_json::to_string(&k).unwrap().contains(secret));
    }
    assert!(!format!("{issued:?}").contains(secret));
    assert!(!format!("{:?}", issued.record).contains(&issued.record.secret_hash));

    // Fresh keys are unique.
    let other = keys
        .issue("exporter", "svc-stats", &["stats:read"], None)
        .await
        .unwrap();
    let (p2, s2) = other.key.split_once('.').unwrap();
    assert_ne!(p2, prefix);
    assert_ne!(s2, secret);
}

#[tokio::test]
async fn api_key_verification_refuses_anything_but_the_exact_key() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let a = keys
        .issue("a", "svc-a", &["stats:read"], None)
        .await
        .unwrap();
    let b = keys
        .issue("b", "svc-b", &["stats:read"], None)
        .await
        .unwrap();
    let (pa, sa) = a.key.split_once('.').unwrap();
    let (pb, sb) = b.key.split_once('.').unwrap();

    let who = keys.verify(&a.key).await.unwrap();
    assert_eq!(who.subject(), "svc-a");
    assert_eq!(who.kind(), CredentialKind::ApiKey);
    assert_eq!(who.key_id(), Some(pa));
    assert_eq!(who.scopes(), ["stats:read"]);

    let mut flipped = sa.to_owned();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        format!("{pa}.{sb}"),          // another key's secret
        format!("{pb}.{sa}"),          // another key's prefix
        format!("{pa}.{flipped}"),     // one character off
        format!("{pa}.{}", &sa[..20]), // truncated
        format!("{pa}.{sa}x"),         // extended
        format!("{pa}."),
        pa.to_owned(),
        sa.to_owned(),
        format!(".{sa}"),
        format!("unknown.{sa}"),
        format!("{pa}.{}", "A".repeat(10_000)),
        String::new(),
    ] {
        assert_eq!(
            keys.verify(&bad).await.unwrap_err(),
            CredentialError::Invalid,
            "{bad:.60}"
        );
    }
}

#[tokio::test]
async fn api_key_route_needs_the_scope() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let good = keys
        .issue("g", "svc-stats", &["stats:read"], None)
        .await
        .unwrap();
    let other = keys
        .issue("o", "svc-other", &["reports:read"], None)
        .await
        .unwrap();
    let auth = Arc::new(Authenticator::new(
        MemoryUserStore::default(),
        fast_hasher(),
    ));
    let sec = security_with(auth, keys, None);
    let cli = TestClient::new(app(&sec));

    let resp = cli
        .get("/stats")
        .header("X-API-Key", &good.key)
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(
        body(resp).await,
        format!("svc-stats|ApiKey|{}", good.record.id)
    );
    cli.get("/stats")
        .header("X-API-Key", &other.key)
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);
    let (status, www, ct, _) = shape(cli.get("/stats").send().await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(ct, "application/problem+json");
    assert!(www.iter().any(|v| v == "ApiKey"), "{www:?}");
    cli.get("/stats")
        .header("X-API-Key", "nope.nope")
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_revoked_api_key_stops_working_at_once() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let k = keys.issue("k", "svc", &["stats:read"], None).await.unwrap();
    let keep = keys
        .issue("keep", "svc", &["stats:read"], None)
        .await
        .unwrap();
    let auth = Arc::new(Authenticator::new(
        MemoryUserStore::default(),
        fast_hasher(),
    ));
    let sec = security_with(auth, keys.clone(), None);
    let cli = TestClient::new(app(&sec));
    cli.get("/stats")
        .header("X-API-Key", &k.key)
        .send()
        .await
        .assert_status_is_ok();

    assert!(keys.revoke(&k.record.id).await.unwrap());
    cli.get("/stats")
        .header("X-API-Key", &k.key)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    cli.get("/stats-any")
        .header("X-API-Key", &k.key)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    // Other keys are unaffected; the revoked one is listed as revoked.
    cli.get("/stats")
        .header("X-API-Key", &keep.key)
        .send()
        .await
        .assert_status_is_ok();
    let listed = keys.list().await.unwrap();
    let rec = listed.iter().find(|r| r.id == k.record.id).unwrap();
    assert!(rec.revoked);
    assert!(
        !listed
            .iter()
            .find(|r| r.id == keep.record.id)
            .unwrap()
            .revoked
    );
    // Revoking an unknown key says so.
    assert!(!keys.revoke("no-such-key").await.unwrap());
}

#[tokio::test]
async fn an_expired_api_key_is_refused() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let short = keys
        .issue("short", "svc", &["stats:read"], Some(2))
        .await
        .unwrap();
    let long = keys
        .issue("long", "svc", &["stats:read"], Some(3600))
        .await
        .unwrap();
    assert_eq!(short.record.expires_at, Some(short.record.created_at + 2));
    assert!(keys.verify(&short.key).await.is_ok());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        keys.verify(&short.key).await.unwrap_err(),
        CredentialError::Invalid
    );
    assert!(keys.verify(&long.key).await.is_ok());
    let auth = Arc::new(Authenticator::new(
        MemoryUserStore::default(),
        fast_hasher(),
    ));
    let sec = security_with(auth, keys, None);
    TestClient::new(app(&sec))
        .get("/stats")
        .header("X-API-Key", &short.key)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_api_key_header_name_is_configurable() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let k = keys.issue("k", "svc", &["stats:read"], None).await.unwrap();
    let auth = Arc::new(Authenticator::new(
        MemoryUserStore::default(),
        fast_hasher(),
    ));
    let sec = security_with(auth, keys, Some("X-Service-Key"));
    let cli = TestClient::new(app(&sec));
    cli.get("/stats")
        .header("X-Service-Key", &k.key)
        .send()
        .await
        .assert_status_is_ok();
    // The default header is not read any more.
    cli.get("/stats")
        .header("X-API-Key", &k.key)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    // Authorization and Cookie cannot be used as the key header.
    for bad in ["Authorization", "cookie", "not a header"] {
        assert!(
            Security::builder().api_key_header(bad).build().is_err(),
            "{bad} accepted"
        );
    }
}

#[tokio::test]
async fn any_bearer_or_api_key_accepts_either() {
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let k = keys
        .issue("k", "svc-stats", &["stats:read"], None)
        .await
        .unwrap();
    let auth = Arc::new(Authenticator::new(
        MemoryUserStore::default(),
        fast_hasher(),
    ));
    let sec = security_with(auth, keys, None);
    let cli = TestClient::new(app(&sec));

    let resp = cli
        .get("/stats-any")
        .header("X-API-Key", &k.key)
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(body(resp).await, "svc-stats|ApiKey");

    let bearer = token(&sec, "alice").scopes(["stats:read"]).bearer();
    let resp = cli
        .get("/stats-any")
        .header(header::AUTHORIZATION, &bearer)
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(body(resp).await, "alice|Bearer");

    // A bearer token does not open the key-only route.
    cli.get("/stats")
        .header(header::AUTHORIZATION, &bearer)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    // Neither credential: 401 offering both schemes.
    let (status, www, _, _) = shape(cli.get("/stats-any").send().await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(www.iter().any(|v| v.starts_with("Bearer")), "{www:?}");
    assert!(www.iter().any(|v| v == "ApiKey"), "{www:?}");
    // A bad key is not rescued by a good bearer token.
    cli.get("/stats-any")
        .header(header::AUTHORIZATION, &bearer)
        .header("X-API-Key", "bad.key")
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_key_store_unreachable_is_503() {
    struct Down;
    impl ApiKeyStore for Down {
        fn insert<'a>(&'a self, _: &'a StoredApiKey) -> BoxFuture<'a, Result<(), CredentialError>> {
            Box::pin(async { Err(CredentialError::Unavailable) })
        }
        fn get<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<StoredApiKey>, CredentialError>> {
            Box::pin(async { Err(CredentialError::Unavailable) })
        }
        fn list(&self) -> BoxFuture<'_, Result<Vec<StoredApiKey>, CredentialError>> {
            Box::pin(async { Err(CredentialError::Unavailable) })
        }
        fn revoke<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, CredentialError>> {
            Box::pin(async { Err(CredentialError::Unavailable) })
        }
    }
    let keys = ApiKeys::new(Down);
    assert_eq!(
        keys.issue("k", "svc", &[], None).await.unwrap_err(),
        CredentialError::Unavailable
    );
    let auth = Arc::new(Authenticator::new(
        MemoryUserStore::default(),
        fast_hasher(),
    ));
    let sec = security_with(auth, keys, None);
    let resp = TestClient::new(app(&sec))
        .get("/stats")
        .header("X-API-Key", "abc.def")
        .send()
        .await;
    resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    resp.assert_content_type("application/problem+json");
}

// ---------------------------------------------------------------------------
// OpenAPI: the apiKey scheme, with a custom header name
// ---------------------------------------------------------------------------

pub const KEYS: poem_secure::Catalogue = poem_secure::Catalogue::new()
    .api_key_header("X-Service-Key")
    .scopes(&[("stats:read", "Read statistics")]);

pub struct StatsApi;

#[poem_secure::deny_unprotected(catalogue = KEYS)]
#[poem_openapi::OpenApi]
impl StatsApi {
    #[secure(auth = api_key, scopes = "stats:read")]
    #[oai(path = "/stats", method = "get")]
    async fn stats(&self, who: Principal) -> poem_openapi::payload::PlainText<String> {
        poem_openapi::payload::PlainText(who.subject().to_owned())
    }
}

#[tokio::test]
async fn openapi_documents_the_api_key_scheme_the_service_reads() {
    let spec: serde_json::Value =
        serde_json::from_str(&poem_secure::openapi::service(StatsApi, "t", "1").spec()).unwrap();
    let schemes = &spec["components"]["securitySchemes"];
    let (name, scheme) = schemes
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, s)| s["type"] == "apiKey")
        .unwrap_or_else(|| panic!("no apiKey scheme: {schemes:#}"));
    assert_eq!(scheme["in"], "header");
    assert_eq!(scheme["name"], "X-Service-Key");
    let op = &spec["paths"]["/stats"]["get"];
    assert_eq!(
        op["security"],
        serde_json::json!([{ name.as_str(): [] }]),
        "{op:#}"
    );

    // The documented header is the one the service reads.
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let k = keys
        .issue("k", "svc-stats", &["stats:read"], None)
        .await
        .unwrap();
    let sec = Security::builder()
        .api_keys(keys)
        .api_key_header("X-Service-Key")
        .build()
        .unwrap();
    let cli = TestClient::new(
        Route::new()
            .nest("/", poem_secure::openapi::service(StatsApi, "t", "1"))
            .with(sec),
    );
    let resp = cli
        .get("/stats")
        .header("X-Service-Key", &k.key)
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_text("svc-stats").await;
    cli.get("/stats")
        .header("X-API-Key", &k.key)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}
