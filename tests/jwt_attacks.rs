//! Attacks on JWT bearer verification, with tokens crafted directly (the
//! `jsonwebtoken` crate, or by hand for what it refuses to produce). Each
//! attack is tried against a live route and must be refused with
//! `401` + `WWW-Authenticate: Bearer error="invalid_token"`, with a body that
//! reveals neither the token nor why it was refused.

use std::{
    collections::HashSet,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
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
    Answer, ClaimMapping, CredentialError, JwtConfig, Principal, RevocationList, Security,
};
use serde_json::{json, Value};

const SECRET: &[u8; 32] = b"jwt-attacks-test-secret-32-byte!";
const ISS: &str = "attack-issuer";
const AUD: &str = "attack-api";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn security() -> Security {
    Security::builder()
        .jwt(JwtConfig::hs256(SECRET).unwrap().issuer(ISS).audience(AUD))
        .build()
        .unwrap()
}

#[secure(scopes = "notes:read")]
#[handler]
async fn me(who: Principal) -> String {
    format!(
        "{}|{}|{}|{}",
        who.subject(),
        who.scopes().join(" "),
        who.roles().join(" "),
        who.claims()
            .get("custom")
            .and_then(Value::as_str)
            .unwrap_or("-")
    )
}

fn app(sec: &Security) -> impl Endpoint {
    Route::new().at("/me", get(me)).with(sec.clone())
}

fn client() -> TestClient<impl Endpoint> {
    TestClient::new(app(&security()))
}

/// Claims of a valid access token (RFC 9068) for the test configuration.
fn claims() -> Value {
    json!({
        "iss": ISS,
        "sub": "alice",
        "aud": AUD,
        "iat": now(),
        "exp": now() + 300,
        "jti": "jti-attack",
        "scope": "notes:read",
        "roles": ["user"],
        "custom": "kept",
    })
}

fn header(alg: Algorithm, typ: Option<&str>) -> Header {
    let mut h = Header::new(alg);
    h.typ = typ.map(str::to_owned);
    h
}

