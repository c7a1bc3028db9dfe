// Declared in a module, the crate catalogue would not be found by the
// handlers of other modules: an error says where it belongs.
use poem_secure::Catalogue;

mod access {
    use super::Catalogue;
    pub const ACCESS: Catalogue = Catalogue::new().scopes(&[("notes:read", "Read notes")]);
    poem_secure::crate_catalogue!(ACCESS);
}

fn main() {}
