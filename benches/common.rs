//! The policies the benchmarks check, built in one place: when `Policy`'s
//! constructors change, only the two functions below change.
#![allow(dead_code)] // each bench uses some of these

use poem_secure::Policy;

/// `#[secure(scopes = "items")]`: a bearer token granting `items`.
pub static ITEMS: Policy = Policy::secured("bench::items").with_scopes(&["items"]);
/// `#[secure]`: any valid bearer token.
pub static ANY_BEARER: Policy = Policy::secured("bench::any");

/// Polls a future once, as the server's task does when the guard needs no
/// I/O: no runtime is entered, so the runtime's own cost (which a
/// `block_on` per iteration would add to one side only) stays out.
pub fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::future::Future::poll(std::pin::pin!(f), &mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the future waited for I/O"),
    }
}
