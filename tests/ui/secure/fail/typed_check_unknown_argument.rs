// A check argument must name one of the handler's parameters: the error is
// at the misspelt name and lists the parameters there are.
use poem::{handler, web::Path};
use poem_secure::{secure, Denied, Principal};

async fn owns_item(_: &Principal, _: &u64) -> Result<(), Denied> {
    Ok(())
}

#[secure(check = owns_item(item_id))]
#[handler]
async fn delete(Path(id): Path<u64>) -> String {
    id.to_string()
}

fn main() {}
