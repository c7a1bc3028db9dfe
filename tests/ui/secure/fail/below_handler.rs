use poem::handler;
use poem_secure::secure;

#[handler]
#[secure(scopes = "items")]
async fn list() {}

fn main() {}
