//! A crate-wide catalogue (`crate_catalogue!`) reaches the policies too, not
//! only the name checks: an operation that names no catalogue is documented
//! under the OAuth2 scheme of the crate's catalogue, with its scopes and
//! their descriptions, and a plain handler's policy carries it.

use poem::handler;
use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::{crate_catalogue, deny_unprotected, openapi::service, secure, Catalogue};

pub const ACCESS: Catalogue = Catalogue::new()
    .scopes(&[("items:read", "Read items")])
    .token_url("/auth/token");

crate_catalogue!(ACCESS);

struct Items;

#[deny_unprotected]
#[OpenApi]
impl Items {
    #[secure(scopes = "items:read")]
    #[oai(path = "/items", method = "get")]
    async fn list(&self) -> PlainText<&'static str> {
        PlainText("items")
    }
}

#[secure(scopes = "items:read")]
#[handler]
async fn plain() -> &'static str {
    "plain"
}

#[test]
fn operations_without_a_catalogue_key_are_documented_under_the_crate_catalogue() {
    let spec: serde_json::Value =
        serde_json::from_str(&service(Items, "items", "1").spec()).unwrap();
    let scheme = &spec["components"]["securitySchemes"]["oauth2"];
    assert_eq!(
        scheme["flows"]["password"]["tokenUrl"], "/auth/token",
        "{spec}"
    );
    assert_eq!(
        scheme["flows"]["password"]["scopes"]["items:read"],
        "Read items"
    );
    assert_eq!(
        spec["paths"]["/items"]["get"]["security"][0]["oauth2"],
        serde_json::json!(["items:read"])
    );
}

#[test]
fn a_plain_handlers_policy_carries_the_crate_catalogue() {
    use poem_secure::Requirement;
    let policy = <__secure_plain as Requirement>::POLICY;
    let cat = policy.catalogue().expect("the crate catalogue");
    assert_eq!(cat.token_url, Some("/auth/token"));
    assert!(cat.scopes.iter().any(|(name, _)| *name == "items:read"));
    let _ = plain;
}
