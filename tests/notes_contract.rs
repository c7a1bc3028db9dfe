//! Black-box tests of the reference service `examples/notes.rs` against its
//! HTTP contract (`shared/contracts/notes-demo.md`): the real binary, started
//! per test on a free port, spoken to over real sockets.
//!
//! Every response read here is also checked for the headers every response
//! must carry and, for errors, for a body free of panics, backtraces and
//! library error text (see `tests/support/notes_service.rs`).

#[path = "support/notes_service.rs"]
mod notes_service;

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::TcpStream,
    thread,
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use notes_service::{decode_jwt, fresh_ip, now, Resp, Service};
use serde_json::{json, Value};

/// The `JWT_SECRET` of the tests that forge tokens.
const SECRET: &str = "notes-contract-test-secret-0123456789abcdef";
const TRUST_LOOPBACK: (&str, &str) = ("TRUSTED_PROXIES", "127.0.0.1/32");

fn scopes(s: &str) -> BTreeSet<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Asserts a 401 for a request that presented a token.
#[track_caller]
fn assert_invalid_token(r: &Resp) {
    r.assert_problem(401);
    let c = r.challenge();
    assert!(c.starts_with("Bearer"), "{}: challenge {c:?}", r.what);
    assert!(
        c.contains(r#"error="invalid_token""#),
        "{}: challenge {c:?}",
        r.what
    );
}

/// Asserts a 401 for a request that presented no credential.
#[track_caller]
fn assert_unauthenticated(r: &Resp) {
    r.assert_problem(401);
    let c = r.challenge();
    assert!(c.starts_with("Bearer"), "{}: challenge {c:?}", r.what);
    assert!(
        !c.contains("error="),
        "{}: no error code without a credential (RFC 6750 §3.1): {c:?}",
        r.what
    );
}

/// Asserts a 403 for a missing scope, naming it in the challenge.
#[track_caller]
fn assert_insufficient_scope(r: &Resp, scope: &str) {
    r.assert_problem(403);
    let c = r.challenge();
    assert!(c.starts_with("Bearer"), "{}: challenge {c:?}", r.what);
    assert!(
        c.contains(r#"error="insufficient_scope""#),
        "{}: challenge {c:?}",
        r.what
    );
    assert!(
        c.contains(&format!(r#"scope="{scope}""#)),
        "{}: challenge {c:?} must name {scope}",
        r.what
    );
}

/// Asserts a 429 problem with `Retry-After` in whole seconds within a minute.
#[track_caller]
fn assert_limited(r: &Resp) {
    r.assert_problem(429);
    let secs = r.retry_after();
    assert!(
        (1..=60).contains(&secs),
        "{}: Retry-After {secs} outside 1..=60",
        r.what
    );
}

fn forge(secret: &str, alg: Algorithm, typ: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.typ = typ.map(str::to_owned);
    encode(&h, claims, &EncodingKey::from_secret(secret.as_bytes())).expect("sign")
}

fn good_claims(sub: &str, scope: &str) -> Value {
    let t = now();
    json!({
        "iss": "notes-demo", "aud": "notes-api", "sub": sub,
        "iat": t, "exp": t + 600,
        "jti": format!("forged-{}", fresh_ip()),
        "scope": scope, "roles": ["user"],
    })
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn new_note(svc: &Service, token: &str, title: &str) -> Value {
    let r = svc.call(
        "POST",
        "/notes",
        Some(token),
        Some(&json!({"title": title, "body": "text"})),
    );
    r.expect(201);
    r.json()
}

// ---------------------------------------------------------------- health

#[test]
fn health_is_public_200() {
    let svc = Service::start();
    svc.get("/health").expect(200);
    // A credential is not needed, and a valid one changes nothing.
    let g = svc.tokens("alice", None);
    svc.get_bearer("/health", &g.access).expect(200);
}

// ---------------------------------------------------------------- token grant

#[test]
fn token_grant_returns_a_bearer_pair_that_is_not_cached() {
    let svc = Service::start();
    let r = svc.login("alice", "alice-password-1", None);
    r.expect(200);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "token response content type: {:?}",
        r.headers
    );
    assert_eq!(
        r.header("cache-control"),
        Some("no-store"),
        "headers {:?}",
        r.headers
    );
    let v = r.json();
    for field in [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
    ] {
        assert!(!v[field].is_null(), "field {field} missing: {v}");
    }
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(
        v["expires_in"], 900,
        "ACCESS_TOKEN_TTL_SECS defaults to 900"
    );
    assert!(
        v["refresh_token"].as_str().is_some_and(|s| s.len() >= 32),
        "refresh token too short: {v}"
    );
    // Omitted scope = everything role `user` may hold.
    assert_eq!(
        scopes(v["scope"].as_str().unwrap()),
        set(&["me", "notes:read", "notes:write"])
    );
    // The access token works, and the refresh token is not an access token.
    let g = notes_service::Grant::from_json(&v);
    assert_eq!(
        svc.get_bearer("/users/me", &g.access).expect(200).json()["username"],
        "alice"
    );
    assert_ne!(g.access, g.refresh);
}

#[test]
fn granted_scope_is_requested_intersected_with_allowed() {
    let svc = Service::start();
    // `admin` is a known scope, but not one role `user` may hold.
    let g = svc.tokens("alice", Some("me admin"));
    assert_eq!(scopes(&g.scope), set(&["me"]));
    let (_, claims) = decode_jwt(&g.access);
    assert_eq!(scopes(claims["scope"].as_str().unwrap()), set(&["me"]));
    svc.get_bearer("/users/me", &g.access).expect(200);
    assert_insufficient_scope(&svc.get_bearer("/notes", &g.access), "notes:read");
    let r = svc.call(
        "POST",
        "/notes",
        Some(&g.access),
        Some(&json!({"title": "t", "body": "b"})),
    );
    assert_insufficient_scope(&r, "notes:write");

    let g = svc.tokens("alice", Some("notes:read"));
    assert_eq!(scopes(&g.scope), set(&["notes:read"]));
    svc.get_bearer("/notes", &g.access).expect(200);
    assert_insufficient_scope(&svc.get_bearer("/users/me", &g.access), "me");
    assert_insufficient_scope(
        &svc.call("DELETE", "/notes/1", Some(&g.access), None),
        "notes:write",
    );

    // Omitted = all the user may hold: for role admin, all four.
    let g = svc.tokens("admin", None);
    assert_eq!(
        scopes(&g.scope),
        set(&["me", "notes:read", "notes:write", "admin"])
    );
}

#[test]
fn failed_logins_are_indistinguishable() {
    let svc = Service::start_with(&[TRUST_LOOPBACK]);
    let kinds: [(&str, &str, &str); 4] = [
        ("wrong password", "alice", "not-alice-password"),
        ("unknown user", "zed-no-such-user", "alice-password-1"),
        ("disabled user", "bob", "bob-password-1"),
        ("disabled user, wrong password", "bob", "nope-nope-nope"),
    ];
    let mut reference: Option<Resp> = None;
    let mut fastest = vec![Duration::MAX; kinds.len()];
    for _round in 0..3 {
        for (i, (what, user, password)) in kinds.iter().enumerate() {
            let t = Instant::now();
            let r = svc.login(user, password, None);
            fastest[i] = fastest[i].min(t.elapsed());
            assert!(
                (400..500).contains(&r.status),
                "{what}: {} {}",
                r.status,
                r.body
            );
            assert_eq!(
                r.header("cache-control"),
                Some("no-store"),
                "{what}: {:?}",
                r.headers
            );
            match &reference {
                None => reference = Some(r),
                Some(first) => {
                    assert_eq!(
                        r.status, first.status,
                        "{what}: status differs from {}",
                        kinds[0].0
                    );
                    assert_eq!(
                        r.body, first.body,
                        "{what}: body differs byte for byte from {}",
                        kinds[0].0
                    );
                    assert_eq!(
                        r.header("content-type"),
                        first.header("content-type"),
                        "{what}: content type"
                    );
                    assert_eq!(
                        r.header("www-authenticate"),
                        first.header("www-authenticate"),
                        "{what}"
                    );
                }
            }
        }
    }
    // "in the same time": the unknown and the disabled user cost the password
    // hash too. Loose on purpose (a shared machine): a skipped argon2
    // verification is ~20x faster, not 4x.
    let slowest = fastest.iter().max().unwrap();
    for (i, (what, ..)) in kinds.iter().enumerate() {
        assert!(
            fastest[i] * 4 >= *slowest,
            "{what} took {:?}, others up to {slowest:?}: {fastest:?}",
            fastest[i]
        );
    }
}

#[test]
fn login_is_limited_to_5_per_minute_per_ip_counting_every_attempt() {
    // No trusted proxy: the socket peer is the client, whatever it claims.
    let svc = Service::start();
    let first = svc.login("alice", "alice-password-1", None);
    first.expect(200);
    for (user, password) in [
        ("alice", "wrong-1"),
        ("zed-unknown", "x"),
        ("bob", "bob-password-1"),
        ("carol", "carol-password-1"),
    ] {
        let r = svc.login(user, password, None);
        assert_ne!(
            r.status, 429,
            "attempt by {user} limited before the 6th: {}",
            r.body
        );
    }
    // The 6th attempt, with the right password, is refused.
    assert_limited(&svc.login("alice", "alice-password-1", None));
    // A spoofed forwarding header does not make a new client.
    assert_limited(&svc.login_from(Some("203.0.113.9"), "alice", "alice-password-1", None));
    assert_limited(&svc.login_from(
        Some("198.51.100.1, 203.0.113.10"),
        "carol",
        "carol-password-1",
        None,
    ));
    let r = svc.form(
        "/auth/token",
        &[
            ("forwarded", "for=203.0.113.11"),
            ("x-real-ip", "203.0.113.12"),
        ],
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-password-1"),
        ],
    );
    assert_limited(&r);
    // Only logins are limited: the token already issued still works.
    let g = notes_service::Grant::from_json(&first.json());
    svc.get_bearer("/users/me", &g.access).expect(200);
}

#[test]
fn trusted_proxy_forwarded_ips_are_distinct_clients() {
    let svc = Service::start_with(&[TRUST_LOOPBACK]);
    let ip = "203.0.113.7";
    for i in 0..5 {
        let r = svc.login_from(
            Some(ip),
            "alice",
            if i % 2 == 0 {
                "wrong"
            } else {
                "alice-password-1"
            },
            None,
        );
        assert_ne!(r.status, 429, "attempt {} limited: {}", i + 1, r.body);
    }
    assert_limited(&svc.login_from(Some(ip), "alice", "alice-password-1", None));
    svc.login_from(Some("203.0.113.8"), "alice", "alice-password-1", None)
        .expect(200);
}

// ---------------------------------------------------------------- access token

#[test]
fn access_token_is_an_rfc9068_jwt() {
    let svc = Service::start();
    let before = now();
    let g = svc.tokens("alice", None);
    let (header, claims) = decode_jwt(&g.access);
    assert_eq!(header["typ"], "at+jwt", "header {header}");
    assert_eq!(header["alg"], "HS256", "header {header}");
    assert_eq!(claims["iss"], "notes-demo");
    assert_eq!(claims["sub"], "alice");
    let aud_ok = claims["aud"] == "notes-api"
        || claims["aud"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("notes-api")));
    assert!(aud_ok, "aud: {claims}");
    let (iat, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert!(
        (before - 5..=now() + 5).contains(&iat),
        "iat {iat} is not now: {claims}"
    );
    assert_eq!(exp - iat, 900, "exp - iat: {claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "jti: {claims}"
    );
    assert_eq!(
        scopes(claims["scope"].as_str().expect("scope is a string")),
        set(&["me", "notes:read", "notes:write"])
    );
    assert_eq!(claims["roles"], json!(["user"]));

    let admin = svc.tokens("admin", None);
    let (_, c2) = decode_jwt(&admin.access);
    assert_eq!(c2["roles"], json!(["admin"]));
    assert_eq!(c2["sub"], "admin");
    assert_ne!(c2["jti"], claims["jti"], "every token has its own jti");
}

#[test]
fn forged_and_tampered_tokens_are_refused() {
    let svc = Service::start_with(&[("JWT_SECRET", SECRET)]);
    let me = |t: &str| svc.get_bearer("/users/me", t);

    // Control: JWT_SECRET is the HS256 key, so a token we sign is accepted.
    let ok = forge(
        SECRET,
        Algorithm::HS256,
        Some("at+jwt"),
        &good_claims("alice", "me"),
    );
    assert_eq!(me(&ok).expect(200).json()["username"], "alice");

    let mut attacks: Vec<(&str, String)> = Vec::new();
    let good = good_claims("alice", "me");
    attacks.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "at+jwt"})),
            b64(&good)
        ),
    ));
    attacks.push((
        "alg None",
        format!(
            "{}.{}.",
            b64(&json!({"alg": "None", "typ": "at+jwt"})),
            b64(&good)
        ),
    ));
    let sig = ok.rsplit('.').next().unwrap();
    attacks.push((
        "alg none with the HS256 signature",
        format!(
            "{}.{}.{sig}",
            b64(&json!({"alg": "none", "typ": "at+jwt"})),
            b64(&good)
        ),
    ));
    attacks.push((
        "HS512 with the same secret",
        forge(SECRET, Algorithm::HS512, Some("at+jwt"), &good),
    ));
    attacks.push((
        "HS384 with the same secret",
        forge(SECRET, Algorithm::HS384, Some("at+jwt"), &good),
    ));
    attacks.push((
        "another secret",
        forge(
            "another-secret-0123456789abcdef-0123",
            Algorithm::HS256,
            Some("at+jwt"),
            &good,
        ),
    ));
    attacks.push((
        "typ JWT",
        forge(SECRET, Algorithm::HS256, Some("JWT"), &good),
    ));
    attacks.push(("no typ", forge(SECRET, Algorithm::HS256, None, &good)));
    let with = |k: &str, v: Value| {
        let mut c = good_claims("alice", "me");
        c[k] = v;
        forge(SECRET, Algorithm::HS256, Some("at+jwt"), &c)
    };
    let without = |k: &str| {
        let mut c = good_claims("alice", "me");
        c.as_object_mut().unwrap().remove(k);
        forge(SECRET, Algorithm::HS256, Some("at+jwt"), &c)
    };
    attacks.push(("wrong iss", with("iss", json!("someone-else"))));
    attacks.push(("wrong aud", with("aud", json!("another-api"))));
    attacks.push(("expired an hour ago", with("exp", json!(now() - 3600))));
    attacks.push(("not valid for an hour", with("nbf", json!(now() + 3600))));
    attacks.push(("no exp", without("exp")));
    attacks.push(("no iss", without("iss")));
    attacks.push(("no aud", without("aud")));
    attacks.push(("no sub", without("sub")));
    // A signed token whose claims were swapped for an admin's.
    let mut admin = good_claims("admin", "me admin");
    admin["roles"] = json!(["admin"]);
    let parts: Vec<&str> = ok.split('.').collect();
    attacks.push((
        "tampered claims",
        format!("{}.{}.{}", parts[0], b64(&admin), parts[2]),
    ));
    attacks.push(("garbage", "not-a-jwt".to_owned()));
    attacks.push(("two parts", format!("{}.{}", parts[0], parts[1])));
    // A refresh token is not an access token.
    let g = svc.tokens("alice", None);
    attacks.push(("refresh token as bearer", g.refresh.clone()));

    for (what, token) in &attacks {
        let r = me(token);
        assert_eq!(
            r.status, 401,
            "{what}: expected 401, got {}: {}",
            r.status, r.body
        );
        assert_invalid_token(&r);
    }
    // The real token still works: nothing above was a fluke of the server.
    svc.get_bearer("/users/me", &g.access).expect(200);
}

