use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::{deny_unprotected, public};

struct Api;

#[OpenApi]
#[deny_unprotected]
impl Api {
    #[public]
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }
}

fn main() {}
