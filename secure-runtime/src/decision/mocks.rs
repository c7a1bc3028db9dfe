//! Mock credentials (feature `testing` only): principals that test code
//! registered on one [`Security`](crate::Security), each behind a random
//! credential that the decision accepts in place of the verifier's answer.
//!
//! Without the feature this module does not exist, so nothing here can
//! admit a request in a release build. With it, only a credential that test
//! code registered on this very configuration (its shared state) is
//! accepted; the registry starts empty.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
};

use sha2::{Digest, Sha256};

use super::{Decider, Decision};
use crate::model::principal::{CredentialKind, Principal};

impl Decision<'_> {
    /// A principal that test code registered behind this credential.
    /// Consulted only once the real verifier of the kind is known to be
    /// configured, so a mock never hides a configuration that would fail in
    /// production; every later step (revocation, rate, grants, check,
    /// audit) is the same as for a verified credential.
    pub(super) fn mock(&self, kind: CredentialKind, value: &str) -> Option<Principal> {
        let d: &Decider = self.d;
        d.mocks.find(kind, value)
    }
}

/// The registered mock credentials of one `Security`.
#[derive(Default)]
pub(crate) struct MockRegistry {
    /// Set once anything is registered: an app without mocks never locks.
    used: AtomicBool,
    /// By credential kind and SHA-256 of the presented value (the value
    /// itself is not kept).
    principals: Mutex<HashMap<(Kind, [u8; 32]), Principal>>,
}

/// [`CredentialKind`] as a map key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Bearer,
    ApiKey,
    Basic,
}

impl From<CredentialKind> for Kind {
    fn from(k: CredentialKind) -> Self {
        match k {
            CredentialKind::Bearer => Kind::Bearer,
            CredentialKind::ApiKey => Kind::ApiKey,
            CredentialKind::Basic => Kind::Basic,
        }
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl MockRegistry {
    /// Registers `principal` behind `value`, the credential as presented
    /// (the bearer token, the API key, or the Basic `user:password` in
    /// base64). Returns `false` only when the registry's lock is poisoned.
    pub(crate) fn register(&self, value: &str, principal: Principal) -> bool {
        let Ok(mut map) = self.principals.lock() else {
            return false;
        };
        map.insert((principal.kind().into(), digest(value)), principal);
        self.used.store(true, Ordering::Release);
        true
    }

    /// The principal registered behind `value` for `kind`, if any.
    pub(crate) fn find(&self, kind: CredentialKind, value: &str) -> Option<Principal> {
        if !self.used.load(Ordering::Acquire) {
            return None;
        }
        let map = self.principals.lock().ok()?;
        map.get(&(kind.into(), digest(value))).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_registered_value_of_the_right_kind_is_found() {
        let r = MockRegistry::default();
        assert!(r.find(CredentialKind::Bearer, "t").is_none());
        let p = Principal::builder(CredentialKind::Bearer, "alice").build();
        assert!(r.register("t", p));
        assert_eq!(
            r.find(CredentialKind::Bearer, "t")
                .map(|p| p.subject().to_owned()),
            Some("alice".to_owned())
        );
        assert!(r.find(CredentialKind::Bearer, "u").is_none());
        assert!(r.find(CredentialKind::ApiKey, "t").is_none());
    }
}
