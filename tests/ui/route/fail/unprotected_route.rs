use poem_secure::route::{get, Route};

#[poem::handler]
async fn oops() -> &'static str {
    "leak"
}

fn main() {
    let _ = Route::new().at("/oops", get(oops));
}
