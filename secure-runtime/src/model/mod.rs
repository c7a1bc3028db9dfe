//! Layer 1, the model: what a declaration requires ([`Policy`]), who the
//! caller is ([`Principal`]), why a request is refused ([`AuthRejection`]),
//! the scope catalogue, the rate-limit model and configuration errors.
//! Plain data and pure functions: no I/O, no web framework.

pub(crate) mod answer;
pub(crate) mod audit;
pub(crate) mod catalogue;
pub(crate) mod config;
pub(crate) mod policy;
pub(crate) mod principal;
pub(crate) mod rate;
pub(crate) mod rejection;
pub(crate) mod rule;
pub(crate) mod secrets;
pub(crate) mod suggest;
