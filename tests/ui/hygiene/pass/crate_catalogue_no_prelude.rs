// `crate_catalogue!` and the checks it feeds rely on no prelude either.
#![no_implicit_prelude]

pub const ACCESS: ::poem_secure::Catalogue = ::poem_secure::Catalogue::new()
    .scopes(&[("items", "Read items")])
    .roles(&["a", "b"])
    .permissions(&["p"]);

::poem_secure::crate_catalogue!(ACCESS);

mod api {
    #[::poem_secure::secure(scopes = "items", roles = all("a", "b"), any(permissions = "p", roles = "a"))]
    #[::poem::handler]
    pub async fn items() -> &'static str {
        "items"
    }
}

fn main() {
    let _ = api::items;
}
