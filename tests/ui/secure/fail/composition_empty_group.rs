use poem::handler;
use poem_secure::secure;

#[secure(any())]
#[handler]
async fn empty() {}

#[secure(scopes = "items", any(roles = "admin", all()))]
#[handler]
async fn nested_empty() {}

fn main() {}
