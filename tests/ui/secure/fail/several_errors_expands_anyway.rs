// Three bad arguments give three errors at once, and the handler is still
// emitted: the route below produces no further error.
use poem::handler;
use poem_secure::{route::{get, Route}, secure};

#[secure(scopes = "", rate = "5/mni", scope = "x")]
#[handler]
async fn list() -> &'static str {
    "ok"
}

fn main() {
    let _ = Route::new().at("/", get(list));
}