/// Signs `claims` with `alg` and `secret`, header `typ` as given.
fn sign_with(alg: Algorithm, typ: Option<&str>, secret: &[u8], claims: &Value) -> String {
    encode(&header(alg, typ), claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// A correctly signed HS256 `at+jwt` token carrying `claims`.
fn sign(claims: &Value) -> String {
    sign_with(Algorithm::HS256, Some("at+jwt"), SECRET, claims)
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn with_claim(name: &str, value: Value) -> Value {
    let mut c = claims();
    c[name] = value;
    c
}

fn without_claim(name: &str) -> Value {
    let mut c = claims();
    c.as_object_mut().unwrap().remove(name);
    c
}

fn www_authenticate(resp: &TestResponse) -> Vec<String> {
    resp.0
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// What the verifier knows about a refusal; none of it may reach the client.
const INTERNAL_REASONS: &[&str] = &[
    // poem-secure's own reasons (`TokenError`'s Display)...
    "malformed token",
    "algorithm not allowed",
    "bad signature",
    "expired or missing exp",
    "not yet valid",
    "wrong or missing issuer",
    "wrong or missing audience",
    "missing subject",
    "wrong typ header",
    "revoked",
    // ...and the library's.
    "jsonwebtoken",
    "InvalidToken",
    "InvalidSignature",
    "ExpiredSignature",
    "Base64",
    "serde",
];

/// The body every `invalid_token` refusal must answer with, byte for byte:
/// refusals must not differ by reason (no oracle for an attacker).
async fn reference_invalid_body() -> String {
    let resp = client()
        .get("/me")
        .header("authorization", "Bearer x.y.z")
        .send()
        .await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    resp.0.into_body().into_string().await.unwrap()
}

/// Sends `Authorization: Bearer <token>` and asserts the invalid-token refusal.
async fn assert_refused(token: &str) {
    assert_refused_by(&client(), token).await
}

async fn assert_refused_by(cli: &TestClient<impl Endpoint>, token: &str) {
    let resp = cli
        .get("/me")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await;
    assert_eq!(
        resp.0.status(),
        StatusCode::UNAUTHORIZED,
        "token accepted or wrongly refused: {token}"
    );
    assert_eq!(
        www_authenticate(&resp),
        [r#"Bearer error="invalid_token""#],
        "token: {token}"
    );
    resp.assert_content_type("application/problem+json");
    let body = resp.0.into_body().into_string().await.unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], 401);
    for seg in token.split('.').filter(|s| s.len() >= 4) {
        assert!(
            !body.contains(seg),
            "the body leaks part of the token: {body}"
        );
    }
    let lower = body.to_lowercase();
    for r in INTERNAL_REASONS {
        assert!(
            !lower.contains(&r.to_lowercase()),
            "the body reveals {r:?}: {body}"
        );
    }
    assert_eq!(
        body,
        reference_invalid_body().await,
        "refusal bodies must not differ by reason"
    );
}

async fn assert_accepted(token: &str) -> String {
    let resp = client()
        .get("/me")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.0.into_body().into_string().await.unwrap()
}

// ---------------------------------------------------------------------------
// Controls: hand-made tokens that must pass (so the refusals below are due to
// the one thing each attack changes).
// ---------------------------------------------------------------------------

#[tokio::test]
async fn control_handcrafted_valid_token_is_accepted() {
    assert_eq!(
        assert_accepted(&sign(&claims())).await,
        "alice|notes:read|user|kept"
    );
}

#[tokio::test]
async fn control_helper_token_is_accepted() {
    let sec = security();
    let t = token(&sec, "bob").scopes(["notes:read"]).sign();
    assert_eq!(assert_accepted(&t).await, "bob|notes:read||-");
}

#[tokio::test]
async fn typ_application_at_jwt_is_accepted() {
    let t = sign_with(
        Algorithm::HS256,
        Some("application/at+jwt"),
        SECRET,
        &claims(),
    );
    assert_accepted(&t).await;
}

#[tokio::test]
async fn typ_is_compared_case_insensitively() {
    let t = sign_with(Algorithm::HS256, Some("AT+JWT"), SECRET, &claims());
    assert_accepted(&t).await;
}

#[tokio::test]
async fn exp_within_leeway_is_accepted() {
    assert_accepted(&sign(&with_claim("exp", json!(now() - 10)))).await;
}

#[tokio::test]
async fn nbf_within_leeway_is_accepted() {
    assert_accepted(&sign(&with_claim("nbf", json!(now() + 10)))).await;
}

#[tokio::test]
async fn roles_as_space_separated_string_is_accepted() {
    assert_eq!(
        assert_accepted(&sign(&with_claim("roles", json!("user admin")))).await,
        "alice|notes:read|user admin|kept"
    );
}

#[tokio::test]
async fn lowercase_and_uppercase_bearer_scheme_are_accepted() {
    let cli = client();
    let t = sign(&claims());
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let resp = cli
            .get("/me")
            .header("authorization", format!("{scheme} {t}"))
            .send()
            .await;
        resp.assert_status_is_ok();
    }
}

// ---------------------------------------------------------------------------
// Algorithm and signature
// ---------------------------------------------------------------------------

#[tokio::test]
async fn alg_none_unsigned_token_is_refused() {
    let body = b64(&claims());
    let signed = sign(&claims());
    let original_sig = signed.rsplit('.').next().unwrap();
    for alg in ["none", "None", "NONE", "nOnE"] {
        for typ in [json!("at+jwt"), Value::Null] {
            let mut h = json!({ "alg": alg });
            if !typ.is_null() {
                h["typ"] = typ;
            }
            let head = b64(&h);
            assert_refused(&format!("{head}.{body}.")).await;
            assert_refused(&format!("{head}.{body}")).await;
            assert_refused(&format!("{head}.{body}.{original_sig}")).await;
        }
    }
}

#[tokio::test]
async fn alg_swap_to_hs384_or_hs512_with_the_same_secret_is_refused() {
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        assert_refused(&sign_with(alg, Some("at+jwt"), SECRET, &claims())).await;
    }
}

#[tokio::test]
async fn header_claiming_hs512_over_an_hs256_signature_is_refused() {
    // Valid HS256 signature, header rewritten to claim another algorithm.
    let t = sign(&claims());
    let mut parts: Vec<&str> = t.split('.').collect();
    let head = b64(&json!({ "alg": "HS512", "typ": "at+jwt" }));
    parts[0] = &head;
    assert_refused(&parts.join(".")).await;
}

#[tokio::test]
async fn signature_by_another_secret_is_refused() {
    let other = b"another-secret-of-32-bytes-long!";
    assert_refused(&sign_with(
        Algorithm::HS256,
        Some("at+jwt"),
        other,
        &claims(),
    ))
    .await;
    // A secret that differs in one byte.
    let mut near = *SECRET;
    near[31] ^= 1;
    assert_refused(&sign_with(
        Algorithm::HS256,
        Some("at+jwt"),
        &near,
        &claims(),
    ))
    .await;
}

#[tokio::test]
async fn tampered_payload_with_the_original_signature_is_refused() {
    let t = sign(&claims());
    let parts: Vec<&str> = t.split('.').collect();
    let mut escalated = claims();
    escalated["scope"] = json!("notes:read admin");
    escalated["roles"] = json!(["admin"]);
    escalated["sub"] = json!("root");
    let forged = format!("{}.{}.{}", parts[0], b64(&escalated), parts[2]);
    assert_refused(&forged).await;
}

#[tokio::test]
async fn stripped_or_truncated_signature_is_refused() {
    let t = sign(&claims());
    let (signing_input, sig) = t.rsplit_once('.').unwrap();
    assert_refused(&format!("{signing_input}.")).await;
    assert_refused(signing_input).await;
    assert_refused(&format!("{signing_input}.{}", &sig[..sig.len() - 2])).await;
}

// ---------------------------------------------------------------------------
// Time claims
// ---------------------------------------------------------------------------

#[tokio::test]
async fn expired_beyond_leeway_is_refused() {
    for exp in [now() - 45, now() - 3600, 0] {
        assert_refused(&sign(&with_claim("exp", json!(exp)))).await;
    }
}

#[tokio::test]
async fn missing_exp_is_refused() {
    assert_refused(&sign(&without_claim("exp"))).await;
}

#[tokio::test]
async fn exp_of_the_wrong_type_is_refused() {
    for exp in [
        json!((now() + 300).to_string()),
        json!(null),
        json!([now() + 300]),
        json!(-1),
    ] {
        assert_refused(&sign(&with_claim("exp", exp))).await;
    }
}

#[tokio::test]
async fn nbf_in_the_future_is_refused() {
    for nbf in [now() + 120, now() + 86_400] {
        assert_refused(&sign(&with_claim("nbf", json!(nbf)))).await;
    }
}

#[tokio::test]
async fn nbf_of_the_wrong_type_is_refused() {
    // A malformed `nbf` must not be read as "no nbf".
    for nbf in [
        json!((now() + 86_400).to_string()),
        json!([now()]),
        json!(-5),
    ] {
        assert_refused(&sign(&with_claim("nbf", nbf))).await;
    }
}

// ---------------------------------------------------------------------------
// Issuer, audience, subject
// ---------------------------------------------------------------------------

#[tokio::test]
async fn wrong_issuer_is_refused() {
    for iss in [
        json!("evil-issuer"),
        json!("attack-issuer "),
        json!("ATTACK-ISSUER"),
        json!(""),
    ] {
        assert_refused(&sign(&with_claim("iss", iss))).await;
    }
}

#[tokio::test]
async fn missing_issuer_is_refused() {
    assert_refused(&sign(&without_claim("iss"))).await;
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    for aud in [
        json!("other-api"),
        json!(["other-api"]),
        json!("attack-api-2"),
        json!([]),
    ] {
        assert_refused(&sign(&with_claim("aud", aud))).await;
    }
}

#[tokio::test]
async fn missing_audience_is_refused() {
    assert_refused(&sign(&without_claim("aud"))).await;
}

#[tokio::test]
async fn missing_or_empty_or_non_string_subject_is_refused() {
    assert_refused(&sign(&without_claim("sub"))).await;
    for sub in [json!(""), json!(42), json!(null), json!(["alice"])] {
        assert_refused(&sign(&with_claim("sub", sub))).await;
    }
}

// ---------------------------------------------------------------------------
// Header typ (RFC 9068)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn typ_jwt_is_refused() {
    assert_refused(&sign_with(Algorithm::HS256, Some("JWT"), SECRET, &claims())).await;
}

