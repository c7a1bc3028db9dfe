//! Without the `testing` feature there are no mock credentials: this stub
//! never finds one (see `mocks.rs`), and compiles to nothing.

use super::Decision;
use crate::model::principal::{CredentialKind, Principal};

impl Decision<'_> {
    /// Always `None`: mock principals exist only with the `testing` feature.
    #[inline(always)]
    pub(super) fn mock(&self, _kind: CredentialKind, _value: &str) -> Option<Principal> {
        None
    }
}
