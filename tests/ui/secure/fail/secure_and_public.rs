use poem::handler;
use poem_secure::secure;

#[secure(scopes = "items")]
#[poem_secure::public]
#[handler]
async fn list() {}

fn main() {}
