//! Resource-server mode against a real OpenID provider: node-oidc-provider
//! (`tests/oidc/provider.mjs`, OpenID Certified) started on loopback by
//! `tests/support/oidc_provider.rs`. Client-credentials access tokens in the
//! RFC 9068 format, fetched from its token endpoint, are verified with keys
//! found through its discovery document, on `#[secure]` routes:
//!
//! * discovery configures issuer, keys and algorithms in one call, with the
//!   exact issuer match; errors name the URL and the cause;
//! * RS256 and ES256 tokens, key rotation, an expired token, a wrong
//!   audience, a tampered signature or payload, `alg: none`, an HS256 token
//!   made with the provider's public key;
//! * roles and permissions from Keycloak- and Auth0-shaped nested claims;
//!   header `typ: JWT` only where accepted.
//!
//! Needs `npm ci --prefix tests/oidc` (scripts/test.sh runs it); without it
//! these tests FAIL, never skip.

#[path = "support/oidc_provider.rs"]
mod oidc_provider;

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use oidc_provider::{
    OidcProvider, TokenRequest, ADMIN, API, API_ES, API_OPAQUE, API_SHORT, API_TYP_JWT,
    INTROSPECTOR, READER,
};
use poem::{
    handler,
    http::{header, StatusCode},
    test::TestClient,
    Endpoint,
};
use poem_secure::{
    route::{get, Route},
    secure, AccessToken, ClaimMapping, DiscoveredKeys, HttpsTrust, Introspection, JwksClient,
    JwtConfig, Principal, ProviderMetadata, Security,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// App
// ---------------------------------------------------------------------------

#[secure(scopes = "notes:read")]
#[handler]
async fn notes(who: Principal) -> String {
    format!("{}|{}", who.subject(), who.scopes().join(" "))
}

#[secure(roles = "admin")]
#[handler]
async fn admin_only(who: Principal) -> String {
    who.roles().join(" ")
}

#[secure(roles = "notes-admin")]
#[handler]
async fn client_admin() -> &'static str {
    "ok"
}

#[secure(roles = "editor")]
#[handler]
async fn editor() -> &'static str {
    "ok"
}

#[secure(permissions = "notes:delete")]
#[handler]
async fn delete() -> &'static str {
    "ok"
}

fn app(sec: &Security) -> impl Endpoint {
    Route::new()
        .at("/notes", get(notes))
        .at("/admin", get(admin_only))
        .at("/client-admin", get(client_admin))
        .at("/editor", get(editor))
        .at("/delete", get(delete))
        .with(sec.clone())
}

/// A verifier for `audience` configured by discovery, adjusted by `f`.
async fn verifier(
    idp: &OidcProvider,
    audience: &str,
    f: impl FnOnce(JwtConfig) -> JwtConfig,
) -> Security {
    let jwt = JwtConfig::discover(idp.issuer())
        .await
        .expect("discovery")
        .audience(audience);
    Security::builder().jwt(f(jwt)).build().expect("security")
}

async fn status(sec: &Security, path: &str, token: &str) -> StatusCode {
    TestClient::new(app(sec))
        .get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .0
        .status()
}

async fn assert_status(sec: &Security, path: &str, token: &str, want: StatusCode, what: &str) {
    assert_eq!(status(sec, path, token).await, want, "{what}: {path}");
}

fn read() -> TokenRequest<'static> {
    TokenRequest::scope("notes:read")
}

