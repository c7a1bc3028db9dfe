// On a poem-openapi operation the check's arguments are the operation's own
// parameters and `self`: a body is refused at the argument, and so is a
// name that is not a parameter.
use poem_openapi::{param::Path, payload::Json, OpenApi};
use poem_secure::{deny_unprotected, secure, Denied, Principal};

struct Api;

async fn owns(_: &Principal, _: &u64, _: &Json<String>) -> Result<(), Denied> {
    Ok(())
}

async fn owns_self(_: &Principal, _: &u64, _: &Api) -> Result<(), Denied> {
    Ok(())
}

#[deny_unprotected]
#[OpenApi]
impl Api {
    #[secure(check = owns(id, note))]
    #[oai(path = "/items/:id", method = "put")]
    async fn update(&self, id: Path<u64>, note: Json<String>) -> Json<String> {
        Json(format!("{}: {}", id.0, note.0))
    }

    #[secure(check = owns_self(item, self))]
    #[oai(path = "/items/:id", method = "delete")]
    async fn delete(&self, id: Path<u64>) -> Json<u64> {
        Json(id.0)
    }
}

fn main() {}