// ---------------------------------------------------------------- refresh and logout

#[test]
fn refresh_rotates_and_reuse_revokes_the_family() {
    let svc = Service::start();
    let g1 = svc.tokens("alice", Some("me notes:read"));
    // The contract's form: just `refresh_token`.
    let r = svc.form("/auth/refresh", &[], &[("refresh_token", &g1.refresh)]);
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    assert_eq!(v["token_type"], "bearer");
    let g2 = notes_service::Grant::from_json(&v);
    assert_ne!(g2.refresh, g1.refresh, "a new refresh token");
    assert_ne!(g2.access, g1.access, "a new access token");
    assert_eq!(
        scopes(&g2.scope),
        set(&["me", "notes:read"]),
        "refresh keeps the granted scope"
    );
    assert_eq!(
        svc.get_bearer("/users/me", &g2.access).expect(200).json()["username"],
        "alice"
    );

    // The rotated token is dead ...
    let r = svc.refresh(&g1.refresh);
    r.expect(400);
    assert_eq!(
        r.json()["error"],
        "invalid_grant",
        "RFC 6749 §5.2: {}",
        r.body
    );
    // ... and presenting it again revoked the family: the newest dies too.
    let r = svc.refresh(&g2.refresh);
    r.expect(400);
    assert_eq!(r.json()["error"], "invalid_grant");

    // A made-up refresh token.
    svc.refresh("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .expect(400);
}

#[test]
fn logout_revokes_the_access_token_and_the_refresh_family_at_once() {
    let svc = Service::start();
    // Without a bearer: 401.
    assert_unauthenticated(&svc.send("POST", "/auth/logout", &[], None));

    let g1 = svc.tokens("alice", None);
    let g2 = notes_service::Grant::from_json(&svc.refresh(&g1.refresh).expect(200).json());
    // Logging out with the first access token of the family ...
    let r = svc.call("POST", "/auth/logout", Some(&g1.access), None);
    assert!(
        matches!(r.status, 200 | 204),
        "logout: {} {}",
        r.status,
        r.body
    );
    // ... revokes that token's jti at once ...
    assert_invalid_token(&svc.get_bearer("/users/me", &g1.access));
    assert_invalid_token(&svc.call("POST", "/auth/logout", Some(&g1.access), None));
    // ... and the whole refresh family, including the rotated-to token.
    svc.refresh(&g2.refresh).expect(400);
    svc.refresh(&g1.refresh).expect(400);

    // Another session of the same user is untouched.
    let other = svc.tokens("alice", None);
    svc.get_bearer("/users/me", &other.access).expect(200);
    svc.refresh(&other.refresh).expect(200);
}

// ---------------------------------------------------------------- users

#[test]
fn users_me_returns_the_caller_and_never_a_hash() {
    let svc = Service::start();
    for (user, roles) in [("alice", json!(["user"])), ("admin", json!(["admin"]))] {
        let g = svc.tokens(user, None);
        let r = svc.get_bearer("/users/me", &g.access);
        let v = r.expect(200).json();
        assert_eq!(v["username"], user);
        assert_eq!(v["roles"], roles);
        assert!(!r.body.contains("$argon2"), "a hash in {}", r.body);
        for key in v.as_object().unwrap().keys() {
            assert!(
                !key.contains("hash") && !key.contains("password"),
                "field {key} in {}",
                r.body
            );
        }
        if user == "admin" {
            let r = svc.get_bearer("/admin/users", &g.access);
            let list = r.expect(200).json();
            let names: BTreeSet<String> = list
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(names, set(&["alice", "bob", "carol", "admin"]));
            assert!(
                !r.body.contains("$argon2") && !r.body.contains("hash"),
                "{}",
                r.body
            );
        }
    }
}

// ---------------------------------------------------------------- notes

#[test]
fn notes_crud_owner_is_always_the_caller() {
    let svc = Service::start();
    let alice = svc.tokens("alice", None).access;
    let carol = svc.tokens("carol", None).access;
    let admin = svc.tokens("admin", None).access;

    let r = svc.call(
        "POST",
        "/notes",
        Some(&alice),
        Some(&json!({"title": "groceries", "body": "milk"})),
    );
    let note = r.expect(201).json();
    assert_eq!(note["title"], "groceries");
    assert_eq!(note["body"], "milk");
    assert_eq!(note["owner"], "alice");
    let id = note["id"].as_u64().expect("numeric id");

    // GET /notes: the caller's notes only.
    let list = svc.get_bearer("/notes", &alice).expect(200).json();
    assert_eq!(list, json!([note]));
    assert_eq!(
        svc.get_bearer("/notes", &carol).expect(200).json(),
        json!([])
    );
    assert_eq!(
        svc.get_bearer(&format!("/notes/{id}"), &alice)
            .expect(200)
            .json(),
        note
    );

    // An `owner` in the request is rejected or ignored, never honoured.
    let r = svc.call(
        "POST",
        "/notes",
        Some(&alice),
        Some(&json!({"title": "t", "body": "b", "owner": "carol"})),
    );
    match r.status {
        201 => assert_eq!(r.json()["owner"], "alice", "owner honoured: {}", r.body),
        400..=499 => {
            r.assert_problem(r.status);
        }
        s => panic!("POST /notes with an owner field: {s} {}", r.body),
    }
    assert_eq!(
        svc.get_bearer("/notes", &carol).expect(200).json(),
        json!([]),
        "carol got a note"
    );

    // Someone else's note is a 404 exactly like a missing one.
    let theirs = svc.get_bearer(&format!("/notes/{id}"), &carol);
    let missing = svc.get_bearer("/notes/4000000000", &carol);
    theirs.assert_problem(404);
    missing.assert_problem(404);
    assert_eq!(
        theirs.body, missing.body,
        "someone else's note must look missing"
    );
    assert_eq!(
        theirs.header("content-type"),
        missing.header("content-type")
    );

    // DELETE by another user: 404 like a missing note, and nothing deleted.
    let r = svc.call("DELETE", &format!("/notes/{id}"), Some(&carol), None);
    r.assert_problem(404);
    let r2 = svc.call("DELETE", "/notes/4000000000", Some(&carol), None);
    assert_eq!(r.body, r2.body);
    svc.get_bearer(&format!("/notes/{id}"), &alice).expect(200);

    // DELETE by the owner: 204, then gone.
    let r = svc.call("DELETE", &format!("/notes/{id}"), Some(&alice), None);
    r.expect(204);
    assert!(r.body.is_empty(), "204 with a body: {}", r.body);
    svc.get_bearer(&format!("/notes/{id}"), &alice)
        .assert_problem(404);
    svc.call("DELETE", &format!("/notes/{id}"), Some(&alice), None)
        .assert_problem(404);

    // DELETE by admin (permission notes:delete-any): 204 on someone else's.
    let carols = new_note(&svc, &carol, "carol's")["id"].as_u64().unwrap();
    svc.call("DELETE", &format!("/notes/{carols}"), Some(&admin), None)
        .expect(204);
    svc.get_bearer(&format!("/notes/{carols}"), &carol)
        .assert_problem(404);
    assert_eq!(
        svc.get_bearer("/notes", &carol).expect(200).json(),
        json!([])
    );
}

#[test]
fn note_title_and_body_lengths_are_enforced_in_characters() {
    let svc = Service::start();
    let t = svc.tokens("alice", None).access;
    let post = |title: &str, body: &str| {
        svc.call(
            "POST",
            "/notes",
            Some(&t),
            Some(&json!({"title": title, "body": body})),
        )
    };
    // Multi-byte characters: the limits count characters, not bytes.
    let title200 = "é".repeat(200);
    let body10000 = "ü".repeat(10_000);
    let r = post(&title200, &body10000);
    let v = r.expect(201).json();
    assert_eq!(v["title"], title200.as_str());
    assert_eq!(v["body"].as_str().map(|b| b.chars().count()), Some(10_000));
    post("a", "").expect(201);
    post("", "b").assert_problem(400);
    post(&"é".repeat(201), "b").assert_problem(400);
    post("t", &"ü".repeat(10_001)).assert_problem(400);
    svc.call("POST", "/notes", Some(&t), Some(&json!({"title": "t"})))
        .assert_problem(400);
    svc.call("POST", "/notes", Some(&t), Some(&json!({"body": "b"})))
        .assert_problem(400);
    // Only the valid notes were stored.
    assert_eq!(
        svc.get_bearer("/notes", &t)
            .expect(200)
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn note_creation_is_limited_to_60_per_minute_per_user() {
    let svc = Service::start();
    let alice = svc.tokens("alice", None).access;
    let carol = svc.tokens("carol", None).access;
    let body = json!({"title": "t", "body": "b"});
    let start = Instant::now();
    for i in 1..=60 {
        let r = svc.call("POST", "/notes", Some(&alice), Some(&body));
        assert_eq!(r.status, 201, "note {i} of 60: {}", r.body);
    }
    // The 61st is refused, unless a whole second passed and the GCRA bucket
    // (60/min = one per second) legitimately admitted one more per second.
    let allowance = start.elapsed().as_secs() + 1;
    let mut extra = 0;
    let limited = loop {
        let r = svc.call("POST", "/notes", Some(&alice), Some(&body));
        if r.status == 429 {
            break r;
        }
        assert_eq!(r.status, 201, "{}", r.body);
        extra += 1;
        assert!(
            extra <= allowance,
            "{} notes admitted within {:?}",
            60 + extra,
            start.elapsed()
        );
    };
    assert_limited(&limited);
    // Per user: carol is not affected.
    svc.call("POST", "/notes", Some(&carol), Some(&body))
        .expect(201);
    // Reads are not limited by it.
    svc.get_bearer("/notes", &alice).expect(200);
}

// ---------------------------------------------------------------- admin and API keys

#[test]
fn admin_endpoints_require_role_admin() {
    let svc = Service::start();
    let alice = svc.tokens("alice", None).access;
    let key_body = json!({"name": "k", "scopes": ["stats:read"]});
    let calls: [(&str, &str, Option<&Value>); 4] = [
        ("GET", "/admin/users", None),
        ("POST", "/admin/api-keys", Some(&key_body)),
        ("GET", "/admin/api-keys", None),
        ("DELETE", "/admin/api-keys/some-id", None),
    ];
    for (method, path, body) in calls {
        svc.call(method, path, Some(&alice), body)
            .assert_problem(403);
        assert_unauthenticated(&svc.call(method, path, None, body));
    }
}

#[test]
fn an_admin_token_narrowed_to_me_cannot_act_as_admin() {
    let svc = Service::start();
    let narrowed = svc.tokens("admin", Some("me")).access;
    for (method, path) in [("GET", "/admin/users"), ("GET", "/admin/api-keys")] {
        let r = svc.call(method, path, Some(&narrowed), None);
        r.assert_problem(403);
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("insufficient_scope") && challenge.contains("admin"),
            "{challenge}"
        );
    }
    let r = svc.call(
        "POST",
        "/admin/api-keys",
        Some(&narrowed),
        Some(&json!({"name": "k", "scopes": ["stats:read"]})),
    );
    r.assert_problem(403);
    // The same admin with the scope: admitted.
    let full = svc.tokens("admin", None).access;
    svc.call("GET", "/admin/users", Some(&full), None)
        .expect(200);
}

#[test]
fn refresh_grants_are_limited_to_ten_a_minute_per_client_ip() {
    let svc = Service::start();
    let bogus = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let mut statuses = Vec::new();
    for i in 0..12 {
        // Alternate the two endpoints that carry the grant: one limit.
        let r = if i % 2 == 0 {
            svc.refresh(bogus)
        } else {
            svc.form(
                "/auth/token",
                &[],
                &[("grant_type", "refresh_token"), ("refresh_token", bogus)],
            )
        };
        statuses.push(r.status);
    }
    assert!(statuses[..10].iter().all(|s| *s == 400), "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[test]
fn one_session_cannot_be_refreshed_in_a_loop_from_many_addresses() {
    let svc = Service::start_with(&[TRUST_LOOPBACK]);
    let mut g = svc.tokens("alice", None);
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let ip = fresh_ip();
        let r = svc.form(
            "/auth/refresh",
            &[("x-forwarded-for", ip.as_str())],
            &[("refresh_token", g.refresh.as_str())],
        );
        statuses.push(r.status);
        if r.status == 200 {
            g = notes_service::Grant::from_json(&r.json());
        }
    }
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
}

#[test]
fn api_key_lifecycle_create_list_use_revoke() {
    let svc = Service::start();
    let admin = svc.tokens("admin", None).access;
    let r = svc.call(
        "POST",
        "/admin/api-keys",
        Some(&admin),
        Some(&json!({"name": "ci", "scopes": ["stats:read"]})),
    );
    let v = r.expect(201).json();
    let id = v["id"].as_str().expect("id").to_owned();
    let key = v["key"].as_str().expect("key").to_owned();
    assert!(key.len() >= 32, "a short key: {key}");

    // The key works.
    let stats = svc.send("GET", "/service/stats", &[("x-api-key", &key)], None);
    assert!(
        stats.expect(200).json().is_object(),
        "stats: {}",
        stats.body
    );

    // The list names it without its secret.
    let r = svc.get_bearer("/admin/api-keys", &admin);
    let list = r.expect(200).json();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .expect("the key is listed");
    assert_eq!(entry["name"], "ci");
    let secret = key.rsplit('.').next().unwrap();
    assert!(
        !r.body.contains(&key) && !r.body.contains(secret),
        "the list reveals the secret: {}",
        r.body
    );
    assert!(
        entry.get("key").is_none() && entry.get("secret").is_none(),
        "{entry}"
    );

    // A scope API keys may not carry is refused.
    let r = svc.call(
        "POST",
        "/admin/api-keys",
        Some(&admin),
        Some(&json!({"name": "x", "scopes": ["admin"]})),
    );
    assert!(
        (400..500).contains(&r.status),
        "an admin-scoped key was created: {} {}",
        r.status,
        r.body
    );

    // Revoked: 204, and the key stops working at once.
    svc.call(
        "DELETE",
        &format!("/admin/api-keys/{id}"),
        Some(&admin),
        None,
    )
    .expect(204);
    let r = svc.send("GET", "/service/stats", &[("x-api-key", &key)], None);
    r.assert_problem(401);
    assert!(
        r.header("www-authenticate").is_some(),
        "401 without a challenge: {:?}",
        r.headers
    );
    let list = svc.get_bearer("/admin/api-keys", &admin).expect(200).json();
    let gone_or_revoked = list
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["id"] != id.as_str() || k["revoked"] == json!(true));
    assert!(gone_or_revoked, "revoked key still listed as live: {list}");
}

#[test]
fn service_stats_needs_an_api_key_with_stats_read() {
    let svc = Service::start();
    let admin = svc.tokens("admin", None).access;
    // Without a key; with a bearer token (valid, admin): 401.
    for r in [
        svc.get("/service/stats"),
        svc.get_bearer("/service/stats", &admin),
        svc.send("GET", "/service/stats", &[("x-api-key", "nope.nope")], None),
        svc.send("GET", "/service/stats", &[("x-api-key", "")], None),
    ] {
        r.assert_problem(401);
        assert!(
            r.header("www-authenticate").is_some(),
            "{}: 401 without a challenge",
            r.what
        );
    }
    // A key without stats:read is refused (403: authenticated, scope missing).
    let v = svc
        .call(
            "POST",
            "/admin/api-keys",
            Some(&admin),
            Some(&json!({"name": "noscope", "scopes": []})),
        )
        .expect(201)
        .json();
    let r = svc.send(
        "GET",
        "/service/stats",
        &[("x-api-key", v["key"].as_str().unwrap())],
        None,
    );
    r.assert_problem(403);
    // An API key is not a bearer credential.
    let v = svc
        .call(
            "POST",
            "/admin/api-keys",
            Some(&admin),
            Some(&json!({"name": "stats", "scopes": ["stats:read"]})),
        )
        .expect(201)
        .json();
    let key = v["key"].as_str().unwrap();
    svc.send("GET", "/service/stats", &[("x-api-key", key)], None)
        .expect(200);
    assert_unauthenticated(&svc.send("GET", "/users/me", &[("x-api-key", key)], None));
    assert_invalid_token(&svc.get_bearer("/users/me", key));
}

// ---------------------------------------------------------------- documents

#[test]
fn openapi_document_and_swagger_ui_are_public() {
    let svc = Service::start();
    let r = svc.get("/openapi.json");
    let doc = r.expect(200).json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "openapi: {}",
        doc["openapi"]
    );
    for path in [
        "/health",
        "/auth/token",
        "/auth/refresh",
        "/auth/logout",
        "/users/me",
        "/notes",
        "/notes/{id}",
        "/admin/users",
        "/admin/api-keys",
        "/admin/api-keys/{id}",
        "/service/stats",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let flows = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["password"];
    assert_eq!(
        flows["tokenUrl"], "/auth/token",
        "oauth2 password flow: {}",
        doc["components"]["securitySchemes"]
    );
    let security = doc["paths"]["/users/me"]["get"]["security"].to_string();
    assert!(
        security.contains("\"me\""),
        "GET /users/me security: {security}"
    );

    let r = svc.get("/docs");
    r.expect(200);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        r.headers
    );
    assert!(
        r.body.to_ascii_lowercase().contains("swagger"),
        "no Swagger UI at /docs"
    );
}

// ---------------------------------------------------------------- error rules

#[test]
fn protected_endpoints_answer_401_with_a_bearer_challenge() {
    let svc = Service::start();
    let note = json!({"title": "t", "body": "b"});
    let calls: [(&str, &str, Option<&Value>); 10] = [
        ("GET", "/users/me", None),
        ("GET", "/notes", None),
        ("POST", "/notes", Some(&note)),
        ("GET", "/notes/1", None),
        ("DELETE", "/notes/1", None),
        ("POST", "/auth/logout", None),
        ("GET", "/admin/users", None),
        ("GET", "/admin/api-keys", None),
        ("POST", "/admin/api-keys", Some(&note)),
        ("DELETE", "/admin/api-keys/x", None),
    ];
    for (method, path, body) in calls {
        assert_unauthenticated(&svc.call(method, path, None, body));
        assert_invalid_token(&svc.call(method, path, Some("not.a.token"), body));
        // An empty bearer is no credential.
        let r = svc.send(method, path, &[("authorization", "Bearer ")], None);
        assert_eq!(
            r.status, 401,
            "{method} {path} with an empty bearer: {}",
            r.body
        );
    }
}

#[test]
fn every_response_carries_the_security_headers() {
    // `Service` checks nosniff, the frame-denying header and Referrer-Policy
    // on every response; this test makes sure each kind of response is seen.
    let svc = Service::start();
    let mut seen = BTreeSet::new();
    let mut see = |r: Resp| {
        r.assert_hardened();
        seen.insert(r.status);
    };
    see(svc.get("/health")); // 200
    see(svc.get("/openapi.json")); // 200
    see(svc.get("/docs")); // 200
    see(svc.get("/users/me")); // 401
    see(svc.get("/no/such/path")); // 404
    see(svc.send("PUT", "/health", &[], Some(("text/plain", b"x".to_vec())))); // 405
    see(svc.send("DELETE", "/health", &[], None)); // 405
    let g = svc.tokens("alice", None);
    see(svc.get_bearer("/admin/users", &g.access)); // 403
    see(svc.get_bearer("/notes/abc", &g.access)); // 400
    see(svc.call("DELETE", "/notes/1", Some(&g.access), None)); // 404
    see(svc.send_large(
        "/notes",
        &[("authorization", &format!("Bearer {}", g.access))],
        "application/json",
        vec![b' '; (1 << 20) + 1],
        false,
    )); // 413
    for _ in 0..5 {
        see(svc.login("alice", "wrong", None));
    }
    see(svc.call("POST", "/auth/logout", Some(&g.access), None)); // 204
    for status in [200, 204, 400, 401, 403, 404, 405, 413, 429] {
        assert!(
            seen.contains(&status),
            "no {status} response was checked: {seen:?}"
        );
    }
}

#[test]
fn bad_input_gets_a_4xx_problem_and_the_server_keeps_serving() {
    let mut svc = Service::start_with(&[TRUST_LOOPBACK]);
    let t = svc.tokens("alice", None).access;
    let auth = format!("Bearer {t}");
    let bearer = [("authorization", auth.as_str())];
    let post_notes =
        |ct: &str, body: Vec<u8>| svc.send("POST", "/notes", &bearer, Some((ct, body)));

    // Malformed JSON and wrong types.
    let bad_json: &[&[u8]] = &[
        b"{bad",
        b"",
        b"{\"title\": \"t\", \"body\": \"b\"",
        b"[]",
        b"\"just a string\"",
        b"null",
        b"42",
        b"{\"title\": {\"a\": 1}, \"body\": \"b\"}",
        b"{\"title\": [\"a\"], \"body\": \"b\"}",
        b"{\"title\": null, \"body\": \"b\"}",
        b"{\"title\": \"t\", \"body\": {\"x\": 1}}",
        b"{\"title\": \"t\", \"body\": [1, 2]}",
        b"{\"title\": \"\xff\xfe\", \"body\": \"b\"}",
        b"{\"title\": \"\\ud800\", \"body\": \"b\"}",
    ];
    for body in bad_json {
        let r = post_notes("application/json", body.to_vec());
        assert!(
            (400..500).contains(&r.status),
            "{:?}: {} {}",
            String::from_utf8_lossy(body),
            r.status,
            r.body
        );
        r.assert_problem(r.status);
    }
    // Deeply nested JSON must not overflow the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    post_notes("application/json", deep.into_bytes()).assert_problem(400);
    // A body that is not JSON at all.
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = post_notes(ct, b"title=t&body=b".to_vec());
        assert!(
            (400..500).contains(&r.status),
            "{ct}: {} {}",
            r.status,
            r.body
        );
        r.assert_problem(r.status);
    }
    // Oversized: more than 1 MiB, with a Content-Length and chunked.
    let big = format!(
        "{{\"title\": \"t\", \"body\": \"{}\"}}",
        "a".repeat(1 << 20)
    );
    let big_form = format!(
        "grant_type=password&username=alice&password={}",
        "a".repeat(1 << 20)
    );
    for chunked in [false, true] {
        svc.send_large(
            "/notes",
            &bearer,
            "application/json",
            big.clone().into_bytes(),
            chunked,
        )
        .assert_problem(413);
        let ip = fresh_ip();
        svc.send_large(
            "/auth/token",
            &[("x-forwarded-for", &ip)],
            "application/x-www-form-urlencoded",
            big_form.clone().into_bytes(),
            chunked,
        )
        .assert_problem(413);
    }

    // Bad percent-encoding and invalid UTF-8 in the forms: a 4xx with a
    // structured body (RFC 6749 §5.2 `error` on the OAuth endpoints, or a problem).
    let forms: [(&str, &str); 6] = [
        (
            "/auth/token",
            "grant_type=password&username=%zz%&password=%",
        ),
        (
            "/auth/token",
            "grant_type=password&username=%FF%FE&password=%C3%28",
        ),
        ("/auth/token", "%%%%=%%&&&="),
        (
            "/auth/token",
            "grant_type=password&username=alice&username=carol&password=x",
        ),
        (
            "/auth/refresh",
            "grant_type=refresh_token&refresh_token=%zz%",
        ),
        ("/auth/refresh", "refresh_token=%FF%00%FE"),
    ];
    for (path, body) in forms {
        let ip = fresh_ip();
        let r = svc.send(
            "POST",
            path,
            &[("x-forwarded-for", &ip)],
            Some((
                "application/x-www-form-urlencoded",
                body.as_bytes().to_vec(),
            )),
        );
        assert!(
            (400..500).contains(&r.status),
            "{path} {body:?}: {} {}",
            r.status,
            r.body
        );
        let ct = r.header("content-type").unwrap_or_default();
        let v = r.json();
        assert!(
            ct.starts_with("application/problem+json") || v["error"].is_string(),
            "{path} {body:?}: not a structured error: {ct} {}",
            r.body
        );
    }
    // The token endpoint wants a form.
    let ip = fresh_ip();
    let r = svc.send(
        "POST",
        "/auth/token",
        &[("x-forwarded-for", &ip)],
        Some((
            "application/json",
            br#"{"grant_type":"password","username":"alice","password":"alice-password-1"}"#
                .to_vec(),
        )),
    );
    assert!(
        (400..500).contains(&r.status),
        "JSON to /auth/token: {} {}",
        r.status,
        r.body
    );

    // Absurd path ids, on GET and DELETE.
    for id in [
        "99999999999999999999999",
        "-1",
        "abc",
        "1.5",
        "%zz",
        "%00",
        "1%20",
        "0x10",
        "%F0%9F%92%A9",
    ] {
        for method in ["GET", "DELETE"] {
            let r = svc.send(method, &format!("/notes/{id}"), &bearer, None);
            assert!(
                matches!(r.status, 400 | 404),
                "{method} /notes/{id}: {} {}",
                r.status,
                r.body
            );
            r.assert_problem(r.status);
        }
    }
    // A request that is not HTTP at all.
    let mut raw = TcpStream::connect(("127.0.0.1", svc.port())).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(b"\x00\x01GARBAGE \xff\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = raw.read_to_end(&mut buf);
    let reply = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    assert!(
        !reply.contains("panic") && !reply.contains("backtrace"),
        "{reply}"
    );

    // Still serving.
    assert!(svc.is_running(), "the service died");
    svc.get("/health").expect(200);
    svc.get_bearer("/users/me", &t).expect(200);
    svc.call(
        "POST",
        "/notes",
        Some(&t),
        Some(&json!({"title": "still", "body": "fine"})),
    )
    .expect(201);
    let log = svc.log_text();
    assert!(!log.contains("panicked"), "the service panicked:\n{log}");
}

/// Beyond the contract, HTTP/1.1 hygiene (RFC 9112 §9.6): a guard refuses
/// before the body is read; if the server then closes the connection, the
/// response must say `Connection: close`, or else the connection must stay
/// usable. Otherwise a client that pools connections sends its next request
/// into a dead socket (a POST is not retried).
#[test]
fn refusing_a_request_with_an_unread_body_signals_connection_close() {
    let svc = Service::start();
    let body = format!(
        "{{\"title\": \"t\", \"body\": \"{}\"}}",
        "a".repeat(200_000)
    );
    let mut s = TcpStream::connect(("127.0.0.1", svc.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let _ = w.write_all(head.as_bytes());
        let _ = w.write_all(body.as_bytes());
    });
    // The 401 (no credential), read up to the end of its body.
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let (end, len) = loop {
        let n = s.read(&mut tmp).expect("read the 401");
        assert!(n > 0, "closed before answering");
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break (end, len);
            }
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    let _ = writer.join();
    if head
        .lines()
        .any(|l| l.starts_with("connection:") && l.contains("close"))
    {
        return; // announced: a client will not reuse the connection.
    }
    // Not announced: the connection must still serve the next request.
    let rest = buf.len() - (end + 4 + len);
    assert_eq!(rest, 0, "extra bytes after the 401");
    let sent = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut reply = Vec::new();
    let got = sent.and_then(|()| {
        let n = s.read(&mut tmp)?;
        reply.extend_from_slice(&tmp[..n]);
        Ok(n)
    });
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        matches!(got, Ok(n) if n > 0) && reply.starts_with("HTTP/1.1 200"),
        "the 401 did not say `Connection: close`, yet the next request on the connection got {got:?} {reply:?}"
    );
}