fn part(token: &str, i: usize) -> Value {
    let seg = token.split('.').nth(i).expect("a JWT segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).expect("base64url")).expect("JSON")
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

// ---------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------

#[tokio::test]
async fn discovery_configures_issuer_keys_and_algorithms_in_one_call() {
    let idp = OidcProvider::shared();
    eprintln!("the OpenID provider started in {:?}", idp.started_in());

    let meta = ProviderMetadata::discover(idp.issuer()).await.unwrap();
    assert_eq!(meta.issuer(), idp.issuer());
    assert_eq!(meta.jwks_uri(), idp.url("/jwks"));
    assert_eq!(meta.algorithms(), [Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(
        meta.introspection_endpoint(),
        Some(idp.url("/token/introspection").as_str())
    );
    // RFC 8414 metadata at its own well-known location.
    let oauth = ProviderMetadata::oauth_authorization_server(idp.issuer())
        .await
        .unwrap();
    assert_eq!(oauth.jwks_uri(), meta.jwks_uri());

    // Issuer, keys and algorithms from discovery; only the audience by hand.
    let sec = verifier(idp, API, |j| j).await;
    let token = idp.token(ADMIN, &read());
    assert_eq!(part(&token, 0)["typ"], "at+jwt");
    let resp = TestClient::new(app(&sec))
        .get("/notes")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await;
    resp.assert_status_is_ok();
    // RFC 9068 §2.2: a client-credentials token's `sub` is the client id.
    resp.assert_text("cc-admin|notes:read").await;

    // Scopes are enforced: a token without `notes:read` is forbidden.
    let write = idp.token(ADMIN, &TokenRequest::scope("notes:write"));
    assert_status(&sec, "/notes", &write, StatusCode::FORBIDDEN, "scope").await;
    // The default claims read roles from `roles` only: the provider's
    // nested roles do not count.
    assert_status(&sec, "/admin", &token, StatusCode::FORBIDDEN, "roles").await;

    // The issuer the discovery checked is the verifier's: a different one
    // given by hand is a startup error.
    let err = Security::builder()
        .jwt(
            JwtConfig::discover(idp.issuer())
                .await
                .unwrap()
                .issuer("https://other.example")
                .audience(API),
        )
        .build()
        .expect_err("two different issuers");
    assert!(err.to_string().contains("must be identical"), "{err}");
}

#[tokio::test]
async fn a_document_naming_another_issuer_is_refused_at_startup() {
    let idp = OidcProvider::shared();
    // The provider's real document, served under another path: it names
    // the provider's issuer, not the one it was fetched for.
    let claimed = idp.url("/mismatch");
    let url = format!("{claimed}/.well-known/openid-configuration");
    for err in [
        JwtConfig::discover(&claimed).await.err(),
        ProviderMetadata::openid_configuration(&claimed).await.err(),
        JwksClient::from_discovery(&claimed).await.err(),
    ] {
        let err = err.expect("a mismatched issuer was accepted").to_string();
        assert!(err.contains(&url), "names the URL: {err}");
        assert!(
            err.contains(&format!("names the issuer {:?}", idp.issuer())),
            "{err}"
        );
        assert!(err.contains("§4.3"), "{err}");
    }
    // A trailing slash is another issuer too.
    let err = JwtConfig::discover(&format!("{}/", idp.issuer()))
        .await
        .expect_err("trailing slash");
    assert!(err.to_string().contains("trailing slash"), "{err}");
}

#[tokio::test]
async fn discovery_errors_name_the_url_and_the_cause() {
    let idp = OidcProvider::shared();
    // No document at all: 404 at both well-known locations.
    let err = JwtConfig::discover(&idp.url("/nothing"))
        .await
        .expect_err("no document")
        .to_string();
    assert!(
        err.contains(&idp.url("/nothing/.well-known/openid-configuration"))
            && err.contains("404")
            && err.contains("/.well-known/oauth-authorization-server/nothing"),
        "{err}"
    );
    // Nobody listening.
    let dead = format!("http://127.0.0.1:{}", oidc_provider::free_port());
    let err = JwtConfig::discover(&dead)
        .await
        .expect_err("dead")
        .to_string();
    assert!(
        err.contains(&format!("{dead}/.well-known/openid-configuration"))
            && err.contains("connection refused"),
        "{err}"
    );
    // Plain http to a remote host is refused before any request.
    let err = JwtConfig::discover("http://idp.example.com")
        .await
        .expect_err("http")
        .to_string();
    assert!(err.contains("must use https"), "{err}");
}

// ---------------------------------------------------------------------------
// Tokens: algorithms, audience, expiry, attacks
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rs256_and_es256_tokens_pass_for_their_own_audience_only() {
    let idp = OidcProvider::shared();
    let rs = idp.token(ADMIN, &read().resource(API));
    let es = idp.token(ADMIN, &read().resource(API_ES));
    assert_eq!(part(&rs, 0)["alg"], "RS256");
    assert_eq!(part(&es, 0)["alg"], "ES256");

    let api = verifier(idp, API, |j| j).await;
    let api_es = verifier(idp, API_ES, |j| j).await;
    assert_status(&api, "/notes", &rs, StatusCode::OK, "RS256").await;
    assert_status(&api_es, "/notes", &es, StatusCode::OK, "ES256").await;
    // Wrong audience, both ways.
    assert_status(&api, "/notes", &es, StatusCode::UNAUTHORIZED, "aud").await;
    assert_status(&api_es, "/notes", &rs, StatusCode::UNAUTHORIZED, "aud").await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let idp = OidcProvider::shared();
    let token = idp.token(ADMIN, &read().resource(API_SHORT));
    let claims = part(&token, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1
    );
    let sec = verifier(idp, API_SHORT, |j| j.leeway_secs(0)).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_status(&sec, "/notes", &token, StatusCode::UNAUTHORIZED, "expired").await;
}

#[tokio::test]
async fn tampered_forged_and_unsigned_tokens_are_refused() {
    let idp = OidcProvider::shared();
    let sec = verifier(idp, API, |j| j).await;
    for resource in [API, API_ES] {
        let sec_for = verifier(idp, resource, |j| j).await;
        let sec = if resource == API { &sec } else { &sec_for };
        let token = idp.token(ADMIN, &read().resource(resource));
        assert_status(sec, "/notes", &token, StatusCode::OK, "control").await;
        let (head, rest) = token.split_once('.').unwrap();
        let (payload, sig) = rest.split_once('.').unwrap();

        // A flipped signature byte.
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        raw[10] ^= 1;
        let t = format!("{head}.{payload}.{}", URL_SAFE_NO_PAD.encode(&raw));
        assert_status(sec, "/notes", &t, StatusCode::UNAUTHORIZED, "signature").await;

        // A payload granting more, under the original signature.
        let mut claims = part(&token, 1);
        claims["scope"] = json!("notes:read admin");
        claims["roles"] = json!(["admin"]);
        let t = format!("{head}.{}.{sig}", b64(&claims));
        assert_status(sec, "/notes", &t, StatusCode::UNAUTHORIZED, "payload").await;

        // alg none, with and without the signature, in several spellings.
        let mut h = part(&token, 0);
        for none in ["none", "None", "NONE"] {
            h["alg"] = json!(none);
            for s in ["", sig] {
                let t = format!("{}.{payload}.{s}", b64(&h));
                assert_status(sec, "/notes", &t, StatusCode::UNAUTHORIZED, none).await;
            }
        }

        // HS256/384/512 "signed" with the provider's public key (as PEM, as
        // anyone can derive it from the JWKS), under the key's kid.
        let header0 = part(&token, 0);
        let kid = header0["kid"].as_str().unwrap();
        let pem = idp.public_pem(kid);
        let claims = part(&token, 1);
        for secret in [pem.as_str(), pem.trim_end()] {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let mut h = Header::new(alg);
                h.kid = Some(kid.to_owned());
                h.typ = Some("at+jwt".into());
                let t = encode(&h, &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap();
                assert_status(sec, "/notes", &t, StatusCode::UNAUTHORIZED, "HS with PEM").await;
            }
        }
    }
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_withdrawn_keys_stop_verifying() {
    // Its own provider: rotation changes the keys for everyone.
    let idp = OidcProvider::start();
    let meta = ProviderMetadata::discover(idp.issuer()).await.unwrap();
    // Refetch at once on an unknown kid, refresh on every request: the test
    // sees each change of the JWKS without waiting.
    let jwks = meta
        .jwks_client()
        .unwrap()
        .min_refetch_interval(Duration::ZERO)
        .refresh_every(Duration::ZERO);
    let sec = Security::builder()
        .jwt(JwtConfig::key_source(jwks).audience(API))
        .build()
        .unwrap();
    let old = idp.token(ADMIN, &read());
    assert_eq!(part(&old, 0)["kid"], "rs-1");
    assert_status(&sec, "/notes", &old, StatusCode::OK, "before rotation").await;

    let (rs, _) = idp.rotate();
    let new = idp.token(ADMIN, &read());
    assert_eq!(part(&new, 0)["kid"], rs.as_str());
    assert_status(&sec, "/notes", &new, StatusCode::OK, "new key").await;
    // The old key is still published: its tokens keep working.
    assert_status(&sec, "/notes", &old, StatusCode::OK, "old key kept").await;

    idp.retire();
    assert_status(
        &sec,
        "/notes",
        &old,
        StatusCode::UNAUTHORIZED,
        "old key withdrawn",
    )
    .await;
    assert_status(&sec, "/notes", &new, StatusCode::OK, "new key after retire").await;
}

// ---------------------------------------------------------------------------
// Claims and typ
// ---------------------------------------------------------------------------

#[tokio::test]
async fn keycloak_shaped_realm_and_client_roles_satisfy_roles() {
    let idp = OidcProvider::shared();
    let sec = verifier(idp, API, |j| j.claims(ClaimMapping::keycloak("cc-admin"))).await;
    let admin = idp.token(ADMIN, &read());
    let reader = idp.token(READER, &read());
    let resp = TestClient::new(app(&sec))
        .get("/admin")
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .send()
        .await;
    resp.assert_status_is_ok();
    // Realm roles, then the roles of client cc-admin; not those of `account`.
    resp.assert_text("admin offline_access notes-admin").await;
    assert_status(&sec, "/client-admin", &admin, StatusCode::OK, "client role").await;
    assert_status(&sec, "/notes", &admin, StatusCode::OK, "scope").await;
    assert_status(&sec, "/admin", &reader, StatusCode::FORBIDDEN, "reader").await;
    assert_status(
        &sec,
        "/client-admin",
        &reader,
        StatusCode::FORBIDDEN,
        "reader",
    )
    .await;
}

#[tokio::test]
async fn auth0_shaped_namespaced_roles_and_permissions_are_read() {
    let idp = OidcProvider::shared();
    let sec = verifier(idp, API, |j| {
        j.claims(ClaimMapping::auth0("https://example.com/"))
    })
    .await;
    let admin = idp.token(ADMIN, &read());
    let reader = idp.token(READER, &read());
    for path in ["/admin", "/editor", "/delete", "/notes"] {
        assert_status(&sec, path, &admin, StatusCode::OK, "admin").await;
    }
    for path in ["/admin", "/editor", "/delete"] {
        assert_status(&sec, path, &reader, StatusCode::FORBIDDEN, "reader").await;
    }
    assert_status(&sec, "/notes", &reader, StatusCode::OK, "reader").await;
}

#[tokio::test]
async fn typ_jwt_tokens_pass_only_where_accepted() {
    let idp = OidcProvider::shared();
    let token = idp.token(ADMIN, &read().resource(API_TYP_JWT));
    assert_eq!(part(&token, 0)["typ"], "JWT");
    let strict = verifier(idp, API_TYP_JWT, |j| j).await;
    assert_status(
        &strict,
        "/notes",
        &token,
        StatusCode::UNAUTHORIZED,
        "default",
    )
    .await;
    let lenient = verifier(idp, API_TYP_JWT, |j| j.accept_typ(["at+jwt", "JWT"])).await;
    assert_status(&lenient, "/notes", &token, StatusCode::OK, "accepted").await;
    // The provider's at+jwt tokens still pass there.
    let at = verifier(idp, API, |j| j.accept_typ(["JWT", "application/at+jwt"])).await;
    let rfc = idp.token(ADMIN, &read());
    assert_status(&at, "/notes", &rfc, StatusCode::OK, "application/ prefix").await;
}

// ---------------------------------------------------------------------------
// Lazy start
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_lazy_verifier_serves_503_until_the_provider_comes_up() {
    let port = oidc_provider::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let keys = DiscoveredKeys::lazy(&issuer)
        .unwrap()
        .backoff(Duration::from_millis(50), Duration::from_millis(200));
    // Builds and serves with nothing listening at the issuer.
    let sec = Security::builder()
        .jwt(JwtConfig::key_source(keys.clone()).audience(API))
        .build()
        .unwrap();
    // Any token, even one of another provider: refused with 503, not 401
    // (the app cannot tell yet) and never accepted.
    let foreign = OidcProvider::shared().token(ADMIN, &read());
    for _ in 0..3 {
        assert_status(
            &sec,
            "/notes",
            &foreign,
            StatusCode::SERVICE_UNAVAILABLE,
            "down",
        )
        .await;
    }
    assert!(!keys.is_ready());

    let idp = OidcProvider::start_on(port);
    assert_eq!(idp.issuer(), issuer);
    // The background retries (backoff at most 200 ms) find it.
    let t0 = std::time::Instant::now();
    while !keys.is_ready() {
        assert!(t0.elapsed() < Duration::from_secs(10), "keys never loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = idp.token(ADMIN, &read());
    assert_status(&sec, "/notes", &token, StatusCode::OK, "after start").await;
    // The other provider's token names another issuer and another key.
    assert_status(
        &sec,
        "/notes",
        &foreign,
        StatusCode::UNAUTHORIZED,
        "foreign",
    )
    .await;
}

#[tokio::test]
async fn a_lazy_verifier_never_trusts_a_document_naming_another_issuer() {
    let idp = OidcProvider::shared();
    let keys = DiscoveredKeys::lazy(&idp.url("/mismatch"))
        .unwrap()
        .backoff(Duration::from_millis(20), Duration::from_millis(50));
    assert!(!keys.load().await, "a mismatched document loaded");
    let sec = Security::builder()
        .jwt(JwtConfig::key_source(keys.clone()).audience(API))
        .build()
        .unwrap();
    let token = idp.token(ADMIN, &read());
    for _ in 0..3 {
        assert_status(
            &sec,
            "/notes",
            &token,
            StatusCode::SERVICE_UNAVAILABLE,
            "mismatch",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(!keys.is_ready());
}

// ---------------------------------------------------------------------------
// https: the system's CAs by default, a private CA when configured
// ---------------------------------------------------------------------------

const OTHER_CA: &[u8] = include_bytes!("keys/tls/other_ca.pem");

#[tokio::test]
async fn a_provider_behind_a_private_ca_is_trusted_only_when_configured() {
    let idp = OidcProvider::start_https();
    assert!(idp.issuer().starts_with("https://127.0.0.1:"));

    // The system's CAs (the default), Mozilla's list, another CA: the
    // certificate is refused, and the error says so with the URL.
    for (what, result) in [
        ("default", JwtConfig::discover(idp.issuer()).await),
        (
            "mozilla",
            JwtConfig::discover_trusting(idp.issuer(), HttpsTrust::mozilla()).await,
        ),
        (
            "other CA",
            JwtConfig::discover_trusting(
                idp.issuer(),
                HttpsTrust::empty().add_ca_pem(OTHER_CA).unwrap(),
            )
            .await,
        ),
    ] {
        let err = result.expect_err(what).to_string();
        assert!(
            err.contains(&idp.url("/.well-known/openid-configuration")),
            "{what}: {err}"
        );
        assert!(err.to_lowercase().contains("certificate"), "{what}: {err}");
    }

    // Trusting the private CA (beside the system's, or alone), discovery
    // and the JWKS fetch both go through, and tokens verify.
    for trust in [
        HttpsTrust::system()
            .add_ca_pem(oidc_provider::TEST_CA)
            .unwrap(),
        HttpsTrust::empty()
            .add_ca_pem(oidc_provider::TEST_CA)
            .unwrap(),
    ] {
        let jwt = JwtConfig::discover_trusting(idp.issuer(), trust)
            .await
            .unwrap()
            .audience(API);
        let sec = Security::builder().jwt(jwt).build().unwrap();
        let token = idp.token(ADMIN, &read());
        assert_status(&sec, "/notes", &token, StatusCode::OK, "private CA").await;
    }

    // The JWKS client alone: the default trust cannot fetch the keys (503),
    // the private CA can.
    let meta = ProviderMetadata::discover_trusting(
        idp.issuer(),
        HttpsTrust::empty()
            .add_ca_pem(oidc_provider::TEST_CA)
            .unwrap(),
    )
    .await
    .unwrap();
    let token = idp.token(ADMIN, &read());
    let untrusting = JwksClient::new(meta.jwks_uri()).unwrap();
    let sec = Security::builder()
        .jwt(
            JwtConfig::key_source(untrusting)
                .issuer(idp.issuer())
                .audience(API),
        )
        .build()
        .unwrap();
    assert_status(
        &sec,
        "/notes",
        &token,
        StatusCode::SERVICE_UNAVAILABLE,
        "untrusted JWKS",
    )
    .await;
    let trusting = JwksClient::new(meta.jwks_uri()).unwrap().https_trust(
        HttpsTrust::system()
            .add_ca_pem(oidc_provider::TEST_CA)
            .unwrap(),
    );
    let sec = Security::builder()
        .jwt(
            JwtConfig::key_source(trusting)
                .issuer(idp.issuer())
                .audience(API),
        )
        .build()
        .unwrap();
    assert_status(&sec, "/notes", &token, StatusCode::OK, "trusted JWKS").await;

    // A lazy verifier with the private CA loads too.
    let keys = DiscoveredKeys::lazy(idp.issuer()).unwrap().https_trust(
        HttpsTrust::empty()
            .add_ca_pem(oidc_provider::TEST_CA)
            .unwrap(),
    );
    assert!(keys.load().await);
}

#[test]
fn ca_pem_that_is_not_a_certificate_is_a_configuration_error() {
    for (pem, want) in [
        (&b"not a certificate"[..], "no certificate"),
        (
            include_bytes!("keys/tls/server.key"),
            "other than certificates",
        ),
        (include_bytes!("keys/rsa_public.pem"), "no certificate"),
    ] {
        let err = HttpsTrust::system()
            .add_ca_pem(pem)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
    }
    let err = HttpsTrust::mozilla()
        .add_ca_pem(oidc_provider::TEST_CA)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Mozilla"), "{err}");
}

// ---------------------------------------------------------------------------
// Opaque tokens: RFC 7662 introspection
// ---------------------------------------------------------------------------

fn introspection(meta: &ProviderMetadata) -> Introspection {
    Introspection::from_metadata(meta, INTROSPECTOR.0, INTROSPECTOR.1).unwrap()
}

#[tokio::test]
async fn opaque_tokens_are_checked_by_introspection() {
    let idp = OidcProvider::shared();
    let meta = ProviderMetadata::discover(idp.issuer()).await.unwrap();
    // No cache: a revocation at the provider counts at once.
    let sec = Security::builder()
        .jwt(
            JwtConfig::from_metadata(&meta)
                .unwrap()
                .audience(API_OPAQUE)
                .claims(ClaimMapping::auth0("https://example.com"))
                .introspection(introspection(&meta).cache(0, Duration::ZERO)),
        )
        .build()
        .unwrap();
    let admin = idp.token(ADMIN, &read().resource(API_OPAQUE));
    let reader = idp.token(READER, &read().resource(API_OPAQUE));
    assert!(!admin.contains('.'), "not opaque: {admin}");
    for path in ["/notes", "/admin", "/delete"] {
        assert_status(&sec, path, &admin, StatusCode::OK, "admin").await;
    }
    assert_status(&sec, "/notes", &reader, StatusCode::OK, "reader").await;
    assert_status(&sec, "/admin", &reader, StatusCode::FORBIDDEN, "reader").await;
    let write = idp.token(
        ADMIN,
        &TokenRequest::scope("notes:write").resource(API_OPAQUE),
    );
    assert_status(&sec, "/notes", &write, StatusCode::FORBIDDEN, "scope").await;
    // Made up, or revoked at the provider: inactive.
    for made_up in ["not-a-token", "x", &reader[..reader.len() - 1]] {
        assert_status(&sec, "/notes", made_up, StatusCode::UNAUTHORIZED, made_up).await;
    }
    idp.revoke(ADMIN, &admin);
    assert_status(&sec, "/notes", &admin, StatusCode::UNAUTHORIZED, "revoked").await;

    // A verifier for https://api.test with introspection too: JWTs keep the
    // signature path, and an opaque token for another audience is refused.
    let api = Security::builder()
        .jwt(
            JwtConfig::from_metadata(&meta)
                .unwrap()
                .audience(API)
                .introspection(introspection(&meta)),
        )
        .build()
        .unwrap();
    let jwt = idp.token(ADMIN, &read());
    assert_status(&api, "/notes", &jwt, StatusCode::OK, "JWT").await;
    assert_status(&api, "/notes", &reader, StatusCode::UNAUTHORIZED, "aud").await;
    // Opaque only: a JWT is refused there, whoever signed it.
    let opaque_only = Security::builder()
        .jwt(
            JwtConfig::opaque(introspection(&meta))
                .issuer(idp.issuer())
                .audience(API),
        )
        .build()
        .unwrap();
    assert_status(
        &opaque_only,
        "/notes",
        &jwt,
        StatusCode::UNAUTHORIZED,
        "JWT",
    )
    .await;
}

#[tokio::test]
async fn introspection_fails_closed_and_caches_within_bounds() {
    // Its own provider: it is killed below.
    let idp = OidcProvider::start();
    let meta = ProviderMetadata::discover(idp.issuer()).await.unwrap();
    let verifier = |i: Introspection| {
        Security::builder()
            .jwt(
                JwtConfig::from_metadata(&meta)
                    .unwrap()
                    .audience(API_OPAQUE)
                    .introspection(i),
            )
            .build()
            .unwrap()
    };
    let t1 = idp.token(ADMIN, &read().resource(API_OPAQUE));
    let t2 = idp.token(ADMIN, &read().resource(API_OPAQUE));

    // Credentials the provider refuses: 503 (a misconfiguration is not the
    // client's fault), never a pass.
    let wrong = verifier(Introspection::from_metadata(&meta, INTROSPECTOR.0, "wrong").unwrap());
    assert_status(
        &wrong,
        "/notes",
        &t1,
        StatusCode::SERVICE_UNAVAILABLE,
        "bad secret",
    )
    .await;

    let long = verifier(introspection(&meta).cache(100, Duration::from_secs(60)));
    let short = verifier(introspection(&meta).cache(100, Duration::from_millis(200)));
    assert_status(&long, "/notes", &t1, StatusCode::OK, "long").await;
    assert_status(&short, "/notes", &t1, StatusCode::OK, "short").await;

    idp.kill();
    // The cached answer serves while it is fresh; anything else fails closed.
    assert_status(&long, "/notes", &t1, StatusCode::OK, "cached").await;
    assert_status(
        &long,
        "/notes",
        &t2,
        StatusCode::SERVICE_UNAVAILABLE,
        "uncached",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_status(
        &short,
        "/notes",
        &t1,
        StatusCode::SERVICE_UNAVAILABLE,
        "expired entry",
    )
    .await;
}

// ---------------------------------------------------------------------------
// Authorization code + PKCE (what Swagger UI does in a browser)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_user_token_from_the_login_pages_passes_with_the_users_subject() {
    let idp = OidcProvider::shared();
    let resp = idp.authorization_code("alice", "openid notes:read");
    let token = resp["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{resp}"));
    let claims = part(token, 1);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "spa");
    let sec = verifier(idp, API, |j| j).await;
    let resp = TestClient::new(app(&sec))
        .get("/notes")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_text("alice|notes:read").await;
}

// ---------------------------------------------------------------------------
// examples/resource_server.rs, as a user runs it
// ---------------------------------------------------------------------------

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_example_resource_server_enforces_the_providers_tokens() {
    let idp = OidcProvider::shared();
    let port = oidc_provider::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _app = Killed(
        std::process::Command::new(oidc_provider::example_binary())
            .env("ISSUER", idp.issuer())
            .env("AUDIENCE", API)
            .env("PROVIDER", "keycloak")
            .env("CLIENT_ID", "cc-admin")
            .env("ADDR", format!("127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the example starts"),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let get = |path: &str, token: Option<&str>| -> (u16, String) {
        let mut req = agent.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        match req.call() {
            Ok(mut r) => (
                r.status().as_u16(),
                r.body_mut().read_to_string().unwrap_or_default(),
            ),
            Err(_) => (0, String::new()),
        }
    };
    let admin = idp.token(ADMIN, &read());
    let reader = idp.token(READER, &read());
    // Up, then the keys loaded in the background (503 until then).
    let t0 = std::time::Instant::now();
    let (status, body) = loop {
        let (s, b) = get("/whoami", Some(&admin));
        if s == 200 || t0.elapsed() > Duration::from_secs(30) {
            break (s, b);
        }
        assert!(s == 0 || s == 503, "before the keys: {s} {b}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 200, "{body}");
    let who: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(who["subject"], "cc-admin");
    assert_eq!(who["scopes"], json!(["notes:read"]));
    assert_eq!(
        who["roles"],
        json!(["admin", "offline_access", "notes-admin"])
    );
    assert_eq!(get("/admin", Some(&admin)).0, 200);
    assert_eq!(get("/admin", Some(&reader)).0, 403);
    assert_eq!(get("/whoami", None).0, 401);
    assert_eq!(get("/health", None).0, 200);
}

// ---------------------------------------------------------------------------
// Own tokens and the provider's side by side: the token's iss selects
// ---------------------------------------------------------------------------

const OWN_SECRET: &[u8; 32] = b"own-issuer-secret-32-bytes-long!";

#[tokio::test]
async fn own_tokens_and_the_providers_pass_side_by_side_selected_by_iss() {
    let idp = OidcProvider::shared();
    let own = || {
        JwtConfig::hs256(OWN_SECRET)
            .unwrap()
            .issuer("notes-demo")
            .audience("notes-api")
    };
    let provider = JwtConfig::discover(idp.issuer())
        .await
        .unwrap()
        .audience(API)
        .claims(ClaimMapping::keycloak("cc-admin"));
    let sec = Security::builder()
        .jwt(own().also_accept(provider.clone()))
        .build()
        .unwrap();
    assert!(sec.can_issue_tokens());

    // Our own token: our issuer, our audience, roles from `roles`.
    let mine = sec
        .issue_access_token(&AccessToken {
            subject: "alice",
            scopes: &["notes:read"],
            roles: &["admin"],
            ..Default::default()
        })
        .unwrap()
        .token;
    assert_status(&sec, "/notes", &mine, StatusCode::OK, "own").await;
    assert_status(&sec, "/admin", &mine, StatusCode::OK, "own roles").await;
    // The provider's: its keys, its audience, its Keycloak-shaped roles.
    let admin = idp.token(ADMIN, &read());
    let reader = idp.token(READER, &read());
    assert_status(&sec, "/notes", &admin, StatusCode::OK, "provider").await;
    assert_status(&sec, "/admin", &admin, StatusCode::OK, "provider roles").await;
    assert_status(&sec, "/admin", &reader, StatusCode::FORBIDDEN, "reader").await;

    // Crossing over is refused: our secret signing a token that names the
    // provider (verified with the provider's keys), the provider's token
    // relabelled as ours (verified with our secret), an unknown issuer.
    let mut forged_claims = part(&admin, 1);
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = part(&admin, 0)["kid"].as_str().map(str::to_owned);
    let forged = encode(&h, &forged_claims, &EncodingKey::from_secret(OWN_SECRET)).unwrap();
    assert_status(
        &sec,
        "/notes",
        &forged,
        StatusCode::UNAUTHORIZED,
        "own key, their iss",
    )
    .await;
    forged_claims["iss"] = json!("notes-demo");
    forged_claims["aud"] = json!("notes-api");
    let (head, rest) = admin.split_once('.').unwrap();
    let sig = rest.split_once('.').unwrap().1;
    let relabelled = format!("{head}.{}.{sig}", b64(&forged_claims));
    assert_status(
        &sec,
        "/notes",
        &relabelled,
        StatusCode::UNAUTHORIZED,
        "relabelled",
    )
    .await;
    let mut stranger = part(&mine, 1);
    stranger["iss"] = json!("https://stranger.example");
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    let stranger = encode(&h, &stranger, &EncodingKey::from_secret(OWN_SECRET)).unwrap();
    assert_status(
        &sec,
        "/notes",
        &stranger,
        StatusCode::UNAUTHORIZED,
        "unknown iss",
    )
    .await;

    // Two configurations for one issuer: which one would verify?
    let err = Security::builder()
        .jwt(own().also_accept(provider).also_accept(own()))
        .build()
        .expect_err("two configurations for one issuer");
    assert!(err.to_string().contains("\"notes-demo\""), "{err}");
}
