//! Asymmetric JWTs (RS256, ES256, EdDSA from the PEM files in `tests/keys/`)
//! and resource-server mode (a `JwksClient` fetching an identity provider's
//! JWKS from a real local HTTP server that counts its requests).
//!
//! Every key is bound to one algorithm: alg `none`, alg swaps and key
//! confusion (an HS256 token "signed" with a public key) are refused, as are
//! expired tokens and wrong `aud`/`iss`/`typ`, on static keys and on the JWKS
//! path alike. The JWKS client caches by `kid`, refetches on an unknown `kid`
//! at most once per interval, never follows `jku`/`x5u`/`jwk`, and fails
//! closed when it has no usable key.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use jsonwebtoken::{encode, jwk::Jwk, Algorithm, EncodingKey, Header};
use poem::{
    endpoint::make,
    handler,
    http::{header, StatusCode},
    listener::{Acceptor, Listener, TcpListener},
    test::{TestClient, TestResponse},
    Endpoint, Request, Response, Server,
};
use poem_secure::{
    route::{get, Route},
    secure, AccessToken, JwksClient, JwtConfig, KeySource, Principal, Security,
};
use serde_json::{json, Value};
use tokio::{sync::oneshot, task::JoinHandle};

// ---------------------------------------------------------------------------
// Keys, tokens
// ---------------------------------------------------------------------------

const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa_public.pem");
const RSA2_PRIVATE: &[u8] = include_bytes!("keys/rsa2_private.pem");
const RSA2_PUBLIC: &[u8] = include_bytes!("keys/rsa2_public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("keys/ec_private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("keys/ec_public.pem");
const ED_PRIVATE: &[u8] = include_bytes!("keys/ed25519_private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("keys/ed25519_public.pem");

const ISS: &str = "https://idp.example.test";
const AUD: &str = "notes-api";

/// The three asymmetric algorithms with their key pairs.
const PAIRS: [(Algorithm, &[u8], &[u8]); 3] = [
    (Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC),
    (Algorithm::ES256, EC_PRIVATE, EC_PUBLIC),
    (Algorithm::EdDSA, ED_PRIVATE, ED_PUBLIC),
];

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims() -> Value {
    json!({
        "iss": ISS,
        "sub": "alice",
        "aud": AUD,
        "iat": now(),
        "exp": now() + 300,
        "jti": "jti-1",
        "scope": "notes:read",
        "roles": ["user"],
    })
}

fn with(name: &str, v: Value) -> Value {
    let mut c = claims();
    c[name] = v;
    c
}

fn without(name: &str) -> Value {
    let mut c = claims();
    c.as_object_mut().unwrap().remove(name);
    c
}

fn encoding_key(alg: Algorithm, pem: &[u8]) -> EncodingKey {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => EncodingKey::from_rsa_pem(pem).unwrap(),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem).unwrap(),
        _ => EncodingKey::from_secret(pem),
    }
}

fn header(alg: Algorithm, kid: Option<&str>, typ: Option<&str>) -> Header {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    h.typ = typ.map(str::to_owned);
    h
}

/// Signs `claims` with `alg` and the private key (or HMAC secret) `pem`.
fn sign_h(h: &Header, pem: &[u8], claims: &Value) -> String {
    encode(h, claims, &encoding_key(h.alg, pem)).unwrap()
}

