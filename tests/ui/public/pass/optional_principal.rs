use poem::handler;
use poem_secure::{public, route::{get, Route}, Principal};

#[public]
#[handler]
async fn hello(who: Option<Principal>) -> String {
    who.map_or_else(|| "stranger".to_owned(), |p| p.subject().to_owned())
}

fn by_forwarded(_req: &poem::Request, _p: Option<&Principal>) -> String {
    String::new()
}

#[public(rate = "10/min, burst = 3", rate_key = by_forwarded, rate_group = "anon")]
#[handler]
async fn limited() -> &'static str {
    "ok"
}

fn main() {
    let _ = Route::new().at("/hello", get(hello)).at("/limited", get(limited));
}
