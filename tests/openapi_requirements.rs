//! The OpenAPI document shows every requirement, with or without a
//! catalogue: each secured operation's description states it (appended to
//! the user's own doc), and `openapi::annotated_spec` adds an
//! `x-poem-secure` extension with the credential kinds, scopes (API keys
//! included), roles, permissions, composed rule, check by name and rate. The
//! documents are validated by an independent OpenAPI validator.

#[path = "support/openapi_validator.rs"]
mod openapi_validator;

use poem::Request;
use poem_openapi::{param::Path, payload::PlainText, OpenApi};
use poem_secure::{
    deny_unprotected,
    openapi::{annotated_spec, service, EXTENSION},
    public, secure, Denied, Principal,
};
use serde_json::{json, Value};

async fn owns_item(_who: &Principal, _req: &Request) -> Result<(), Denied> {
    Ok(())
}

struct Inventory;

/// No catalogue: before, these scopes appeared nowhere in the document.
#[deny_unprotected]
#[OpenApi]
impl Inventory {
    /// Reads one item.
    ///
    /// Items are visible to their owner.
    #[secure(scopes = "items:read", check = owns_item)]
    #[oai(path = "/items/:id", method = "get")]
    async fn item(&self, id: Path<u64>) -> PlainText<String> {
        PlainText(id.0.to_string())
    }

    #[secure(
        scopes = "items:write",
        any(roles = "admin", permissions = "items:delete-any"),
        rate = "10/min"
    )]
    #[oai(path = "/items/:id", method = "delete")]
    async fn remove(&self, id: Path<u64>) -> PlainText<String> {
        PlainText(id.0.to_string())
    }

    /// Service statistics.
    #[secure(auth = any(bearer, api_key), scopes = "stats:read")]
    #[oai(path = "/stats", method = "get")]
    async fn stats(&self) -> PlainText<&'static str> {
        PlainText("0")
    }

    /// Health.
    #[public]
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }
}

fn doc() -> Value {
    serde_json::from_str(&annotated_spec(&service(Inventory, "inventory", "1"))).unwrap()
}

#[test]
fn descriptions_state_the_requirement_after_the_users_own_doc() {
    let d = doc();
    let item = &d["paths"]["/items/{id}"]["get"];
    assert_eq!(item["summary"], "Reads one item.");
    let desc = item["description"].as_str().unwrap();
    assert!(
        desc.starts_with("Items are visible to their owner.\n\n**Security:** requires a bearer token (JWT). The caller must have all of the scopes `items:read`. The check `owns_item` must also pass."),
        "{desc}"
    );

    // No doc of its own: the line is all there is (poem-openapi makes a
    // lone paragraph the summary).
    let remove = &d["paths"]["/items/{id}"]["delete"];
    let text = remove["summary"].as_str().unwrap();
    assert!(
        text.contains("either the role `admin` or the permission `items:delete-any`"),
        "{text}"
    );
    assert!(
        text.contains("Rate limit: 10 requests per minute per caller."),
        "{text}"
    );

    let stats = d["paths"]["/stats"]["get"]["description"].as_str().unwrap();
    assert!(
        stats.starts_with("**Security:** requires a bearer token (JWT) or an API key. The caller must have all of the scopes `stats:read`."),
        "{stats}"
    );
    // A public operation without a rate gets no line.
    assert_eq!(d["paths"]["/health"]["get"]["description"], Value::Null);
}

#[test]
fn every_operation_carries_the_extension() {
    let d = doc();
    let ext = |path: &str, method: &str| d["paths"][path][method][EXTENSION].clone();

    let item = ext("/items/{id}", "get");
    assert_eq!(item["access"], "secured");
    assert_eq!(item["auth"], json!(["bearer"]));
    assert_eq!(item["scopes"], json!(["items:read"]));
    assert_eq!(item["check"], "owns_item");

    let remove = ext("/items/{id}", "delete");
    assert_eq!(
        remove["rule"],
        "role `admin` or permission `items:delete-any`"
    );
    assert_eq!(
        remove["rate"],
        json!({"count": 10, "period_secs": 60, "burst": 10, "key": "user"})
    );
    assert!(remove["forbidden"]
        .as_str()
        .unwrap()
        .contains("`items:delete-any`"));

    // The API key's scopes are visible.
    let stats = ext("/stats", "get");
    assert_eq!(stats["auth"], json!(["bearer", "api_key"]));
    assert_eq!(stats["scopes"], json!(["stats:read"]));

    let health = ext("/health", "get");
    assert_eq!(health["access"], "public");
    assert_eq!(health["auth"], json!([]));
}

#[test]
fn the_document_without_a_catalogue_is_valid_openapi() {
    openapi_validator::assert_valid(
        "inventory",
        &annotated_spec(&service(Inventory, "inventory", "1")),
    );
}

#[test]
fn the_validator_rejects_a_broken_document() {
    // The validator really validates: a document without `info` fails.
    let mut d = doc();
    d.as_object_mut().unwrap().remove("info");
    let broken = serde_json::to_string(&d).unwrap();
    let result = std::panic::catch_unwind(|| openapi_validator::assert_valid("broken", &broken));
    let msg = result.unwrap_err();
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("the OpenAPI document is invalid"), "{msg}");
}
