// The marker `#[deny_unprotected]` leaves on the operations it rewrote is
// never written by hand: anywhere else it is an error spanned at it.
use poem::handler;
use poem_secure::secure;

#[poem_secure::__private::checked]
#[handler]
async fn bare() {}

#[poem_secure::__private::checked(__secure_plain)]
#[secure]
#[handler]
async fn plain() {}

// The old user-writable marker is now an unknown key.
#[secure(__secure_done)]
#[handler]
async fn old_marker() {}

fn main() {}
