use poem_secure::{deny_unprotected, public, secure};

#[deny_unprotected]
mod api {
    use super::*;
    use poem::handler;

    #[secure(scopes = "items")]
    #[handler]
    pub async fn fine() {}

    #[public]
    #[handler]
    pub async fn health() {}

    #[handler]
    pub async fn oops() -> &'static str {
        "leak"
    }

    mod nested {
        #[poem::handler]
        async fn also_oops() {}
    }
}

fn main() {}