#[test]
fn note_fields_of_the_wrong_json_scalar_type_are_rejected() {
    let svc = Service::start();
    let t = svc.tokens("alice", None).access;
    for body in [
        json!({"title": 1, "body": "b"}),
        json!({"title": "t", "body": true}),
        json!({"title": 1.5, "body": 2}),
    ] {
        let r = svc.call("POST", "/notes", Some(&t), Some(&body));
        assert_eq!(
            r.status, 400,
            "{body}: a number/boolean is not a string, got {} {}",
            r.status, r.body
        );
        r.assert_problem(400);
    }
}

// ---------------------------------------------------------------- environment

#[test]
fn jwt_issuer_and_audience_come_from_the_environment() {
    let svc = Service::start_with(&[
        ("JWT_SECRET", SECRET),
        ("JWT_ISSUER", "iss-x"),
        ("JWT_AUDIENCE", "aud-x"),
    ]);
    let g = svc.tokens("alice", None);
    let (_, claims) = decode_jwt(&g.access);
    assert_eq!(claims["iss"], "iss-x");
    let aud_ok = claims["aud"] == "aud-x"
        || claims["aud"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("aud-x")));
    assert!(aud_ok, "aud: {claims}");
    let mut c = good_claims("alice", "me");
    c["iss"] = json!("iss-x");
    c["aud"] = json!("aud-x");
    svc.get_bearer(
        "/users/me",
        &forge(SECRET, Algorithm::HS256, Some("at+jwt"), &c),
    )
    .expect(200);
    // The defaults are no longer accepted.
    let default = forge(
        SECRET,
        Algorithm::HS256,
        Some("at+jwt"),
        &good_claims("alice", "me"),
    );
    assert_invalid_token(&svc.get_bearer("/users/me", &default));
}

