use poem::handler;
use poem_secure::secure;

fn by_header(_req: &poem::Request) -> u64 {
    0
}

#[secure(rate = "5/min", rate_key = by_header)]
#[handler]
async fn list() {}

fn main() {}
