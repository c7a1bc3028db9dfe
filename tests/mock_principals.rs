//! `testing::principal`: mock callers admitted by the app's production
//! verifier configuration (here: tokens of an external provider found by
//! discovery, which holds no signing key), through the same decision as a
//! real credential.

use std::{
    io::Write,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use poem::{http::StatusCode, test::TestClient};
use poem_secure::{
    route::{get, Route},
    secure, testing, Answer, ApiKeyVerifier, BasicVerifier, Catalogue, CredentialError, JwtConfig,
    Principal, RevocationList, Security,
};
use tracing_subscriber::fmt::MakeWriter;

const ACCESS: Catalogue = Catalogue::new()
    .scopes(&[("notes:read", "Read notes"), ("notes:write", "Write notes")])
    .roles(&["admin", "user"])
    .permissions(&["notes:delete-any"]);

static BODY_RAN: AtomicUsize = AtomicUsize::new(0);

#[secure(catalogue = ACCESS, scopes = "notes:read")]
#[poem::handler]
async fn notes(who: Principal) -> String {
    BODY_RAN.fetch_add(1, Ordering::SeqCst);
    let tenant = who
        .claims()
        .get("tenant")
        .and_then(|t| t.as_str())
        .unwrap_or("-")
        .to_owned();
    format!("{} {tenant}", who.subject())
}

#[secure(catalogue = ACCESS, any(roles = "admin", permissions = "notes:delete-any"))]
#[poem::handler]
async fn delete_any() -> &'static str {
    "deleted"
}

#[secure(rate = "1/min")]
#[poem::handler]
async fn limited() -> &'static str {
    "ok"
}

#[secure(auth = api_key, catalogue = ACCESS, scopes = "notes:read")]
#[poem::handler]
async fn by_key(who: Principal) -> String {
    format!("{} {}", who.subject(), who.key_id().unwrap_or("-"))
}

#[secure(auth = basic)]
#[poem::handler]
async fn by_password(who: Principal) -> String {
    who.subject().to_owned()
}

/// The production stores: they refuse everything the test did not create.
struct NoKeys;
impl ApiKeyVerifier for NoKeys {
    fn verify<'a>(&'a self, _key: &'a str) -> Answer<'a, Result<Principal, CredentialError>> {
        Answer::Ready(Err(CredentialError::Invalid))
    }
}
struct NoUsers;
impl BasicVerifier for NoUsers {
    fn verify<'a>(
        &'a self,
        _user: &'a str,
        _password: &'a str,
    ) -> Answer<'a, Result<Principal, CredentialError>> {
        Answer::Ready(Err(CredentialError::Invalid))
    }
}
/// Revokes the `jti` "revoked-jti".
struct Denylist;
impl RevocationList for Denylist {
    fn is_revoked<'a>(&'a self, jti: &'a str) -> Answer<'a, Result<bool, CredentialError>> {
        Answer::Ready(Ok(jti == "revoked-jti"))
    }
}

/// What a resource server of an external provider configures: discovery of
/// the provider's keys (lazily: nothing answers here), no signing key.
fn external_provider() -> Security {
    Security::builder()
        .jwt(
            JwtConfig::discover_lazily("https://idp.example.invalid/realms/notes")
                .unwrap()
                .audience("notes-api"),
        )
        .api_keys(NoKeys)
        .basic(NoUsers)
        .revocations(Denylist)
        .build()
        .unwrap()
}

fn app(security: &Security) -> impl poem::Endpoint {
    Route::new()
        .at("/notes", get(notes))
        .at("/delete-any", get(delete_any))
        .at("/limited", get(limited))
        .at("/by-key", get(by_key))
        .at("/by-password", get(by_password))
        .with(security.clone())
}

#[tokio::test]
async fn a_mock_principal_is_admitted_by_an_app_without_a_signing_key() {
    let security = external_provider();
    assert!(!security.can_issue_tokens());
    let cli = TestClient::new(app(&security));
    let bearer = testing::principal(&security, "alice")
        .catalogue(&ACCESS)
        .scopes(["notes:read"])
        .claim("tenant", "acme")
        .bearer();
    let before = BODY_RAN.load(Ordering::SeqCst);
    let resp = cli
        .get("/notes")
        .header("Authorization", &bearer)
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_text("alice acme").await;
    assert_eq!(BODY_RAN.load(Ordering::SeqCst), before + 1);
    // Registered once, usable for the test's further requests.
    cli.get("/notes")
        .header("Authorization", &bearer)
        .send()
        .await
        .assert_status_is_ok();
}

