// A check never gets the body: it runs before the body is read.
use poem::{
    handler,
    web::{Json, Path},
};
use poem_secure::{secure, Denied, Principal};

async fn owns_item(_: &Principal, _: &u64, _: &Json<String>) -> Result<(), Denied> {
    Ok(())
}

#[secure(check = owns_item(id, note))]
#[handler]
async fn update(Path(id): Path<u64>, note: Json<String>) -> String {
    format!("{id}: {}", note.0)
}

fn main() {}
