use poem_secure::secure;

#[secure(scopes = "items")]
async fn list() {}

fn main() {}
