//! The decision's refusals, each logged once under the audit target, and
//! the grants (scopes, roles, permissions).

use crate::{
    model::{
        audit::AUDIT_TARGET,
        policy::Policy,
        principal::{CredentialKind, Principal},
        rejection::{AuthRejection, Denied, RejectionKind},
    },
    verify::{credentials::CredentialError, jwt::TokenError},
};

/// The caller's grants against the policy: `Ok(true)` when they pass but the
/// declaration's `check` must still run (top level, or the only way left to
/// meet an `any(...)`).
pub(super) fn grants(policy: &Policy, p: &Principal) -> Result<bool, AuthRejection> {
    if !policy.scopes().iter().all(|s| p.has_scope(s)) {
        tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id(),
            subject = p.subject(), reason = "missing scope");
        return Err(AuthRejection::insufficient_scope(policy.scopes()));
    }
    if !policy.roles().satisfied_by(p.roles()) {
        tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id(),
            subject = p.subject(), reason = "missing role");
        return Err(AuthRejection::new(RejectionKind::Forbidden));
    }
    if !policy.permissions().iter().all(|s| p.has_permission(s)) {
        tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id(),
            subject = p.subject(), reason = "missing permission");
        return Err(AuthRejection::new(RejectionKind::Forbidden));
    }
    let has_check = policy.check().is_some() || policy.check_name().is_some();
    if let Some(rule) = policy.rule() {
        let in_rule = rule.mentions_check();
        match rule.evaluate(p) {
            // Met without the check: a check inside the rule need not run.
            Ok(()) if in_rule => return Ok(false),
            Ok(()) => {}
            // Only the check can still meet the rule.
            Err(_) if in_rule && rule.met_if_check_passes(p) => return Ok(true),
            Err(unmet) => {
                tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id(),
                    subject = p.subject(), reason = "requirement not met", missing = %unmet);
                return Err(AuthRejection::unmet(&unmet));
            }
        }
    }
    Ok(has_check)
}

/// A request without credentials: allowed through on a public route only.
pub(super) fn unauthenticated(policy: &Policy) -> Result<(), AuthRejection> {
    if policy.is_public() {
        return Ok(());
    }
    tracing::info!(target: AUDIT_TARGET, event = "auth_required", route = policy.id(),
        reason = "no credentials");
    Err(AuthRejection::missing(policy.auth()))
}

pub(super) fn denied_by_check(policy: &Policy, p: &Principal, d: &Denied) {
    tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id(),
        subject = p.subject(), reason = d.reason());
}

pub(super) fn token_refused(policy: &Policy, e: TokenError) -> AuthRejection {
    tracing::info!(target: AUDIT_TARGET, event = "token_refused", route = policy.id(), reason = %e);
    AuthRejection::invalid(CredentialKind::Bearer, policy.auth())
}

pub(crate) fn misconfigured(policy: &Policy, what: &'static str) -> AuthRejection {
    tracing::error!(target: AUDIT_TARGET, event = "misconfigured", route = policy.id(), "{what}");
    AuthRejection::new(RejectionKind::Misconfigured)
}

pub(super) fn refused(policy: &Policy, kind: CredentialKind, e: CredentialError) -> AuthRejection {
    match e {
        CredentialError::Invalid => {
            tracing::info!(target: AUDIT_TARGET, event = "credential_refused", route = policy.id(), kind = ?kind);
            AuthRejection::invalid(kind, policy.auth())
        }
        CredentialError::Unavailable => {
            tracing::error!(target: AUDIT_TARGET, event = "store_unavailable", route = policy.id(), kind = ?kind);
            AuthRejection::unavailable()
        }
    }
}
