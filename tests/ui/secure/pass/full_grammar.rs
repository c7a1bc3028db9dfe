use poem::{handler, Request};
use poem_secure::{route::{get, post, Route}, secure, Catalogue, Denied, Principal};

pub const ACCESS: Catalogue = Catalogue::new()
    .token_url("/auth/token")
    .scopes(&[("items:read", "Read"), ("items:write", "Write")])
    .roles(&["admin", "owner"])
    .permissions(&["users:delete"]);

async fn owner_only(p: &Principal, _req: &Request) -> Result<(), Denied> {
    if p.subject() == "root" { Ok(()) } else { Err(Denied::not_found()) }
}

fn tenant(_req: &Request, p: Option<&Principal>) -> String {
    p.map(|p| p.subject().to_owned()).unwrap_or_default()
}

#[secure]
#[handler]
async fn any_caller(who: Principal) -> String {
    who.subject().to_owned()
}

#[secure(
    catalogue = ACCESS,
    scopes = "items:read items:write",
    roles = all("admin", "owner"),
    permissions = ["users:delete"],
    rate = "10/min, burst = 20",
    rate_key = ip_user,
    check = owner_only,
)]
#[handler]
async fn everything() {}

#[secure(scopes = ["items:read"], roles = ["admin", "owner"], rate = "1000/hour", rate_key = tenant)]
#[handler]
async fn lists() {}

#[secure(auth = any(bearer, api_key), rate = "100/s", rate_key = api_key)]
#[handler]
async fn service() {}

#[secure(auth = basic, rate = "1/day", rate_group = "shared")]
#[handler]
async fn basic() {}

#[poem_secure::secure(crate = "::poem_secure", auth = api_key)]
#[poem::handler]
async fn renamed_paths() {}

fn main() {
    let _ = Route::new()
        .at("/a", get(any_caller).post(everything))
        .at("/b", post(lists))
        .at("/c", get(service))
        .at("/d", get(basic))
        .at("/e", get(renamed_paths));
}
