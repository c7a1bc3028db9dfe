// Near misses get a suggestion among the keys valid where they stand.
use poem::handler;
use poem_secure::{public, secure};

#[secure(role = "admin", premissions = "users:delete", ratelimit = "5/min", wibble = 1)]
#[handler]
async fn a() {}

#[secure(any(role = "admin", permissions = "users:delete"))]
#[handler]
async fn b() {}

#[public(rate = "5/min", rate_kye = ip)]
#[handler]
async fn c() {}

fn main() {}
