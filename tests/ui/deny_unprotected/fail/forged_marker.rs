// A marker copied by hand onto an operation, with a made-up requirement
// name, does not resolve: the requirement type exists only beside an impl
// that `#[deny_unprotected]` rewrote.
use poem_openapi::{payload::PlainText, OpenApi};

struct Api;

#[OpenApi]
impl Api {
    // A forged requirement name does not resolve.
    #[poem_secure::__private::checked(__secure_Api_list)]
    #[oai(path = "/list", method = "get")]
    async fn list(&self) -> PlainText<&'static str> {
        PlainText("list")
    }
}

fn main() {}
