//! Interoperability with an independent JWT implementation: Python's PyJWT
//! (installed by `scripts/test.sh`; these tests FAIL, never skip, when
//! `python3`, PyJWT or `cryptography` is missing).
//!
//! * PyJWT verifies the access tokens we issue (RS256, ES256, EdDSA, HS256),
//!   with the PEM public keys and with the keys of our JWKS document, and
//!   tokens from our token endpoint.
//! * We verify RS256, ES256 and EdDSA tokens PyJWT signs, with PEM keys and
//!   through our JWKS client reading a JWKS that PyJWT produced; tokens PyJWT
//!   signs in breach of our rules (typ, exp, aud, iss, key, alg none) are
//!   refused.

use std::{
    io::{Read, Write},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use poem::{
    endpoint::make,
    handler,
    http::{header, StatusCode},
    listener::{Acceptor, Listener, TcpListener},
    test::{TestClient, TestResponse},
    Endpoint, Request, Response, Server,
};
use poem_secure::{
    openapi::service,
    route::{get, Route},
    secure,
    tokens::{NoCatalogue, TokenService},
    AccessToken, Algorithm, Authenticator, JwksClient, JwtConfig, MemorySessionStore,
    MemoryUserStore, PasswordHasher, Principal, Security, SessionStore, UserRecord,
};
use serde_json::{json, Value};

const ISS: &str = "https://issuer.interop.test";
const AUD: &str = "interop-api";
const HS_SECRET: &str = "interop-hs256-secret-of-32-bytes";

fn key_path(name: &str) -> String {
    format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn key(name: &str) -> Vec<u8> {
    std::fs::read(key_path(name)).unwrap()
}

/// The three asymmetric algorithms: (ours, PyJWT's name, private, public).
const ALGS: [(Algorithm, &str, &str, &str); 3] = [
    (
        Algorithm::RS256,
        "RS256",
        "rsa_private.pem",
        "rsa_public.pem",
    ),
    (Algorithm::ES256, "ES256", "ec_private.pem", "ec_public.pem"),
    (
        Algorithm::EdDSA,
        "EdDSA",
        "ed25519_private.pem",
        "ed25519_public.pem",
    ),
];

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `python3 -c script args...` with `stdin`, killed after 60 s.
fn python(script: &str, args: &[&str], stdin: &str) -> Out {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed (scripts/test.sh installs PyJWT)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("python3 did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

async fn py(script: &'static str, args: Vec<String>, stdin: String) -> Out {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        python(script, &a, &stdin)
    })
    .await
    .unwrap()
}

/// Verifies argv[1] with PyJWT: algorithm argv[2], key file argv[3] (or the
/// HMAC secret itself when argv[2] is HS256), audience argv[4], issuer
/// argv[5]. Prints `{"header": ..., "claims": ...}`; exits 3 with the
/// exception's class name when PyJWT refuses the token.
const VERIFY: &str = r#"
import json, sys, jwt
token, alg, key, aud, iss = sys.argv[1:6]
if alg != "HS256":
    key = open(key, "rb").read()
try:
    claims = jwt.decode(token, key, algorithms=[alg], audience=aud, issuer=iss,
                        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
except jwt.PyJWTError as e:
    print(type(e).__name__)
    sys.exit(3)
print(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}))
"#;

/// Verifies argv[1] with the key of a JWKS document (stdin) chosen by the
/// token's `kid`, with that key's own algorithm.
const VERIFY_JWKS: &str = r#"
import json, sys, jwt
token, aud, iss = sys.argv[1:4]
jwks = jwt.PyJWKSet.from_dict(json.load(sys.stdin))
kid = jwt.get_unverified_header(token)["kid"]
k = jwks[kid]
try:
    claims = jwt.decode(token, k.key, algorithms=[k.algorithm_name], audience=aud, issuer=iss)
except jwt.PyJWTError as e:
    print(type(e).__name__)
    sys.exit(3)
print(json.dumps({"alg": k.algorithm_name, "claims": claims}))
"#;

/// Signs the claims on stdin with PyJWT: algorithm argv[1], private key file
/// argv[2] (ignored for `none`), headers argv[3] (JSON). Prints the token.
const SIGN: &str = r#"
import json, sys, jwt
alg, keyfile, headers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
claims = json.load(sys.stdin)
key = None if alg == "none" else open(keyfile, "rb").read()
print(jwt.encode(claims, key, algorithm=alg, headers=headers))
"#;

/// Prints the public JWK of PEM file argv[2] for algorithm argv[1], with
/// `kid` argv[3] and `alg` set.
const TO_JWK: &str = r#"
import json, sys, jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
alg, path, kid = sys.argv[1:4]
pub = load_pem_public_key(open(path, "rb").read())
impl = jwt.get_algorithm_by_name(alg)
jwk = impl.to_jwk(pub, as_dict=True)
jwk["kid"] = kid
jwk["alg"] = alg
jwk["use"] = "sig"
print(json.dumps(jwk))
"#;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "py-user", "aud": AUD, "iat": now(), "exp": now() + 300,
        "jti": "py-jti-1", "scope": "notes:read", "roles": ["user"],
    })
}

