use poem::handler;
use poem_secure::secure;

#[secure(any(roles = "admin", permissions = "a", roles = "owner"))]
#[handler]
async fn twice() {}

// The same key in two groups, or at the top level and in a group, is fine.
#[secure(roles = "user", any(roles = "admin", permissions = "a"), any(roles = "owner", permissions = "b"))]
#[handler]
async fn fine() {}

fn main() {}
