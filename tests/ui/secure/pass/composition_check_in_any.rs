use poem::{handler, Request};
use poem_secure::{secure, Denied, Principal};

async fn owns_item(_: &Principal, _: &Request) -> Result<(), Denied> {
    Ok(())
}

#[secure(any(roles = "admin", check = owns_item))]
#[handler]
async fn delete() {}

fn main() {}
