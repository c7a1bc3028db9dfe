//! The policies the benchmarks check, built in one place: when `Policy`'s
//! constructors change, only the two functions below change.
#![allow(dead_code)] // each bench uses some of these

use std::sync::LazyLock;

use poem_secure::{AuthKinds, Policy, RateKey, Roles};

/// `#[secure(scopes = "items")]`: a bearer token granting `items`.
pub fn items_policy() -> Policy {
    Policy {
        id: "bench::items",
        public: false,
        auth: AuthKinds::BEARER,
        scopes: &["items"],
        roles: Roles::None,
        permissions: &[],
        rate: None,
        rate_key: RateKey::Default,
        rate_group: None,
        check: None,
        catalogue: None,
    }
}

/// `#[secure]`: any valid bearer token.
pub fn any_bearer_policy() -> Policy {
    Policy {
        id: "bench::any",
        scopes: &[],
        ..items_policy()
    }
}

/// [`items_policy`], where `Security::authorize` wants it (`&'static`).
pub static ITEMS: LazyLock<Policy> = LazyLock::new(items_policy);
/// [`any_bearer_policy`], where `Security::authorize` wants it (`&'static`).
pub static ANY_BEARER: LazyLock<Policy> = LazyLock::new(any_bearer_policy);

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