fn issuer(jwt: JwtConfig) -> Security {
    Security::builder()
        .jwt(jwt.issuer(ISS).audience(AUD))
        .build()
        .unwrap()
}

fn issue(sec: &Security) -> String {
    sec.issue_access_token(&AccessToken {
        subject: "alice",
        scopes: &["notes:read", "me"],
        roles: &["user"],
        permissions: &["notes:delete-own"],
        ..Default::default()
    })
    .unwrap()
    .token
}

async fn pyjwt_verify(token: &str, alg: &str, key: &str, aud: &str) -> Out {
    py(
        VERIFY,
        vec![token.into(), alg.into(), key.into(), aud.into(), ISS.into()],
        String::new(),
    )
    .await
}

async fn pyjwt_sign(alg: &str, private: &str, headers: Value, claims: &Value) -> String {
    let out = py(
        SIGN,
        vec![alg.into(), key_path(private), headers.to_string()],
        claims.to_string(),
    )
    .await;
    assert_eq!(out.code, 0, "PyJWT could not sign: {}", out.stderr);
    out.stdout.trim().to_owned()
}

#[secure(scopes = "notes:read")]
#[handler]
async fn notes(who: Principal) -> String {
    format!(
        "{}|{}|{}",
        who.subject(),
        who.scopes().join(" "),
        who.token_id().unwrap_or("-")
    )
}

fn app(sec: &Security) -> impl Endpoint {
    Route::new().at("/notes", get(notes)).with(sec.clone())
}

async fn call(sec: &Security, token: &str) -> TestResponse {
    TestClient::new(app(sec))
        .get("/notes")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
}

// ---------------------------------------------------------------------------

#[test]
fn python_pyjwt_and_cryptography_are_installed() {
    let out = python("import jwt, cryptography; print(jwt.__version__)", &[], "");
    assert_eq!(out.code, 0, "PyJWT or cryptography missing: {}", out.stderr);
    assert!(out.stdout.trim().starts_with("2."), "PyJWT {}", out.stdout);
}

#[tokio::test]
async fn pyjwt_verifies_our_asymmetric_access_tokens() {
    for (alg, name, private, public) in ALGS {
        let sec = issuer(
            JwtConfig::key_pair_pem(alg, &key(private), &key(public))
                .unwrap()
                .key_id("our-key"),
        );
        let token = issue(&sec);
        let out = pyjwt_verify(&token, name, &key_path(public), AUD).await;
        assert_eq!(out.code, 0, "{name}: {} {}", out.stdout, out.stderr);
        let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(v["header"]["alg"], name);
        assert_eq!(v["header"]["typ"], "at+jwt");
        assert_eq!(v["header"]["kid"], "our-key");
        let c = &v["claims"];
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["iss"], ISS);
        assert_eq!(c["aud"], AUD);
        assert_eq!(c["scope"], "notes:read me");
        assert_eq!(c["roles"], json!(["user"]));
        assert_eq!(c["permissions"], json!(["notes:delete-own"]));
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);

        // PyJWT really checks: another key, or another audience, is refused.
        let other_key = if alg == Algorithm::RS256 {
            "rsa2_public.pem"
        } else {
            "rsa_public.pem"
        };
        let out = pyjwt_verify(&token, name, &key_path(other_key), AUD).await;
        assert_eq!(
            out.code, 3,
            "{name} with the wrong key: {} {}",
            out.stdout, out.stderr
        );
        let out = pyjwt_verify(&token, name, &key_path(public), "another-api").await;
        assert_eq!(
            out.code, 3,
            "{name} with the wrong audience: {}",
            out.stdout
        );
        assert_eq!(out.stdout.trim(), "InvalidAudienceError");
    }
}

