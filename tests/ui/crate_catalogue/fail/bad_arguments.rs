use poem_secure::{crate_catalogue, Catalogue};

pub const ACCESS: Catalogue = Catalogue::new();

crate_catalogue!(ACCESS, catalogue = ACCESS);

fn main() {}