#[tokio::test]
async fn missing_typ_is_refused() {
    assert_refused(&sign_with(Algorithm::HS256, None, SECRET, &claims())).await;
}

#[tokio::test]
async fn other_typ_values_are_refused() {
    for typ in ["", "refresh+jwt", "at+jwt ", "id_token", "application/jwt"] {
        assert_refused(&sign_with(Algorithm::HS256, Some(typ), SECRET, &claims())).await;
    }
}

// ---------------------------------------------------------------------------
// Claim types
// ---------------------------------------------------------------------------

#[tokio::test]
async fn scope_claim_that_is_not_a_string_is_refused() {
    for scope in [
        json!(["notes:read"]),
        json!(1),
        json!({ "notes:read": true }),
        json!(true),
    ] {
        assert_refused(&sign(&with_claim("scope", scope))).await;
    }
}

#[tokio::test]
async fn roles_that_are_not_strings_are_refused() {
    for roles in [
        json!([1]),
        json!(42),
        json!({ "admin": true }),
        json!([["admin"]]),
        json!(["user", null]),
    ] {
        assert_refused(&sign(&with_claim("roles", roles))).await;
    }
}

#[tokio::test]
async fn permissions_that_are_not_strings_are_refused() {
    for perms in [json!([1]), json!(true), json!({ "users:delete": 1 })] {
        assert_refused(&sign(&with_claim("permissions", perms))).await;
    }
}

