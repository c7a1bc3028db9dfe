// The crate's catalogue reaches a file module (`mod handlers;`): each name it
// does not declare is an error at its literal, with the nearest declared name.
use poem_secure::{crate_catalogue, Catalogue};

pub const ACCESS: Catalogue = Catalogue::new()
    .scopes(&[("notes:read", "Read notes"), ("notes:write", "Write notes")])
    .roles(&["admin", "owner"])
    .permissions(&["notes:delete-any"]);

crate_catalogue!(ACCESS);

#[path = "files/handlers.rs"]
mod handlers;

fn main() {}
