// A check whose parameter types or output do not fit: rustc's errors land at
// the check in the attribute and state the expected types.
use poem::{handler, web::Path};
use poem_secure::{secure, Principal};

async fn owns_item(_: &Principal, _: &String) -> bool {
    true
}

#[secure(check = owns_item(id))]
#[handler]
async fn delete(Path(id): Path<u64>) -> String {
    id.to_string()
}

fn main() {}
