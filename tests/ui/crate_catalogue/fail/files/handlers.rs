// A file module: no `catalogue = ..` anywhere, the crate's one applies.
use poem::handler;
use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::{deny_unprotected, secure};

#[secure(scopes = "notes:raed", roles = "admn")]
#[handler]
pub async fn list() {}

#[secure(scopes = "notes:write", any(roles = "ownr", permissions = "notes:delete_any"))]
#[handler]
pub async fn remove() {}

// Far from every declared name: no suggestion.
#[secure(scopes = "billing")]
#[handler]
pub async fn bill() {}

pub struct Api;

#[deny_unprotected]
#[OpenApi]
impl Api {
    #[secure(scopes = "notes:wirte")]
    #[oai(path = "/notes", method = "post")]
    async fn create(&self) -> PlainText<&'static str> {
        PlainText("created")
    }
}
