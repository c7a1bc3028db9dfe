// `any(...)` / `all(...)` compose requirements: the policy carries a `Rule`
// the runtime evaluates, and the documented 403 states the whole requirement.
use poem::handler;
use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::{
    deny_unprotected, route::{delete, Route}, secure, Catalogue, CredentialKind, Principal,
    Requirement, Roles, Rule,
};

pub const ACCESS: Catalogue = Catalogue::new()
    .scopes(&[("items:write", "Write"), ("items:read", "Read")])
    .roles(&["admin", "owner", "editor"])
    .permissions(&["notes:delete-any"]);

#[secure(
    catalogue = ACCESS,
    scopes = "items:write",
    any(roles = "admin", permissions = "notes:delete-any"),
)]
#[handler]
async fn remove() {}

#[secure(any(all(roles = all("editor", "owner"), scopes = "items:read"), roles = ["admin"]), rate = "5/min")]
#[handler]
async fn nested() {}

#[secure(r#any(roles = "a"), all(permissions = "p q"))]
#[handler]
async fn two_groups() {}

struct Api;

#[deny_unprotected(catalogue = ACCESS)]
#[OpenApi]
impl Api {
    #[secure(scopes = "items:read", any(roles = "owner", permissions = "notes:delete-any"))]
    #[oai(path = "/items", method = "get")]
    async fn list(&self) -> PlainText<&'static str> {
        PlainText("items")
    }
}

fn main() {
    let _ = Route::new()
        .at("/a", delete(remove))
        .at("/b", delete(nested))
        .at("/c", delete(two_groups));

    let p = <__secure_remove as Requirement>::POLICY;
    assert_eq!(p.scopes(), ["items:write"]);
    assert_eq!(
        p.rule(),
        Some(&Rule::Any(&[
            Rule::Roles(Roles::Any(&["admin"])),
            Rule::Permissions(&["notes:delete-any"]),
        ]))
    );
    assert_eq!(
        <__secure_remove as Requirement>::FORBIDDEN_DOC,
        "Forbidden unless the caller has all of the scopes `items:write`; and either the role `admin` or the permission `notes:delete-any`."
    );
    let user = Principal::builder(CredentialKind::Bearer, "u").scopes(["items:write"]).build();
    let unmet = p.rule().map(|r| r.evaluate(&user));
    assert_eq!(
        unmet.and_then(Result::err).map(|m| m.to_string()).as_deref(),
        Some("role `admin` or permission `notes:delete-any`")
    );

    assert_eq!(
        <__secure_nested as Requirement>::FORBIDDEN_DOC,
        "Forbidden unless the caller has either (all of the roles `editor`, `owner` and the scope `items:read`) or the role `admin`."
    );
    assert_eq!(
        <__secure_two_groups as Requirement>::FORBIDDEN_DOC,
        "Forbidden unless the caller has the role `a`; and all of the permissions `p`, `q`."
    );
    assert!(<__secure_Api_list as Requirement>::POLICY.rule().is_some());
}