#[tokio::test]
async fn pyjwt_verifies_our_hs256_access_tokens() {
    let sec = issuer(JwtConfig::hs256(HS_SECRET).unwrap());
    let token = issue(&sec);
    let out = pyjwt_verify(&token, "HS256", HS_SECRET, AUD).await;
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["header"]["typ"], "at+jwt");
    assert_eq!(v["claims"]["sub"], "alice");
    let out = pyjwt_verify(&token, "HS256", "another-secret-of-32-bytes-long!", AUD).await;
    assert_eq!((out.code, out.stdout.trim()), (3, "InvalidSignatureError"));
}

#[tokio::test]
async fn pyjwt_verifies_our_tokens_with_keys_from_our_jwks_document() {
    let signers: Vec<Security> = ALGS
        .iter()
        .map(|(alg, name, private, public)| {
            issuer(
                JwtConfig::key_pair_pem(*alg, &key(private), &key(public))
                    .unwrap()
                    .key_id(*name),
            )
        })
        .collect();
    let keys: Vec<Value> = signers
        .iter()
        .flat_map(|s| s.jwks()["keys"].as_array().unwrap().clone())
        .collect();
    let jwks = json!({ "keys": keys }).to_string();
    for (s, (_, name, _, _)) in signers.iter().zip(ALGS) {
        let out = py(
            VERIFY_JWKS,
            vec![issue(s), AUD.into(), ISS.into()],
            jwks.clone(),
        )
        .await;
        assert_eq!(out.code, 0, "{name}: {} {}", out.stdout, out.stderr);
        let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(v["alg"], *name);
        assert_eq!(v["claims"]["sub"], "alice");
    }
}

#[tokio::test]
async fn pyjwt_verifies_tokens_from_our_token_endpoint() {
    let hasher = PasswordHasher::with_params(1024, 1, 1).unwrap();
    let users = MemoryUserStore::new([UserRecord {
        username: "alice".into(),
        password_hash: hasher.hash("alice-password-1").await.unwrap(),
        roles: vec!["user".into()],
        permissions: vec![],
        scopes: vec!["me".into(), "notes:read".into()],
        disabled: false,
    }]);
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
    let sec = Security::builder()
        .jwt(
            JwtConfig::key_pair_pem(
                Algorithm::ES256,
                &key("ec_private.pem"),
                &key("ec_public.pem"),
            )
            .unwrap()
            .key_id("ec-1")
            .issuer(ISS)
            .audience(AUD),
        )
        .sessions(store.clone())
        .build()
        .unwrap();
    let svc = TokenService::new(sec.clone(), Authenticator::new(users, hasher)).unwrap();
    let app = Route::new()
        .nest("/", service(svc.api::<NoCatalogue>(), "t", "1"))
        .with(sec);
    let resp = TestClient::new(app)
        .post("/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-password-1"),
        ])
        .send()
        .await;
    resp.assert_status_is_ok();
    let body: Value =
        serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
    let token = body["access_token"].as_str().unwrap();
    let out = pyjwt_verify(token, "ES256", &key_path("ec_public.pem"), AUD).await;
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["claims"]["sub"], "alice");
    assert_eq!(v["claims"]["scope"], "me notes:read");
    assert!(v["claims"]["sid"].is_string());
    assert_eq!(v["header"]["kid"], "ec-1");
}

