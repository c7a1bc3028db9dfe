// The error lands in user code: at the `check` path whose signature is wrong.
use poem::handler;
use poem_secure::{secure, Principal};

async fn only_principal(_p: &Principal) -> bool {
    true
}

#[secure(check = only_principal)]
#[handler]
async fn list() {}

fn main() {}
