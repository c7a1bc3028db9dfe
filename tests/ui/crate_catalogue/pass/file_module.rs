// The crate catalogue is found in a file module; an explicit `catalogue = ..`
// takes precedence over it.
use poem_secure::{crate_catalogue, Catalogue};

pub mod access {
    use poem_secure::Catalogue;
    pub const ACCESS: Catalogue = Catalogue::new()
        .scopes(&[("notes:read", "Read notes")])
        .roles(&["admin"]);
}

pub const BILLING: Catalogue = Catalogue::new().scopes(&[("billing:read", "Read invoices")]);

crate_catalogue!(access::ACCESS);

#[path = "files/handlers.rs"]
mod handlers;

fn main() {
    let _ = (handlers::list, handlers::invoices);
}