#[tokio::test]
async fn jti_that_is_not_a_string_is_refused() {
    assert_refused(&sign(&with_claim("jti", json!(7)))).await;
}

// ---------------------------------------------------------------------------
// Malformed tokens and headers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn garbage_tokens_are_refused() {
    for t in [
        "garbage",
        "a.b.c",
        "..",
        "....",
        "eyJ.eyJ.eyJ",
        "e30.e30.e30",
        "bm90IGpzb24.bm90IGpzb24.c2ln",
        "%%%.%%%.%%%",
    ] {
        assert_refused(t).await;
    }
    // Header or payload that is JSON but not an object.
    let sig_ok = sign(&claims());
    let sig = sig_ok.rsplit('.').next().unwrap();
    assert_refused(&format!("{}.{}.{sig}", b64(&json!([])), b64(&claims()))).await;
    assert_refused(&format!(
        "{}.{}.{sig}",
        b64(&json!({"alg":"HS256","typ":"at+jwt"})),
        b64(&json!("alice"))
    ))
    .await;
}

#[tokio::test]
async fn token_with_extra_segment_is_refused() {
    let t = sign(&claims());
    assert_refused(&format!("{t}.extra")).await;
    assert_refused(&format!("{t}.")).await;
    assert_refused(&format!("{t}.{}", t.rsplit('.').next().unwrap())).await;
}

#[tokio::test]
async fn empty_bearer_is_401_without_error_param() {
    let cli = client();
    for v in ["Bearer ", "Bearer", "Bearer    "] {
        let resp = cli.get("/me").header("authorization", v).send().await;
        resp.assert_status(StatusCode::UNAUTHORIZED);
        assert_eq!(www_authenticate(&resp), ["Bearer"], "for {v:?}");
        resp.assert_content_type("application/problem+json");
    }
}

#[tokio::test]
async fn bearer_token_followed_by_junk_is_refused() {
    let t = sign(&claims());
    // Another word after the token is part of the credential, not ignored.
    assert_refused(&format!("{t} junk")).await;
}

