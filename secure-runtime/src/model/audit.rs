//! The audit log's `tracing` target.

/// The audit target of poem-secure's `tracing` events: every refusal,
/// misconfiguration and store outage is logged under it, never a secret.
pub const AUDIT_TARGET: &str = "poem_secure::audit";
