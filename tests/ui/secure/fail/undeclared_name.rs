use poem::handler;
use poem_secure::{secure, Catalogue};

pub const ACCESS: Catalogue = Catalogue::new()
    .scopes(&[("items", "Read items")])
    .roles(&["admin"]);

#[secure(catalogue = ACCESS, scopes = "itmes", roles = "admn")]
#[handler]
async fn list() {}

fn main() {}
