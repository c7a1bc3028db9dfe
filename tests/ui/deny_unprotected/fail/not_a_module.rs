use poem_secure::deny_unprotected;

#[deny_unprotected]
fn handler() {}

fn main() {}