#[test]
fn without_jwt_secret_each_process_has_its_own_key() {
    let a = Service::start();
    let b = Service::start();
    let g = a.tokens("alice", None);
    a.get_bearer("/users/me", &g.access).expect(200);
    assert_invalid_token(&b.get_bearer("/users/me", &g.access));
    // Nor is a token signed with a guessable key accepted.
    let guess = forge(
        "",
        Algorithm::HS256,
        Some("at+jwt"),
        &good_claims("alice", "me"),
    );
    assert_invalid_token(&a.get_bearer("/users/me", &guess));
}

#[test]
fn token_lifetimes_come_from_the_environment() {
    let svc = Service::start_with(&[
        ("ACCESS_TOKEN_TTL_SECS", "120"),
        ("REFRESH_TOKEN_TTL_SECS", "2"),
    ]);
    let g = svc.tokens("alice", None);
    assert_eq!(g.expires_in, 120);
    let (_, claims) = decode_jwt(&g.access);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    // Within its lifetime the refresh token rotates ...
    let r = svc.refresh(&g.refresh);
    let g2 = notes_service::Grant::from_json(&r.expect(200).json());
    assert_eq!(g2.expires_in, 120);
    // ... and once REFRESH_TOKEN_TTL_SECS has passed it is refused.
    thread::sleep(Duration::from_millis(3500));
    let r = svc.refresh(&g2.refresh);
    r.expect(400);
    assert_eq!(r.json()["error"], "invalid_grant");
}