// ---------------------------------------------------------------------------
// Revocation
// ---------------------------------------------------------------------------

/// `revoked-*` jtis are revoked; `down` simulates an unreachable store.
struct Denylist;

impl RevocationList for Denylist {
    fn is_revoked<'a>(&'a self, jti: &'a str) -> Answer<'a, Result<bool, CredentialError>> {
        Answer::later(async move {
            match jti {
                "down" => Err(CredentialError::Unavailable),
                j => Ok(j.starts_with("revoked-")),
            }
        })
    }
}

fn revoking_client() -> (Security, TestClient<impl Endpoint>) {
    let sec = Security::builder()
        .jwt(JwtConfig::hs256(SECRET).unwrap().issuer(ISS).audience(AUD))
        .revocations(Denylist)
        .build()
        .unwrap();
    let cli = TestClient::new(app(&sec));
    (sec, cli)
}

#[tokio::test]
async fn revoked_jti_is_refused_and_others_pass() {
    let (sec, cli) = revoking_client();
    let ok = token(&sec, "alice")
        .scopes(["notes:read"])
        .jti("live-1")
        .bearer();
    cli.get("/me")
        .header("authorization", ok)
        .send()
        .await
        .assert_status_is_ok();
    assert_refused_by(&cli, &sign(&with_claim("jti", json!("revoked-1")))).await;
    let t = token(&sec, "alice")
        .scopes(["notes:read"])
        .jti("revoked-2")
        .sign();
    assert_refused_by(&cli, &t).await;
}

#[tokio::test]
async fn token_without_jti_is_refused_when_revocation_is_configured() {
    let (_, cli) = revoking_client();
    assert_refused_by(&cli, &sign(&without_claim("jti"))).await;
    // Without a revocation list the same token is fine (control).
    assert_accepted(&sign(&without_claim("jti"))).await;
}

#[tokio::test]
async fn revocation_store_down_is_503_fail_closed() {
    let (sec, cli) = revoking_client();
    let t = token(&sec, "alice")
        .scopes(["notes:read"])
        .jti("down")
        .sign();
    let resp = cli
        .get("/me")
        .header("authorization", format!("Bearer {t}"))
        .send()
        .await;
    resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    resp.assert_content_type("application/problem+json");
    let body = resp.0.into_body().into_string().await.unwrap();
    assert!(
        !body.contains(t.split('.').nth(2).unwrap()),
        "body leaks the token: {body}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], 503);
}

// ---------------------------------------------------------------------------
// Cross-cutting: no oracle between reasons
// ---------------------------------------------------------------------------

#[tokio::test]
async fn all_invalid_token_refusals_share_one_response_shape() {
    let cli = client();
    let tokens = [
        sign(&with_claim("exp", json!(now() - 3600))),
        sign(&with_claim("iss", json!("evil"))),
        sign_with(Algorithm::HS256, Some("JWT"), SECRET, &claims()),
        "garbage".to_owned(),
    ];
    let mut shapes = HashSet::new();
    for t in &tokens {
        let resp = cli
            .get("/me")
            .header("authorization", format!("Bearer {t}"))
            .send()
            .await;
        let mut headers: Vec<(String, String)> = resp
            .0
            .headers()
            .iter()
            .filter(|(k, _)| *k != header::CONTENT_LENGTH && *k != header::DATE)
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        let status = resp.0.status();
        let body = resp.0.into_body().into_string().await.unwrap();
        shapes.insert((status, headers, body));
    }
    assert_eq!(shapes.len(), 1, "refusals differ: {shapes:#?}");
}

// ---------------------------------------------------------------------------
// Header `crit` (RFC 7515 §4.1.11) and `iat` (RFC 9068 §2.2)
// ---------------------------------------------------------------------------

fn sign_header(h: &Header, claims: &Value) -> String {
    encode(h, claims, &EncodingKey::from_secret(SECRET)).unwrap()
}

#[tokio::test]
async fn any_crit_header_is_refused() {
    // No extension is understood, so every `crit` must be refused — even one
    // naming a registered header, and an empty list (which §4.1.11 forbids).
    for crit in [
        vec!["http://example.com/must-understand".to_owned()],
        vec!["exp".to_owned()],
        vec!["b64".to_owned()],
        vec![],
    ] {
        let mut h = header(Algorithm::HS256, Some("at+jwt"));
        h.crit = Some(crit.clone());
        assert_refused(&sign_header(&h, &claims())).await;
    }
    // A `crit` that is not a list of strings does not parse as a header.
    let real = sign(&claims());
    let (_, rest) = real.split_once('.').unwrap();
    let h = json!({"alg": "HS256", "typ": "at+jwt", "crit": "exp"});
    assert_refused(&format!("{}.{rest}", b64(&h))).await;
}

#[tokio::test]
async fn missing_or_future_or_malformed_iat_is_refused() {
    assert_refused(&sign(&without_claim("iat"))).await;
    assert_refused(&sign(&with_claim("iat", json!(now() + 600)))).await;
    assert_refused(&sign(&with_claim("iat", json!("yesterday")))).await;
    assert_refused(&sign(&with_claim("iat", Value::Null))).await;
    // Within the leeway (30 s) a clock ahead of ours is tolerated.
    assert_accepted(&sign(&with_claim("iat", json!(now() + 20)))).await;
    // An old iat is fine: exp decides.
    assert_accepted(&sign(&with_claim("iat", json!(now() - 86_400)))).await;
}

#[tokio::test]
async fn iat_can_be_made_optional_but_is_still_checked_when_present() {
    let sec = Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer(ISS)
                .audience(AUD)
                .require_iat(false),
        )
        .build()
        .unwrap();
    let cli = TestClient::new(app(&sec));
    let resp = cli
        .get("/me")
        .header(
            "authorization",
            format!("Bearer {}", sign(&without_claim("iat"))),
        )
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_refused_by(&cli, &sign(&with_claim("iat", json!(now() + 600)))).await;
    assert_refused_by(&cli, &sign(&with_claim("iat", json!("x")))).await;
}

