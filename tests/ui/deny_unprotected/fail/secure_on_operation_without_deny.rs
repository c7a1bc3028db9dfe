use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::secure;

struct Api;

#[OpenApi]
impl Api {
    #[secure(scopes = "notes:read")]
    #[oai(path = "/notes", method = "get")]
    async fn list(&self) -> PlainText<&'static str> {
        PlainText("notes")
    }
}

fn main() {}
