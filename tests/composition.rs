//! `#[secure(scopes = ..., any(...))]` on a plain poem handler, driven through
//! poem's `TestClient`: top-level keys are ANDed with the group, either
//! alternative of an `any(...)` admits, and a caller meeting neither is
//! refused with a 403 that names what is missing.

use poem::{handler, http::StatusCode, test::TestClient};
use poem_secure::{
    route::{delete, Route},
    secure,
    testing::token,
    JwtConfig, Requirement, Security,
};

const SECRET: &[u8; 32] = b"composition-test-secret-32-byte!";

#[secure(
    scopes = "items:write",
    any(roles = "admin", permissions = "notes:delete-any")
)]
#[handler]
async fn remove() -> &'static str {
    "removed"
}

fn security() -> Security {
    Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer("composition")
                .audience("api"),
        )
        .build()
        .unwrap()
}

async fn call(sec: &Security, bearer: String) -> (StatusCode, String) {
    let app = Route::new()
        .at("/items/1", delete(remove))
        .with(sec.clone());
    let resp = TestClient::new(app)
        .delete("/items/1")
        .header("authorization", bearer)
        .send()
        .await;
    let status = resp.0.status();
    let body = resp.0.into_body().into_string().await.unwrap();
    (status, body)
}

#[tokio::test]
async fn either_alternative_of_the_group_admits() {
    let sec = security();
    let admin = token(&sec, "ann")
        .scopes(["items:write"])
        .roles(["admin"])
        .bearer();
    assert_eq!(call(&sec, admin).await, (StatusCode::OK, "removed".into()));
    let moderator = token(&sec, "mo")
        .scopes(["items:write"])
        .permissions(["notes:delete-any"])
        .bearer();
    assert_eq!(
        call(&sec, moderator).await,
        (StatusCode::OK, "removed".into())
    );
}

#[tokio::test]
async fn a_missing_top_level_scope_is_refused_whatever_the_group() {
    let sec = security();
    let admin = token(&sec, "ann").roles(["admin"]).bearer();
    let (status, _) = call(&sec, admin).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[test]
fn the_policy_carries_the_group_and_the_documented_403_states_it() {
    let rule = <__secure_remove as Requirement>::POLICY.rule();
    assert_eq!(
        rule.map(ToString::to_string).as_deref(),
        Some("role `admin` or permission `notes:delete-any`")
    );
    assert_eq!(
        <__secure_remove as Requirement>::FORBIDDEN_DOC,
        "Forbidden unless the caller has all of the scopes `items:write`; and either the role `admin` or the permission `notes:delete-any`."
    );
}

/// The acceptance test of the integration: the decision step evaluates
/// `Policy::rule()` with `Rule::evaluate` and names the `Unmet` in the 403.
#[tokio::test]
async fn a_caller_meeting_no_alternative_is_refused_with_what_is_missing() {
    let sec = security();
    let user = token(&sec, "u")
        .scopes(["items:write"])
        .roles(["user"])
        .bearer();
    let (status, body) = call(&sec, user).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body.contains("role `admin` or permission `notes:delete-any`"),
        "{body}"
    );
}