fn sign(alg: Algorithm, pem: &[u8], kid: Option<&str>, claims: &Value) -> String {
    sign_h(&header(alg, kid, Some("at+jwt")), pem, claims)
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// An unsigned `alg: none` token.
fn alg_none(kid: Option<&str>, claims: &Value) -> String {
    let mut h = json!({"alg": "none", "typ": "at+jwt"});
    if let Some(k) = kid {
        h["kid"] = json!(k);
    }
    format!("{}.{}.", b64(&h), b64(claims))
}

/// `token` with its header replaced (the signature kept).
fn with_header(token: &str, h: &Value) -> String {
    let mut parts = token.split('.');
    let _ = parts.next();
    format!(
        "{}.{}.{}",
        b64(h),
        parts.next().unwrap(),
        parts.next().unwrap()
    )
}

/// An HS256 token whose HMAC key is `secret` (e.g. the public key's PEM).
fn hs256_with(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    encode(
        &header(Algorithm::HS256, kid, Some("at+jwt")),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------
// App
// ---------------------------------------------------------------------------

#[secure(scopes = "notes:read")]
#[handler]
async fn notes(who: Principal) -> String {
    format!("{}|{}", who.subject(), who.scopes().join(" "))
}

fn app(sec: &Security) -> impl Endpoint {
    Route::new().at("/notes", get(notes)).with(sec.clone())
}

fn security(jwt: JwtConfig) -> Security {
    Security::builder()
        .jwt(jwt.issuer(ISS).audience(AUD))
        .build()
        .unwrap()
}

async fn call(sec: &Security, token: &str) -> TestResponse {
    TestClient::new(app(sec))
        .get("/notes")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
}

async fn assert_accepted(sec: &Security, token: &str) {
    let resp = call(sec, token).await;
    resp.assert_status_is_ok();
    resp.assert_text("alice|notes:read").await;
}

/// The refusal of a bad token: 401 with `invalid_token`, never a 200.
async fn assert_refused(sec: &Security, token: &str, what: &str) {
    let resp = call(sec, token).await;
    assert_eq!(resp.0.status(), StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(
        resp.0.headers().get(header::WWW_AUTHENTICATE).unwrap(),
        "Bearer error=\"invalid_token\"",
        "{what}"
    );
}

fn issue(sec: &Security) -> String {
    sec.issue_access_token(&AccessToken {
        subject: "alice",
        scopes: &["notes:read"],
        roles: &["user"],
        ..Default::default()
    })
    .unwrap()
    .token
}

fn header_of(token: &str) -> Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------
// Static asymmetric keys
// ---------------------------------------------------------------------------

#[tokio::test]
async fn each_key_pair_issues_tokens_that_it_accepts() {
    for (alg, private, public) in PAIRS {
        let sec = security(
            JwtConfig::key_pair_pem(alg, private, public)
                .unwrap()
                .key_id("k1"),
        );
        assert!(sec.can_issue_tokens());
        let t = issue(&sec);
        let h = header_of(&t);
        assert_eq!(h["alg"], json!(alg), "{alg:?}");
        assert_eq!(h["typ"], "at+jwt");
        assert_eq!(h["kid"], "k1");
        assert_accepted(&sec, &t).await;
    }
}

#[tokio::test]
async fn a_public_key_alone_verifies_tokens_signed_elsewhere() {
    for (alg, private, public) in PAIRS {
        let sec = security(JwtConfig::verify_pem(alg, public).unwrap());
        assert!(!sec.can_issue_tokens(), "{alg:?}");
        assert_accepted(&sec, &sign(alg, private, None, &claims())).await;
    }
}

#[tokio::test]
async fn hs256_tokens_made_with_the_public_key_are_refused() {
    for (alg, private, public) in PAIRS {
        for config in [
            JwtConfig::key_pair_pem(alg, private, public).unwrap(),
            JwtConfig::verify_pem(alg, public).unwrap(),
            JwtConfig::key_pair_pem(alg, private, public)
                .unwrap()
                .key_id("k1"),
        ] {
            let sec = security(config);
            let pem = std::str::from_utf8(public).unwrap();
            for secret in [pem, pem.trim_end(), pem.trim()] {
                for kid in [None, Some("k1")] {
                    for alg2 in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                        let t = sign_h(
                            &header(alg2, kid, Some("at+jwt")),
                            secret.as_bytes(),
                            &claims(),
                        );
                        assert_refused(&sec, &t, &format!("{alg:?} key, {alg2:?}")).await;
                    }
                }
            }
            // Control: the right signature passes with the same claims.
            assert_accepted(&sec, &sign(alg, private, Some("k1"), &claims())).await;
        }
    }
}

#[tokio::test]
async fn alg_none_is_refused_for_asymmetric_keys() {
    for (alg, private, public) in PAIRS {
        let sec = security(JwtConfig::key_pair_pem(alg, private, public).unwrap());
        assert_refused(&sec, &alg_none(None, &claims()), "none").await;
        // A real signature under a header claiming `none`.
        let real = sign(alg, private, None, &claims());
        for name in ["none", "None", "NONE"] {
            let forged = with_header(&real, &json!({"alg": name, "typ": "at+jwt"}));
            assert_refused(&sec, &forged, name).await;
        }
        // Stripped signature.
        let stripped = format!("{}.", real.rsplit_once('.').unwrap().0);
        assert_refused(&sec, &stripped, "stripped").await;
    }
}

#[tokio::test]
async fn another_algorithm_with_the_same_key_is_refused() {
    let rs = security(JwtConfig::verify_pem(Algorithm::RS256, RSA_PUBLIC).unwrap());
    // Genuine signatures of the same RSA key under other RSA algorithms.
    for alg in [
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        assert_refused(
            &rs,
            &sign(alg, RSA_PRIVATE, None, &claims()),
            &format!("{alg:?}"),
        )
        .await;
    }
    // An RS256 signature relabelled as another algorithm.
    let real = sign(Algorithm::RS256, RSA_PRIVATE, None, &claims());
    for name in ["PS256", "RS512", "ES256", "EdDSA", "HS256"] {
        let forged = with_header(&real, &json!({"alg": name, "typ": "at+jwt"}));
        assert_refused(&rs, &forged, name).await;
    }
    // The ES256 and EdDSA keys: tokens relabelled across families.
    let es = security(JwtConfig::verify_pem(Algorithm::ES256, EC_PUBLIC).unwrap());
    let real = sign(Algorithm::ES256, EC_PRIVATE, None, &claims());
    for name in ["ES384", "EdDSA", "RS256", "PS256"] {
        assert_refused(
            &es,
            &with_header(&real, &json!({"alg": name, "typ": "at+jwt"})),
            name,
        )
        .await;
    }
    let ed = security(JwtConfig::verify_pem(Algorithm::EdDSA, ED_PUBLIC).unwrap());
    let real = sign(Algorithm::EdDSA, ED_PRIVATE, None, &claims());
    for name in ["ES256", "RS256", "Ed25519"] {
        assert_refused(
            &ed,
            &with_header(&real, &json!({"alg": name, "typ": "at+jwt"})),
            name,
        )
        .await;
    }
    // Tokens by the other families' keys.
    assert_refused(
        &rs,
        &sign(Algorithm::ES256, EC_PRIVATE, None, &claims()),
        "ES256 on RSA",
    )
    .await;
    assert_refused(
        &es,
        &sign(Algorithm::EdDSA, ED_PRIVATE, None, &claims()),
        "EdDSA on EC",
    )
    .await;
    assert_refused(
        &ed,
        &sign(Algorithm::RS256, RSA_PRIVATE, None, &claims()),
        "RS256 on Ed",
    )
    .await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let sec = security(JwtConfig::key_pair_pem(Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC).unwrap());
    assert_refused(
        &sec,
        &sign(Algorithm::RS256, RSA2_PRIVATE, None, &claims()),
        "rsa2",
    )
    .await;
    // Tampered payload under the original signature.
    let real = sign(Algorithm::RS256, RSA_PRIVATE, None, &claims());
    let mut p: Vec<&str> = real.split('.').collect();
    let evil = b64(&with("scope", json!("notes:read admin")));
    p[1] = &evil;
    assert_refused(&sec, &p.join("."), "tampered").await;
}

#[tokio::test]
async fn claim_attacks_are_refused_for_every_asymmetric_algorithm() {
    for (alg, private, public) in PAIRS {
        let sec = security(JwtConfig::verify_pem(alg, public).unwrap());
        let cases: Vec<(&str, String)> = vec![
            (
                "expired",
                sign(alg, private, None, &with("exp", json!(now() - 120))),
            ),
            ("no exp", sign(alg, private, None, &without("exp"))),
            (
                "not yet valid",
                sign(alg, private, None, &with("nbf", json!(now() + 600))),
            ),
            (
                "wrong aud",
                sign(alg, private, None, &with("aud", json!("other-api"))),
            ),
            ("no aud", sign(alg, private, None, &without("aud"))),
            (
                "wrong iss",
                sign(
                    alg,
                    private,
                    None,
                    &with("iss", json!("https://evil.example")),
                ),
            ),
            ("no iss", sign(alg, private, None, &without("iss"))),
            ("no sub", sign(alg, private, None, &without("sub"))),
            (
                "typ JWT",
                sign_h(&header(alg, None, Some("JWT")), private, &claims()),
            ),
            (
                "no typ",
                sign_h(&header(alg, None, None), private, &claims()),
            ),
            (
                "typ id_token",
                sign_h(&header(alg, None, Some("id_token+jwt")), private, &claims()),
            ),
        ];
        for (what, t) in cases {
            assert_refused(&sec, &t, &format!("{alg:?}: {what}")).await;
        }
        assert_accepted(&sec, &sign(alg, private, None, &claims())).await;
    }
}

#[tokio::test]
async fn rotation_keys_are_chosen_by_kid_and_bound_to_their_algorithm() {
    let sec = security(
        JwtConfig::key_pair_pem(Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC)
            .unwrap()
            .key_id("new")
            .add_verification_pem("old", Algorithm::RS256, RSA2_PUBLIC)
            .add_verification_pem("ec", Algorithm::ES256, EC_PUBLIC),
    );
    // Issued tokens carry the signing key's kid.
    let issued = issue(&sec);
    assert_eq!(header_of(&issued)["kid"], "new");
    assert_accepted(&sec, &issued).await;
    assert_accepted(
        &sec,
        &sign(Algorithm::RS256, RSA2_PRIVATE, Some("old"), &claims()),
    )
    .await;
    assert_accepted(
        &sec,
        &sign(Algorithm::ES256, EC_PRIVATE, Some("ec"), &claims()),
    )
    .await;
    for (what, t) in [
        (
            "old kid, new key",
            sign(Algorithm::RS256, RSA_PRIVATE, Some("old"), &claims()),
        ),
        (
            "new kid, old key",
            sign(Algorithm::RS256, RSA2_PRIVATE, Some("new"), &claims()),
        ),
        (
            "ec kid, RSA signature",
            sign(Algorithm::RS256, RSA_PRIVATE, Some("ec"), &claims()),
        ),
        (
            "old kid, PS256",
            sign(Algorithm::PS256, RSA2_PRIVATE, Some("old"), &claims()),
        ),
        (
            "unknown kid",
            sign(Algorithm::RS256, RSA_PRIVATE, Some("other"), &claims()),
        ),
        (
            "no kid",
            sign(Algorithm::RS256, RSA_PRIVATE, None, &claims()),
        ),
        ("none with kid", alg_none(Some("new"), &claims())),
        (
            "HS256 with public PEM",
            hs256_with(RSA_PUBLIC, Some("new"), &claims()),
        ),
        (
            "HS256 with old PEM",
            hs256_with(RSA2_PUBLIC, Some("old"), &claims()),
        ),
        (
            "HS256 with EC PEM",
            hs256_with(EC_PUBLIC, Some("ec"), &claims()),
        ),
    ] {
        assert_refused(&sec, &t, what).await;
    }
}

// ---------------------------------------------------------------------------
// Startup errors
// ---------------------------------------------------------------------------

#[test]
fn an_hmac_secret_under_32_bytes_is_a_startup_error() {
    for len in [0, 1, 16, 31] {
        let err = JwtConfig::hs256(vec![b'k'; len]).unwrap_err();
        assert!(err.to_string().contains("32"), "{err}");
    }
    assert!(JwtConfig::hs256([b'k'; 32]).is_ok());
    assert!(JwtConfig::hs256("a".repeat(64)).is_ok());
}

#[test]
fn bad_key_material_is_a_startup_error() {
    // Garbage, and PEMs of the wrong family for the algorithm.
    assert!(JwtConfig::verify_pem(Algorithm::RS256, b"not a pem").is_err());
    assert!(JwtConfig::verify_pem(Algorithm::RS256, EC_PUBLIC).is_err());
    assert!(JwtConfig::verify_pem(Algorithm::ES256, RSA_PUBLIC).is_err());
    assert!(JwtConfig::verify_pem(Algorithm::EdDSA, EC_PUBLIC).is_err());
    assert!(JwtConfig::key_pair_pem(Algorithm::ES256, RSA_PRIVATE, RSA_PUBLIC).is_err());
    assert!(JwtConfig::key_pair_pem(Algorithm::RS256, b"nope", RSA_PUBLIC).is_err());
    // An HMAC algorithm never takes a PEM.
    assert!(JwtConfig::verify_pem(Algorithm::HS256, RSA_PUBLIC).is_err());
    assert!(JwtConfig::key_pair_pem(Algorithm::HS256, RSA_PRIVATE, RSA_PUBLIC).is_err());
    // A bad rotation key surfaces when Security is built.
    let cfg = JwtConfig::key_pair_pem(Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC)
        .unwrap()
        .key_id("k1")
        .add_verification_pem("k0", Algorithm::RS256, b"garbage");
    assert!(Security::builder()
        .jwt(cfg.issuer(ISS).audience(AUD))
        .build()
        .is_err());
    // Several keys need a kid each, or a token could pick any of them.
    let cfg = JwtConfig::verify_pem(Algorithm::RS256, RSA_PUBLIC)
        .unwrap()
        .add_verification_pem("k0", Algorithm::RS256, RSA2_PUBLIC);
    assert!(Security::builder()
        .jwt(cfg.issuer(ISS).audience(AUD))
        .build()
        .is_err());
    // Issuer and audience are required.
    let cfg = JwtConfig::verify_pem(Algorithm::RS256, RSA_PUBLIC).unwrap();
    assert!(Security::builder()
        .jwt(cfg.clone().issuer(ISS))
        .build()
        .is_err());
    assert!(Security::builder().jwt(cfg.audience(AUD)).build().is_err());
}

/// A private key whose public half is not the configured public key issues
/// tokens the service itself refuses, and publishes a JWKS that does not
/// match its verification key.
#[test]
fn a_mismatched_key_pair_is_a_startup_error() {
    let cfg = JwtConfig::key_pair_pem(Algorithm::RS256, RSA_PRIVATE, RSA2_PUBLIC);
    let built = cfg.and_then(|c| Security::builder().jwt(c.issuer(ISS).audience(AUD)).build());
    assert!(built.is_err());
}

// ---------------------------------------------------------------------------
// The app's own JWKS document
// ---------------------------------------------------------------------------

const PRIVATE_PARAMS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

#[test]
fn the_jwks_document_publishes_public_parameters_only() {
    #[allow(clippy::type_complexity)] // (alg, private, public, kty, public params)
    let expect: [(Algorithm, &[u8], &[u8], &str, &[&str]); 3] = [
        (
            Algorithm::RS256,
            RSA_PRIVATE,
            RSA_PUBLIC,
            "RSA",
            &["n", "e"],
        ),
        (
            Algorithm::ES256,
            EC_PRIVATE,
            EC_PUBLIC,
            "EC",
            &["crv", "x", "y"],
        ),
        (
            Algorithm::EdDSA,
            ED_PRIVATE,
            ED_PUBLIC,
            "OKP",
            &["crv", "x"],
        ),
    ];
    for (alg, private, public, kty, fields) in expect {
        let sec = security(
            JwtConfig::key_pair_pem(alg, private, public)
                .unwrap()
                .key_id("k1"),
        );
        let doc = sec.jwks();
        let keys = doc["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{doc:#}");
        let k = &keys[0];
        assert_eq!(k["kty"], kty, "{k:#}");
        assert_eq!(k["kid"], "k1");
        assert_eq!(k["alg"], json!(alg));
        for f in fields {
            assert!(k[*f].is_string(), "{f} missing: {k:#}");
        }
        for p in PRIVATE_PARAMS {
            assert!(k.get(p).is_none(), "private parameter {p} published: {k:#}");
        }
        // The published key is the public key: it parses as a JWK and
        // verifies the service's own tokens (checked end to end below).
        let _: Jwk = serde_json::from_value(k.clone()).unwrap();
    }
    if let Some(crv) =
        security(JwtConfig::key_pair_pem(Algorithm::ES256, EC_PRIVATE, EC_PUBLIC).unwrap()).jwks()
            ["keys"][0]["crv"]
            .as_str()
    {
        assert_eq!(crv, "P-256");
    }
}

#[test]
fn an_hmac_secret_is_never_published() {
    let sec = security(JwtConfig::hs256([7u8; 32]).unwrap());
    assert_eq!(sec.jwks(), json!({"keys": []}));
    // A verification-only config has no JWK to publish from a private key,
    // and must not invent one.
    let doc = security(JwtConfig::verify_pem(Algorithm::RS256, RSA_PUBLIC).unwrap()).jwks();
    for k in doc["keys"].as_array().unwrap() {
        for p in PRIVATE_PARAMS {
            assert!(k.get(p).is_none());
        }
    }
}

/// During a key rotation, tokens signed with the previous key are still in
/// flight: resource servers that read this service's JWKS need that key too.
#[test]
fn the_jwks_document_includes_the_keys_kept_for_rotation() {
    let sec = security(
        JwtConfig::key_pair_pem(Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC)
            .unwrap()
            .key_id("new")
            .add_verification_pem("old", Algorithm::RS256, RSA2_PUBLIC),
    );
    let doc = sec.jwks();
    let mut kids: Vec<&str> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    kids.sort_unstable();
    assert_eq!(kids, ["new", "old"], "{doc:#}");
}

// ---------------------------------------------------------------------------
// A local identity provider: a real HTTP server that counts requests
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(body: impl Into<String>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

struct Idp {
    addr: SocketAddr,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Idp {
    async fn start() -> Idp {
        let replies: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, h) = (replies.clone(), hits.clone());
        let ep = make(move |req: Request| {
            let (r, h) = (r.clone(), h.clone());
            async move {
                let path = req.uri().path().to_owned();
                h.lock().unwrap().push(path.clone());
                let reply = r.lock().unwrap().get(&path).cloned();
                let Some(reply) = reply else {
                    return Response::builder().status(StatusCode::NOT_FOUND).finish();
                };
                tokio::time::sleep(reply.delay).await;
                let mut b = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
                for (k, v) in reply.headers {
                    b = b.header(k, v);
                }
                b.body(reply.body)
            }
        });
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    ep,
                    async {
                        let _ = rx.await;
                    },
                    Some(Duration::from_millis(200)),
                )
                .await;
        });
        Idp {
            addr,
            replies,
            hits,
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn reply(&self, path: &str, r: Reply) {
        self.replies.lock().unwrap().insert(path.to_owned(), r);
    }

    fn serve_jwks(&self, doc: &Value) {
        self.reply("/jwks.json", Reply::json(doc.to_string()));
    }

    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    fn all_hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }

    /// Stops the server and waits until its port is closed.
    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A loopback URL where nothing listens.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/jwks.json")
}

/// The identity provider's signing service: its tokens and its JWKS.
fn idp_signer(alg: Algorithm, private: &[u8], public: &[u8], kid: &str) -> Security {
    security(
        JwtConfig::key_pair_pem(alg, private, public)
            .unwrap()
            .key_id(kid),
    )
}

/// A resource server verifying tokens with keys from `client`.
fn resource_server(client: JwksClient) -> Security {
    security(JwtConfig::key_source(client))
}

fn jwks_of(signers: &[&Security]) -> Value {
    let keys: Vec<Value> = signers
        .iter()
        .flat_map(|s| s.jwks()["keys"].as_array().unwrap().clone())
        .collect();
    json!({ "keys": keys })
}

fn rsa_k1() -> Security {
    idp_signer(Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC, "k1")
}

// ---------------------------------------------------------------------------
// Resource-server mode
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_published_jwks_verifies_the_issuers_tokens_for_each_algorithm() {
    let idp = Idp::start().await;
    let signers = [
        idp_signer(Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC, "rsa"),
        idp_signer(Algorithm::ES256, EC_PRIVATE, EC_PUBLIC, "ec"),
        idp_signer(Algorithm::EdDSA, ED_PRIVATE, ED_PUBLIC, "ed"),
    ];
    idp.serve_jwks(&jwks_of(&signers.iter().collect::<Vec<_>>()));
    let rs = resource_server(JwksClient::new(idp.url("/jwks.json")).unwrap());
    for s in &signers {
        assert_accepted(&rs, &issue(s)).await;
    }
    // The resource server cannot issue tokens.
    assert!(!rs.can_issue_tokens());
    assert_eq!(idp.hits("/jwks.json"), 1, "{:?}", idp.all_hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_cached_and_never_fetched_per_request() {
    let idp = Idp::start().await;
    let signer = rsa_k1();
    idp.serve_jwks(&signer.jwks());
    let rs = resource_server(JwksClient::new(idp.url("/jwks.json")).unwrap());
    assert_eq!(
        idp.hits("/jwks.json"),
        0,
        "nothing is fetched before it is needed"
    );
    for _ in 0..10 {
        assert_accepted(&rs, &issue(&signer)).await;
    }
    assert_eq!(idp.hits("/jwks.json"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_refetch_at_most_once_per_default_interval() {
    let idp = Idp::start().await;
    let signer = rsa_k1();
    idp.serve_jwks(&signer.jwks());
    let rs = resource_server(JwksClient::new(idp.url("/jwks.json")).unwrap());
    assert_accepted(&rs, &issue(&signer)).await;
    // An attacker sprays random kids: no fetch storm (default: 60 s).
    for i in 0..10 {
        let t = sign(
            Algorithm::RS256,
            RSA_PRIVATE,
            Some(&format!("spray-{i}")),
            &claims(),
        );
        assert_refused(&rs, &t, "unknown kid").await;
    }
    assert_eq!(idp.hits("/jwks.json"), 1, "{:?}", idp.all_hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_refetches_once_the_interval_has_passed() {
    let idp = Idp::start().await;
    let k1 = rsa_k1();
    let k2 = idp_signer(Algorithm::RS256, RSA2_PRIVATE, RSA2_PUBLIC, "k2");
    // Signed up front, so that nothing slow runs inside the interval.
    let (t1, t2) = (issue(&k1), issue(&k2));
    let t3 = sign(Algorithm::RS256, RSA_PRIVATE, Some("k3"), &claims());
    idp.serve_jwks(&k1.jwks());
    let client = JwksClient::new(idp.url("/jwks.json"))
        .unwrap()
        .min_refetch_interval(Duration::from_secs(2));
    let rs = resource_server(client);
    assert_accepted(&rs, &t1).await;
    // The provider rotates in k2. Within the interval, k2 is not fetched.
    idp.serve_jwks(&jwks_of(&[&k1, &k2]));
    assert_refused(&rs, &t2, "k2 within the interval").await;
    assert_eq!(idp.hits("/jwks.json"), 1);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    // After it, the first unknown kid triggers one fetch, and k2 is known.
    assert_accepted(&rs, &t2).await;
    assert_accepted(&rs, &t2).await;
    assert_accepted(&rs, &t1).await;
    assert_eq!(idp.hits("/jwks.json"), 2);
    assert_refused(&rs, &t3, "k3").await;
    assert_eq!(idp.hits("/jwks.json"), 2);
}

/// A JWKS client refreshing every 2 s, serving k1, then k2 only; returns
/// once the set is due, with a k1 and a k2 token signed in advance.
async fn withdrawn_k1() -> (Idp, String, String, Security) {
    let idp = Idp::start().await;
    let k1 = rsa_k1();
    let k2 = idp_signer(Algorithm::RS256, RSA2_PRIVATE, RSA2_PUBLIC, "k2");
    let (t1, t2) = (issue(&k1), issue(&k2));
    idp.serve_jwks(&k1.jwks());
    let client = JwksClient::new(idp.url("/jwks.json"))
        .unwrap()
        .refresh_every(Duration::from_secs(2))
        .min_refetch_interval(Duration::from_secs(2));
    let rs = resource_server(client);
    assert_accepted(&rs, &t1).await;
    // The provider withdraws k1. Until the set is due, the cache serves it.
    idp.serve_jwks(&k2.jwks());
    assert_accepted(&rs, &t1).await;
    assert_eq!(idp.hits("/jwks.json"), 1);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    (idp, t1, t2, rs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_set_is_refreshed_on_its_schedule() {
    let (idp, t1, t2, rs) = withdrawn_k1().await;
    // Due: a request with a cached, known kid refreshes the set...
    let _ = call(&rs, &t1).await;
    assert_eq!(idp.hits("/jwks.json"), 2);
    // ...after which the withdrawn key is refused and the new one accepted,
    // without further fetches.
    assert_refused(&rs, &t1, "withdrawn key").await;
    assert_accepted(&rs, &t2).await;
    assert_eq!(idp.hits("/jwks.json"), 2);
}

/// The request that triggers the refresh must be judged by the new set: a
/// key the provider withdrew (e.g. after a compromise) must not pass once
/// more just because it was cached before the refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_key_is_refused_by_the_request_that_refreshes_the_set() {
    let (idp, t1, _t2, rs) = withdrawn_k1().await;
    assert_refused(&rs, &t1, "withdrawn key, refreshing request").await;
    assert_eq!(idp.hits("/jwks.json"), 2);
}

async fn assert_unavailable(sec: &Security, token: &str, what: &str) {
    let resp = call(sec, token).await;
    assert_eq!(resp.0.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    resp.assert_content_type("application/problem+json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_jwks_server_down_from_the_start_every_token_is_refused() {
    let signer = rsa_k1();
    let rs = resource_server(
        JwksClient::new(dead_url())
            .unwrap()
            .min_refetch_interval(Duration::ZERO),
    );
    assert_unavailable(&rs, &issue(&signer), "valid token, no key set").await;
    assert_unavailable(&rs, &issue(&signer), "again").await;
    for (what, t) in [
        ("none", alg_none(Some("k1"), &claims())),
        (
            "hs256 with PEM",
            hs256_with(RSA_PUBLIC, Some("k1"), &claims()),
        ),
    ] {
        let status = call(&rs, &t).await.0.status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {status}"
        );
    }
    // No kid at all: nothing to look up, refused.
    let status = call(&rs, &sign(Algorithm::RS256, RSA_PRIVATE, None, &claims()))
        .await
        .0
        .status();
    assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_jwks_response_fails_closed() {
    let idp = Idp::start().await;
    let signer = rsa_k1();
    let rs_for = |path: &str| {
        resource_server(
            JwksClient::new(idp.url(path))
                .unwrap()
                .min_refetch_interval(Duration::ZERO),
        )
    };
    idp.reply("/garbage.json", Reply::json("this is not json"));
    idp.reply(
        "/error.json",
        Reply {
            status: 500,
            ..Reply::json(signer.jwks().to_string())
        },
    );
    idp.reply(
        "/huge.json",
        Reply::json(
            json!({"keys": signer.jwks()["keys"], "padding": "x".repeat(2 << 20)}).to_string(),
        ),
    );
    for path in [
        "/garbage.json",
        "/error.json",
        "/missing.json",
        "/huge.json",
    ] {
        assert_unavailable(&rs_for(path), &issue(&signer), path).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let idp = Idp::start().await;
    let signer = rsa_k1();
    idp.serve_jwks(&signer.jwks());
    idp.reply(
        "/moved.json",
        Reply {
            status: 302,
            headers: vec![("location", idp.url("/jwks.json"))],
            body: String::new(),
            delay: Duration::ZERO,
        },
    );
    let rs = resource_server(JwksClient::new(idp.url("/moved.json")).unwrap());
    assert_unavailable(&rs, &issue(&signer), "redirected").await;
    assert_eq!(idp.hits("/moved.json"), 1);
    assert_eq!(
        idp.hits("/jwks.json"),
        0,
        "the redirect must not be followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_keys_keep_working_while_the_provider_is_down() {
    let mut idp = Idp::start().await;
    let signer = rsa_k1();
    let (t1, t2) = (issue(&signer), issue(&signer));
    idp.serve_jwks(&signer.jwks());
    let client = JwksClient::new(idp.url("/jwks.json"))
        .unwrap()
        .refresh_every(Duration::from_millis(500))
        .min_refetch_interval(Duration::from_millis(500));
    let rs = resource_server(client);
    assert_accepted(&rs, &t1).await;
    idp.stop().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The refresh fails; the cached key is kept.
    assert_accepted(&rs, &t2).await;
    // Attacks are still refused, and an unknown kid is a 401.
    assert_refused(&rs, &alg_none(Some("k1"), &claims()), "none").await;
    assert_refused(
        &rs,
        &sign(Algorithm::RS256, RSA_PRIVATE, Some("k9"), &claims()),
        "k9",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jku_x5u_and_embedded_jwk_headers_are_never_followed() {
    let idp = Idp::start().await;
    let signer = rsa_k1();
    idp.serve_jwks(&signer.jwks());
    // The attacker's own key, published at a URL of the attacker's choice.
    let attacker = idp_signer(Algorithm::RS256, RSA2_PRIVATE, RSA2_PUBLIC, "k1");
    idp.reply("/evil.json", Reply::json(attacker.jwks().to_string()));
    let rs = resource_server(
        JwksClient::new(idp.url("/jwks.json"))
            .unwrap()
            .min_refetch_interval(Duration::ZERO),
    );
    let evil_jwk: Jwk = serde_json::from_value(attacker.jwks()["keys"][0].clone()).unwrap();
    for kid in ["k1", "attacker"] {
        let mut h = header(Algorithm::RS256, Some(kid), Some("at+jwt"));
        h.jku = Some(idp.url("/evil.json"));
        h.x5u = Some(idp.url("/evil.json"));
        h.jwk = Some(evil_jwk.clone());
        let t = sign_h(&h, RSA2_PRIVATE, &claims());
        assert_refused(&rs, &t, kid).await;
    }
    assert_eq!(idp.hits("/evil.json"), 0, "{:?}", idp.all_hits());
    // Control: the genuine key still works.
    assert_accepted(&rs, &issue(&signer)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_on_the_jwks_path_are_refused() {
    let idp = Idp::start().await;
    let signers = [
        idp_signer(Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC, "rsa"),
        idp_signer(Algorithm::ES256, EC_PRIVATE, EC_PUBLIC, "ec"),
        idp_signer(Algorithm::EdDSA, ED_PRIVATE, ED_PUBLIC, "ed"),
    ];
    let doc = jwks_of(&signers.iter().collect::<Vec<_>>());
    idp.serve_jwks(&doc);
    let rs = resource_server(JwksClient::new(idp.url("/jwks.json")).unwrap());
    for ((alg, private, public), kid) in PAIRS.into_iter().zip(["rsa", "ec", "ed"]) {
        let k = Some(kid);
        let cases: Vec<(&str, String)> = vec![
            ("none", alg_none(k, &claims())),
            (
                "HS256 with the public PEM",
                hs256_with(public, k, &claims()),
            ),
            (
                "expired",
                sign(alg, private, k, &with("exp", json!(now() - 120))),
            ),
            (
                "not yet valid",
                sign(alg, private, k, &with("nbf", json!(now() + 600))),
            ),
            (
                "wrong aud",
                sign(alg, private, k, &with("aud", json!("other-api"))),
            ),
            (
                "wrong iss",
                sign(alg, private, k, &with("iss", json!("https://evil.example"))),
            ),
            (
                "typ JWT",
                sign_h(&header(alg, k, Some("JWT")), private, &claims()),
            ),
            ("no typ", sign_h(&header(alg, k, None), private, &claims())),
            (
                "other key",
                sign(Algorithm::RS256, RSA2_PRIVATE, k, &claims()),
            ),
        ];
        for (what, t) in cases {
            assert_refused(&rs, &t, &format!("{kid}: {what}")).await;
        }
        // A genuine signature relabelled with another algorithm.
        let real = sign(alg, private, k, &claims());
        for name in ["PS256", "RS384", "ES384", "EdDSA", "RS256", "HS256"] {
            if name == format!("{alg:?}") {
                continue;
            }
            let forged = with_header(&real, &json!({"alg": name, "typ": "at+jwt", "kid": kid}));
            assert_refused(&rs, &forged, &format!("{kid} relabelled {name}")).await;
        }
        assert_accepted(&rs, &real).await;
    }
    // Keys of one family under another kid's algorithm.
    assert_refused(
        &rs,
        &sign(Algorithm::ES256, EC_PRIVATE, Some("rsa"), &claims()),
        "ec as rsa",
    )
    .await;
    assert_refused(
        &rs,
        &sign(Algorithm::PS256, RSA_PRIVATE, Some("rsa"), &claims()),
        "PS256 as rsa",
    )
    .await;
    // No kid: nothing to choose a key by.
    assert_refused(
        &rs,
        &sign(Algorithm::RS256, RSA_PRIVATE, None, &claims()),
        "no kid",
    )
    .await;
    assert_eq!(idp.hits("/jwks.json"), 1, "{:?}", idp.all_hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_jwk_is_bound_to_its_algorithm_and_symmetric_keys_are_ignored() {
    let idp = Idp::start().await;
    let signer = rsa_k1();
    let rsa_jwk = signer.jwks()["keys"][0].clone();
    // "noalg": the RSA key without `alg` (defaults to RS256). "ps": the same
    // key declared PS256. "enc": declared for encryption. "hmac": a symmetric
    // key, which must never verify anything. "bad-crv": a P-256 key that
    // claims ES384.
    let mut noalg = rsa_jwk.clone();
    noalg.as_object_mut().unwrap().remove("alg");
    noalg["kid"] = json!("noalg");
    let mut ps = rsa_jwk.clone();
    ps["alg"] = json!("PS256");
    ps["kid"] = json!("ps");
    let mut enc = rsa_jwk.clone();
    enc["use"] = json!("enc");
    enc["kid"] = json!("enc");
    let hmac_secret = b"a-symmetric-secret-of-32-bytes!!";
    let hmac = json!({"kty": "oct", "kid": "hmac", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(hmac_secret)});
    let mut bad_crv =
        idp_signer(Algorithm::ES256, EC_PRIVATE, EC_PUBLIC, "bad-crv").jwks()["keys"][0].clone();
    bad_crv["alg"] = json!("ES384");
    idp.serve_jwks(&json!({"keys": [noalg, ps, enc, hmac, bad_crv]}));
    let rs = resource_server(JwksClient::new(idp.url("/jwks.json")).unwrap());

    assert_accepted(
        &rs,
        &sign(Algorithm::RS256, RSA_PRIVATE, Some("noalg"), &claims()),
    )
    .await;
    assert_refused(
        &rs,
        &sign(Algorithm::PS256, RSA_PRIVATE, Some("noalg"), &claims()),
        "noalg PS256",
    )
    .await;
    assert_accepted(
        &rs,
        &sign(Algorithm::PS256, RSA_PRIVATE, Some("ps"), &claims()),
    )
    .await;
    assert_refused(
        &rs,
        &sign(Algorithm::RS256, RSA_PRIVATE, Some("ps"), &claims()),
        "ps RS256",
    )
    .await;
    assert_refused(
        &rs,
        &sign(Algorithm::RS256, RSA_PRIVATE, Some("enc"), &claims()),
        "enc key",
    )
    .await;
    assert_refused(
        &rs,
        &hs256_with(hmac_secret, Some("hmac"), &claims()),
        "oct key",
    )
    .await;
    assert_refused(
        &rs,
        &sign(Algorithm::ES256, EC_PRIVATE, Some("bad-crv"), &claims()),
        "bad crv",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_without_usable_keys_refuses_every_token() {
    let idp = Idp::start().await;
    let signer = rsa_k1();
    let hmac = json!({"kty": "oct", "kid": "k1", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(b"0123456789abcdef0123456789abcdef")});
    let mut no_kid = signer.jwks()["keys"][0].clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    idp.serve_jwks(&json!({"keys": [hmac, no_kid]}));
    let rs = resource_server(JwksClient::new(idp.url("/jwks.json")).unwrap());
    assert_refused(&rs, &issue(&signer), "kid k1 is only an oct key").await;
    assert_refused(
        &rs,
        &hs256_with(b"0123456789abcdef0123456789abcdef", Some("k1"), &claims()),
        "HS256 with the oct key",
    )
    .await;
    assert_refused(
        &rs,
        &sign(Algorithm::RS256, RSA_PRIVATE, None, &claims()),
        "no kid",
    )
    .await;
}

/// At a cold start under load, requests arrive while the first fetch is in
/// flight: they must wait for that fetch (one fetch in all) and then verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_fetch() {
    let idp = Idp::start().await;
    let signer = rsa_k1();
    idp.reply(
        "/jwks.json",
        Reply {
            delay: Duration::from_millis(300),
            ..Reply::json(signer.jwks().to_string())
        },
    );
    let client = JwksClient::new(idp.url("/jwks.json")).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.key("k1").await.map(|k| k.is_some()) })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(results.iter().all(|r| *r == Ok(true)), "{results:?}");
    assert_eq!(idp.hits("/jwks.json"), 1);
}

#[test]
fn a_jwks_url_must_be_https_or_loopback() {
    for ok in [
        "https://idp.example.com/jwks.json",
        "HTTPS://IDP.EXAMPLE.COM/jwks.json",
        "http://127.0.0.1:8080/jwks.json",
        "http://localhost/jwks.json",
        "http://localhost:9000/x",
        "http://[::1]:9000/jwks.json",
    ] {
        assert!(JwksClient::new(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://idp.example.com/jwks.json",
        "ftp://127.0.0.1/jwks.json",
        "file:///etc/jwks.json",
        "http://127.0.0.1.nip.io/jwks.json",
        "http://localhost.example.com/jwks.json",
        "http://localhostevil.com/",
        "127.0.0.1/jwks.json",
        "",
    ] {
        assert!(JwksClient::new(bad).is_err(), "{bad}");
    }
}

/// `http://127.0.0.1:80@idp.example.com/` names the host `idp.example.com`
/// (with user info `127.0.0.1:80`): plain http to a remote host.
#[test]
fn a_loopback_lookalike_in_the_user_info_is_not_loopback() {
    for bad in [
        "http://127.0.0.1:80@idp.example.com/jwks.json",
        "http://localhost:1@idp.example.com/jwks.json",
        "http://127.0.0.1:x@idp.example.com/jwks.json",
    ] {
        assert!(JwksClient::new(bad).is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discovery_document_names_the_jwks() {
    let idp = Idp::start().await;
    let signer = rsa_k1();
    idp.serve_jwks(&signer.jwks());
    let issuer = idp.url("");
    idp.reply(
        "/.well-known/openid-configuration",
        Reply::json(json!({"issuer": issuer, "jwks_uri": idp.url("/jwks.json")}).to_string()),
    );
    // The document must name exactly the issuer it was requested for
    // (OpenID Connect Discovery 1.0 §4.3): a trailing slash is another one.
    let err = JwksClient::from_discovery(&format!("{issuer}/"))
        .await
        .expect_err("an issuer that is not the document's");
    assert!(err.to_string().contains("names the issuer"), "{err}");
    let client = JwksClient::from_discovery(&issuer).await.unwrap();
    assert_eq!(idp.hits("/.well-known/openid-configuration"), 2);
    // The discovered issuer is the verifier's: another one given by hand is
    // a startup error, and none at all takes the discovered one.
    let err = Security::builder()
        .jwt(
            JwtConfig::key_source(client.clone())
                .issuer(ISS)
                .audience(AUD),
        )
        .build()
        .expect_err("a second, different issuer");
    assert!(err.to_string().contains("must be identical"), "{err}");
    let rs = Security::builder()
        .jwt(JwtConfig::key_source(client).audience(AUD))
        .build()
        .unwrap();
    let token = sign(
        Algorithm::RS256,
        RSA_PRIVATE,
        Some("k1"),
        &with("iss", json!(issuer)),
    );
    assert_accepted(&rs, &token).await;
    assert_eq!(idp.hits("/jwks.json"), 1);
    // A token of the issuer configured elsewhere in this file is refused.
    assert_refused(&rs, &issue(&signer), "another issuer").await;

    // A discovery document without jwks_uri, or pointing at plain http
    // elsewhere, is a startup error; so is an unreachable or non-JSON one.
    let idp2 = Idp::start().await;
    idp2.reply(
        "/a/.well-known/openid-configuration",
        Reply::json(json!({"issuer": "x"}).to_string()),
    );
    idp2.reply(
        "/b/.well-known/openid-configuration",
        Reply::json(json!({"jwks_uri": "http://idp.example.com/jwks.json"}).to_string()),
    );
    idp2.reply("/c/.well-known/openid-configuration", Reply::json("<html>"));
    for path in ["/a", "/b", "/c", "/nothing-here"] {
        assert!(
            JwksClient::from_discovery(&idp2.url(path)).await.is_err(),
            "{path}"
        );
    }
    let dead = dead_url();
    assert!(
        JwksClient::from_discovery(dead.trim_end_matches("/jwks.json"))
            .await
            .is_err()
    );
    assert!(JwksClient::from_discovery("http://idp.example.com")
        .await
        .is_err());
}

/// The signers' JWKS with every key's `alg` removed (as some providers
/// publish them).
fn jwks_without_alg(signers: &[&Security]) -> Value {
    let mut doc = jwks_of(signers);
    for k in doc["keys"].as_array_mut().unwrap() {
        k.as_object_mut().unwrap().remove("alg");
    }
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_without_alg_are_bound_to_the_first_accepted_algorithm() {
    let idp = Idp::start().await;
    let rsa = rsa_k1();
    let ec = idp_signer(Algorithm::ES256, EC_PRIVATE, EC_PUBLIC, "ec");
    idp.serve_jwks(&jwks_without_alg(&[&rsa, &ec]));
    let rs256 = sign(Algorithm::RS256, RSA_PRIVATE, Some("k1"), &claims());
    let ps256 = sign(Algorithm::PS256, RSA_PRIVATE, Some("k1"), &claims());
    let ps512 = sign(Algorithm::PS512, RSA_PRIVATE, Some("k1"), &claims());
    let es256 = sign(Algorithm::ES256, EC_PRIVATE, Some("ec"), &claims());

    // Default: an RSA key without alg is RS256, a P-256 key ES256.
    let default = resource_server(JwksClient::new(idp.url("/jwks.json")).unwrap());
    assert_accepted(&default, &rs256).await;
    assert_accepted(&default, &es256).await;
    assert_refused(&default, &ps256, "PS256 by default").await;

    // A PS256 provider: the same key verifies PS256 and nothing else.
    let ps = resource_server(
        JwksClient::new(idp.url("/jwks.json"))
            .unwrap()
            .algorithms([Algorithm::PS256, Algorithm::ES256])
            .unwrap(),
    );
    assert_accepted(&ps, &ps256).await;
    assert_accepted(&ps, &es256).await;
    assert_refused(&ps, &rs256, "RS256 under [PS256]").await;
    assert_refused(&ps, &ps512, "PS512 under [PS256]").await;

    // An algorithm no key type fits leaves those keys unusable.
    let es384 = resource_server(
        JwksClient::new(idp.url("/jwks.json"))
            .unwrap()
            .algorithms([Algorithm::ES384])
            .unwrap(),
    );
    assert_refused(&es384, &es256, "P-256 key under [ES384]").await;
    assert_refused(&es384, &rs256, "RSA key under [ES384]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_alg_is_not_accepted_is_ignored() {
    let idp = Idp::start().await;
    let rsa = rsa_k1();
    idp.serve_jwks(&rsa.jwks());
    let rs = resource_server(
        JwksClient::new(idp.url("/jwks.json"))
            .unwrap()
            .algorithms([Algorithm::PS256])
            .unwrap(),
    );
    // The JWK says RS256, the client accepts only PS256: neither passes.
    assert_refused(&rs, &issue(&rsa), "RS256 key").await;
    assert_refused(
        &rs,
        &sign(Algorithm::PS256, RSA_PRIVATE, Some("k1"), &claims()),
        "PS256 over an RS256 key",
    )
    .await;
    // Symmetric algorithms are a configuration error.
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let err = JwksClient::new(idp.url("/jwks.json"))
            .unwrap()
            .algorithms([Algorithm::RS256, alg])
            .expect_err("HMAC accepted for a JWKS");
        assert!(err.to_string().contains(&format!("{alg:?}")), "{err}");
    }
    assert!(JwksClient::new(idp.url("/jwks.json"))
        .unwrap()
        .algorithms([])
        .is_err());
}
