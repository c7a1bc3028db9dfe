use poem::handler;
use poem_secure::secure;

#[secure(scopes = "a", roles = "admin", scopes = "b")]
#[handler]
async fn list() {}

fn main() {}
