// A file module inside a checked module cannot be read by the macro: it is an
// error (as at the top level), not silently skipped. `api/handlers.rs` holds
// a handler without a declaration that would otherwise slip through.
use poem_secure::deny_unprotected;

#[deny_unprotected]
mod api {
    mod handlers;

    pub mod inline {}
}

fn main() {}
