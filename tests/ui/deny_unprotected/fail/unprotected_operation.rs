use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::{deny_unprotected, secure};

struct Api;

#[deny_unprotected]
#[OpenApi]
impl Api {
    #[secure(scopes = "notes:read")]
    #[oai(path = "/notes", method = "get")]
    async fn list(&self) -> PlainText<&'static str> {
        PlainText("notes")
    }

    #[oai(path = "/leak", method = "get")]
    async fn leak(&self) -> PlainText<&'static str> {
        PlainText("leak")
    }
}

fn main() {}