#[tokio::test]
async fn a_mock_principal_lacking_the_scope_is_refused_with_403() {
    let security = external_provider();
    let cli = TestClient::new(app(&security));
    let bearer = testing::principal(&security, "bob")
        .scopes(["notes:write"])
        .bearer();
    let resp = cli
        .get("/notes")
        .header("Authorization", bearer)
        .send()
        .await;
    resp.assert_status(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unregistered_tokens_of_the_same_shape_are_refused_with_401() {
    let security = external_provider();
    let cli = TestClient::new(app(&security));
    let real = testing::principal(&security, "alice")
        .scopes(["notes:read"])
        .bearer();
    // Same prefix and length, other random bytes.
    let forged = format!(
        "Bearer mock.{}",
        "A".repeat(real.len() - "Bearer mock.".len())
    );
    assert_eq!(forged.len(), real.len());
    cli.get("/notes")
        .header("Authorization", forged)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    // A credential registered on another Security is unknown to this one.
    let other = external_provider();
    let elsewhere = testing::principal(&other, "alice")
        .scopes(["notes:read"])
        .bearer();
    cli.get("/notes")
        .header("Authorization", elsewhere)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn roles_permissions_rules_and_rates_apply_to_mock_principals() {
    let security = external_provider();
    let cli = TestClient::new(app(&security));
    let admin = testing::principal(&security, "ann")
        .roles(["admin"])
        .bearer();
    let deleter = testing::principal(&security, "dan")
        .permissions(["notes:delete-any"])
        .bearer();
    let user = testing::principal(&security, "ursula")
        .roles(["user"])
        .bearer();
    for (who, status) in [
        (admin, StatusCode::OK),
        (deleter, StatusCode::OK),
        (user, StatusCode::FORBIDDEN),
    ] {
        cli.get("/delete-any")
            .header("Authorization", who)
            .send()
            .await
            .assert_status(status);
    }
    let caller = testing::principal(&security, "lim").bearer();
    cli.get("/limited")
        .header("Authorization", &caller)
        .send()
        .await
        .assert_status_is_ok();
    cli.get("/limited")
        .header("Authorization", &caller)
        .send()
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_revocation_list_is_consulted_for_mock_bearer_tokens() {
    let security = external_provider();
    let cli = TestClient::new(app(&security));
    let revoked = testing::principal(&security, "alice")
        .scopes(["notes:read"])
        .token_id("revoked-jti")
        .bearer();
    cli.get("/notes")
        .header("Authorization", revoked)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_key_and_basic_mocks_go_through_their_own_kinds() {
    let security = external_provider();
    let cli = TestClient::new(app(&security));
    let key = testing::principal(&security, "svc")
        .scopes(["notes:read"])
        .api_key();
    let id = key.split_once('.').unwrap().0.to_owned();
    let resp = cli.get("/by-key").header("X-API-Key", &key).send().await;
    resp.assert_status_is_ok();
    resp.assert_text(format!("svc {id}")).await;
    // A bearer mock is not an API key, nor the reverse.
    let bearer = testing::principal(&security, "svc")
        .scopes(["notes:read"])
        .bearer();
    let token = bearer.trim_start_matches("Bearer ");
    cli.get("/by-key")
        .header("X-API-Key", token)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    cli.get("/notes")
        .header("Authorization", format!("Bearer {key}"))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);

    let basic = testing::principal(&security, "carol").basic();
    let resp = cli
        .get("/by-password")
        .header("Authorization", basic)
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_text("carol").await;
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);
impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn refusals_of_mock_principals_are_audited_and_the_token_is_never_logged() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let security = external_provider();
    let cli = TestClient::new(app(&security));
    let bearer = testing::principal(&security, "mallory")
        .scopes(["notes:write"])
        .bearer();
    cli.get("/notes")
        .header("Authorization", &bearer)
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("mallory"), "{log}");
    assert!(log.contains(poem_secure::AUDIT_TARGET), "{log}");
    let token = bearer.trim_start_matches("Bearer ");
    assert!(!log.contains(token), "{log}");
}

#[test]
#[should_panic(
    expected = "scope `notes:raed` is not declared in the catalogue: did you mean `notes:read`?"
)]
fn a_misspelt_test_scope_fails_the_test_with_a_suggestion() {
    let security = external_provider();
    let _ = testing::principal(&security, "alice")
        .catalogue(&ACCESS)
        .scopes(["notes:raed"])
        .bearer();
}

#[test]
#[should_panic(expected = "use `testing::principal(&security, subject)`")]
fn minting_a_token_without_a_signing_key_points_to_principal() {
    let security = external_provider();
    let _ = testing::token(&security, "alice").bearer();
}

#[test]
#[should_panic(expected = "the Security has no API key store (`.api_keys(..)`)")]
fn a_mock_of_a_kind_the_app_cannot_verify_fails_the_test() {
    let security = Security::builder()
        .jwt(
            JwtConfig::discover_lazily("https://idp.example.invalid")
                .unwrap()
                .audience("api"),
        )
        .build()
        .unwrap();
    let _ = testing::principal(&security, "svc").api_key();
}