fn preflight(svc: &Service, origin: &str) -> Resp {
    svc.send(
        "OPTIONS",
        "/notes",
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
        None,
    )
}

#[test]
fn cors_answers_only_allowed_origins() {
    // Default CORS_ORIGINS: http://localhost:5173.
    let svc = Service::start();
    let ok = preflight(&svc, "http://localhost:5173");
    assert!(
        (200..300).contains(&ok.status),
        "allowed preflight: {} {}",
        ok.status,
        ok.body
    );
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("http://localhost:5173"),
        "{:?}",
        ok.headers
    );
    let methods = ok
        .header("access-control-allow-methods")
        .unwrap_or_default();
    assert!(methods.contains("POST"), "allow-methods {methods:?}");
    let headers = ok
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization"),
        "allow-headers {headers:?}"
    );
    for origin in [
        "http://evil.example",
        "http://localhost:5174",
        "null",
        "http://localhost:5173.evil.example",
    ] {
        let r = preflight(&svc, origin);
        assert!(
            r.header("access-control-allow-origin").is_none(),
            "{origin} allowed: {:?}",
            r.headers
        );
    }
    // A simple request from an allowed origin gets the header, others not.
    let r = svc.send(
        "GET",
        "/health",
        &[("origin", "http://localhost:5173")],
        None,
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    let r = svc.send("GET", "/health", &[("origin", "http://evil.example")], None);
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers
    );

    // CORS_ORIGINS replaces the default, comma-separated, spaces trimmed.
    let svc = Service::start_with(&[(
        "CORS_ORIGINS",
        "https://app.example.com, https://admin.example.com",
    )]);
    for origin in ["https://app.example.com", "https://admin.example.com"] {
        let r = preflight(&svc, origin);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some(origin),
            "{origin}: {:?}",
            r.headers
        );
    }
    let r = preflight(&svc, "http://localhost:5173");
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "default origin still allowed: {:?}",
        r.headers
    );
}
