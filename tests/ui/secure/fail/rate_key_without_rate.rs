use poem::handler;
use poem_secure::secure;

#[secure(rate_key = ip)]
#[handler]
async fn list() {}

#[secure(rate = "5/min", rate_key = api_key)]
#[handler]
async fn keyed() {}

fn main() {}

#[secure(rate_group = "login")]
#[handler]
async fn grouped() {}
