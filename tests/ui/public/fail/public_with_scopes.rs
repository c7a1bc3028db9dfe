use poem::handler;
use poem_secure::public;

#[public(scopes = "items", roles = "admin")]
#[handler]
async fn list() {}

#[public(rate = "5/min", rate_key = user)]
#[handler]
async fn per_user() {}

fn main() {}
