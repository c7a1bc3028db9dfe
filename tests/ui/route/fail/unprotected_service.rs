use poem_openapi::{payload::PlainText, OpenApi};

struct Open;

#[OpenApi]
impl Open {
    #[oai(path = "/x", method = "get")]
    async fn x(&self) -> PlainText<&'static str> {
        PlainText("x")
    }
}

fn main() {
    let _ = poem_secure::openapi::service(Open, "t", "1");
    let _ = poem_secure::route::Route::new().nest("/api", poem_openapi::OpenApiService::new(Open, "t", "1"));
}