// ---------------------------------------------------------------------------
// Claim mapping: nested claims, and the same refusals on the mapped path
// ---------------------------------------------------------------------------

fn mapped_client() -> TestClient<impl Endpoint> {
    let sec = Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer(ISS)
                .audience(AUD)
                .claims(ClaimMapping::keycloak("attack-api")),
        )
        .build()
        .unwrap();
    TestClient::new(app(&sec))
}

#[tokio::test]
async fn mapped_claims_are_read_from_nested_claims() {
    let mut c = claims();
    c["realm_access"] = json!({"roles": ["admin"]});
    c["resource_access"] = json!({"attack-api": {"roles": "editor viewer"}});
    let resp = mapped_client()
        .get("/me")
        .header("authorization", format!("Bearer {}", sign(&c)))
        .send()
        .await;
    resp.assert_status_is_ok();
    // The top-level `roles` claim is not read by this mapping.
    resp.assert_text("alice|notes:read|admin editor viewer|kept")
        .await;
}

#[tokio::test]
async fn the_mapped_path_refuses_what_the_standard_one_does() {
    let cli = mapped_client();
    let mut bad_roles = claims();
    bad_roles["realm_access"] = json!({"roles": [1]});
    let mut crit = header(Algorithm::HS256, Some("at+jwt"));
    crit.crit = Some(vec!["x".into()]);
    for t in [
        sign(&bad_roles),
        sign(&with_claim(
            "realm_access",
            json!({"roles": {"admin": true}}),
        )),
        sign(&with_claim("jti", json!(7))),
        sign(&with_claim("sub", json!(""))),
        sign(&without_claim("iat")),
        sign(&with_claim("exp", json!(now() - 120))),
        sign(&with_claim("aud", json!("other"))),
        sign_with(Algorithm::HS256, Some("JWT"), SECRET, &claims()),
        sign_with(Algorithm::HS512, Some("at+jwt"), SECRET, &claims()),
        sign_header(&crit, &claims()),
    ] {
        assert_refused_by(&cli, &t).await;
    }
}