#[tokio::test]
async fn we_accept_tokens_signed_by_pyjwt() {
    for (alg, name, private, public) in ALGS {
        let sec = issuer(JwtConfig::verify_pem(alg, &key(public)).unwrap());
        let token = pyjwt_sign(name, private, json!({"typ": "at+jwt"}), &claims()).await;
        let resp = call(&sec, &token).await;
        assert_eq!(resp.0.status(), StatusCode::OK, "{name}");
        resp.assert_text("py-user|notes:read|py-jti-1").await;
    }
}

#[tokio::test]
async fn we_refuse_pyjwt_tokens_that_break_our_rules() {
    for (alg, name, private, public) in ALGS {
        let sec = issuer(JwtConfig::verify_pem(alg, &key(public)).unwrap());
        let mut expired = claims();
        expired["exp"] = json!(now() - 120);
        let mut wrong_aud = claims();
        wrong_aud["aud"] = json!("another-api");
        let mut wrong_iss = claims();
        wrong_iss["iss"] = json!("https://evil.example");
        let other_private = if alg == Algorithm::RS256 {
            "rsa2_private.pem"
        } else {
            private
        };
        let other_alg = if alg == Algorithm::RS256 {
            name
        } else {
            "RS256"
        };
        let other_key = if alg == Algorithm::RS256 {
            other_private
        } else {
            "rsa_private.pem"
        };
        let cases = [
            (
                "typ JWT",
                pyjwt_sign(name, private, json!({"typ": "JWT"}), &claims()).await,
            ),
            (
                "expired",
                pyjwt_sign(name, private, json!({"typ": "at+jwt"}), &expired).await,
            ),
            (
                "wrong aud",
                pyjwt_sign(name, private, json!({"typ": "at+jwt"}), &wrong_aud).await,
            ),
            (
                "wrong iss",
                pyjwt_sign(name, private, json!({"typ": "at+jwt"}), &wrong_iss).await,
            ),
            (
                "other key",
                pyjwt_sign(other_alg, other_key, json!({"typ": "at+jwt"}), &claims()).await,
            ),
            (
                "alg none",
                pyjwt_sign("none", private, json!({"typ": "at+jwt"}), &claims()).await,
            ),
        ];
        for (what, token) in cases {
            let resp = call(&sec, &token).await;
            assert_eq!(resp.0.status(), StatusCode::UNAUTHORIZED, "{name}: {what}");
        }
    }
}

/// A minimal JWKS endpoint on 127.0.0.1 serving `doc`.
async fn serve_jwks(doc: String) -> (String, tokio::sync::oneshot::Sender<()>) {
    let ep = make(move |_req: Request| {
        let doc = doc.clone();
        async move {
            Response::builder()
                .content_type("application/json")
                .body(doc)
        }
    });
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
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
    (format!("http://{addr}/jwks.json"), tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_jwks_client_verifies_pyjwt_tokens_with_a_jwks_pyjwt_made() {
    let mut keys = Vec::new();
    for (_, name, _, public) in ALGS {
        let out = py(
            TO_JWK,
            vec![name.into(), key_path(public), format!("py-{name}")],
            String::new(),
        )
        .await;
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        keys.push(serde_json::from_str::<Value>(out.stdout.trim()).unwrap());
    }
    let (url, stop) = serve_jwks(json!({ "keys": keys }).to_string()).await;
    let sec = issuer(JwtConfig::key_source(JwksClient::new(url).unwrap()));
    for (_, name, private, _) in ALGS {
        let kid = format!("py-{name}");
        let token = pyjwt_sign(
            name,
            private,
            json!({"typ": "at+jwt", "kid": kid}),
            &claims(),
        )
        .await;
        let resp = call(&sec, &token).await;
        assert_eq!(resp.0.status(), StatusCode::OK, "{name}");
        // The same signature under another kid's key is refused.
        let wrong_kid = if name == "RS256" {
            "py-ES256"
        } else {
            "py-RS256"
        };
        let token = pyjwt_sign(
            name,
            private,
            json!({"typ": "at+jwt", "kid": wrong_kid}),
            &claims(),
        )
        .await;
        assert_eq!(
            call(&sec, &token).await.0.status(),
            StatusCode::UNAUTHORIZED,
            "{name} as {wrong_kid}"
        );
    }
    let _ = stop.send(());
}
