// What applies to the whole handler cannot stand inside a group.
use poem::handler;
use poem_secure::{secure, Catalogue};

const CAT: Catalogue = Catalogue::new().roles(&["admin"]);

#[secure(any(roles = "admin", rate = "5/min", rate_key = ip, rate_group = "g"))]
#[handler]
async fn rate_inside() {}

#[secure(all(roles = "admin", auth = api_key, catalogue = CAT, crate = "::poem_secure"))]
#[handler]
async fn auth_inside() {}

fn main() {}
