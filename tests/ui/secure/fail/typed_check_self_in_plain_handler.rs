// `self` exists only in a poem-openapi impl; a plain handler passes state as
// `Data<&T>`. A generic handler cannot take a typed check at all.
use poem::{
    handler,
    web::{Data, Path},
};
use poem_secure::{secure, Denied, Principal};

async fn owns_item(_: &Principal, _: &u64) -> Result<(), Denied> {
    Ok(())
}

#[secure(check = owns_item(self))]
#[handler]
async fn delete(Path(id): Path<u64>) -> String {
    id.to_string()
}

#[secure(check = owns_item(id))]
#[handler]
async fn generic<T: Send + Sync + 'static>(Path(id): Path<u64>, _state: Data<&T>) -> String {
    id.to_string()
}

fn main() {}
