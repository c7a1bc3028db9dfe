use poem::handler;
use poem_secure::secure;

#[secure(scopes = "")]
#[handler]
async fn empty() {}

#[secure(scopes = ["notes:read", "with space"])]
#[handler]
async fn spaced() {}

#[secure(scopes = "a\"b")]
#[handler]
async fn quote() {}

#[secure(permissions = "users:delete users:delete")]
#[handler]
async fn twice() {}

#[secure(roles = "admin owner")]
#[handler]
async fn roles_with_space() {}

#[secure(roles = [])]
#[handler]
async fn no_roles() {}

fn main() {}
