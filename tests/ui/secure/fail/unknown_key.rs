use poem::handler;
use poem_secure::secure;

#[secure(scope = "items")]
#[handler]
async fn list() {}

fn main() {}
