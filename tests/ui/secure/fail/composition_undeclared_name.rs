// Names inside groups are checked against the catalogue like the others.
use poem::handler;
use poem_secure::{secure, Catalogue};

const ACCESS: Catalogue = Catalogue::new()
    .scopes(&[("items:write", "Write")])
    .roles(&["admin"])
    .permissions(&["notes:delete-any"]);

#[secure(catalogue = ACCESS, scopes = "items:write", any(roles = "admn", all(permissions = "notes:delete-all")))]
#[handler]
async fn remove() {}

fn main() {}
