use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::{deny_unprotected, openapi::service, public, route::{get, Route}, secure, Catalogue, Principal};

pub const ACCESS: Catalogue = Catalogue::new()
    .token_url("/auth/token")
    .scopes(&[("notes:read", "Read notes"), ("items", "Items")]);

#[deny_unprotected(catalogue = ACCESS)]
mod api {
    use super::*;

    #[secure(scopes = "items")]
    #[poem::handler]
    pub async fn items(who: Principal) -> String {
        who.subject().to_owned()
    }

    pub mod inner {
        use super::*;
        #[public]
        #[poem::handler]
        pub async fn health() -> &'static str {
            "ok"
        }
    }

    pub struct Notes;

    #[OpenApi]
    impl Notes {
        #[secure(scopes = "notes:read")]
        #[oai(path = "/notes", method = "get")]
        async fn list(&self, who: Principal) -> poem::Result<PlainText<String>> {
            Ok(PlainText(who.subject().to_owned()))
        }

        #[public(rate = "5/min")]
        #[oai(path = "/version", method = "get")]
        async fn version(&self) -> PlainText<&'static str> {
            PlainText("1")
        }
    }
}

fn main() {
    let _ = Route::new()
        .at("/items", get(api::items))
        .at("/health", get(api::inner::health))
        .nest("/api", service(api::Notes, "notes", "1"));
}
