use poem::handler;
use poem_secure::public;

#[public(any(roles = "admin"), rate = "5/min")]
#[handler]
async fn h() {}

fn main() {}
