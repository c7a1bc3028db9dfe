use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::{deny_unprotected, public, secure};

struct Api;

#[deny_unprotected(catalog = X)]
#[OpenApi]
impl Api {
    #[secure(scopes = "notes:read", rate = "1/fortnight")]
    #[oai(path = "/notes", method = "get")]
    async fn list(&self) -> PlainText<&'static str> {
        PlainText("notes")
    }

    #[secure]
    #[public]
    #[oai(path = "/both", method = "get")]
    async fn both(&self) -> PlainText<&'static str> {
        PlainText("both")
    }
}

fn main() {}
