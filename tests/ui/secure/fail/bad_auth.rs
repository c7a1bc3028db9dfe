use poem::handler;
use poem_secure::secure;

#[secure(auth = jwt)]
#[handler]
async fn a() {}

#[secure(auth = any(bearer, bearer))]
#[handler]
async fn b() {}

#[secure(auth = all(bearer, api_key))]
#[handler]
async fn c() {}

fn main() {}
