// One check per declaration, and its arguments are parameter names.
use poem::{handler, web::Path};
use poem_secure::{secure, Denied, Principal};

async fn owns_item(_: &Principal, _: &u64) -> Result<(), Denied> {
    Ok(())
}

#[secure(check = owns_item(id), any(roles = "admin", check = owns_item(id)))]
#[handler]
async fn delete(Path(id): Path<u64>) -> String {
    id.to_string()
}

#[secure(check = owns_item(id + 1))]
#[handler]
async fn literal(Path(id): Path<u64>) -> String {
    id.to_string()
}

fn main() {}
