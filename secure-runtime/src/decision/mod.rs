//! Layer 4, the decision: one state machine that authenticates, checks
//! revocation, applies the rate limit, the grants and the custom check, in
//! that order, polling each store's [`Answer`](crate::Answer).

pub(crate) mod rate;
