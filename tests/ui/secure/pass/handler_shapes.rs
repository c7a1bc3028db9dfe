// Every shape of poem handler under `#[secure]`/`#[public]` compiles without
// a single warning: the user's `use poem::handler;` stays used although the
// macro writes the endpoint itself, sync and async handlers, extractors in
// order, doc comments, other attributes, and the generic handler that keeps
// poem's own expansion.
#![deny(warnings)]

use poem::{
    handler,
    web::{Data, Json, Path},
};
use poem_secure::{
    public,
    route::{get, post, Route},
    secure, Principal,
};

/// Documented: the doc comment moves to the endpoint struct.
#[secure(scopes = "items")]
#[handler]
#[allow(clippy::unused_async)]
async fn with_extractors(
    Path(id): Path<u32>,
    who: Principal,
    Json(body): Json<Vec<u8>>,
) -> String {
    format!("{id} {} {}", who.subject(), body.len())
}

#[public]
#[handler]
fn sync_handler() -> &'static str {
    "sync"
}

#[secure(roles = "admin")]
#[poem::handler]
async fn by_full_path() -> poem::Result<&'static str> {
    Ok("ok")
}

trait Greeting: Send + Sync + 'static {
    const TEXT: &'static str;
}
struct Hello;
impl Greeting for Hello {
    const TEXT: &'static str = "hello";
}

#[public]
#[handler]
async fn generic<G: Greeting>(_greeting: Data<&G>) -> &'static str {
    G::TEXT
}

fn main() {
    let _ = Route::new()
        .at("/items/:id", post(with_extractors))
        .at("/sync", get(sync_handler))
        .at("/full", get(by_full_path))
        .at("/generic", get(generic::<Hello>::default()));
}
