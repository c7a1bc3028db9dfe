//! Verifying a presented `Authorization` credential: the bearer verifier's
//! answer as a refusal, and HTTP Basic decoded and handed to its verifier.

use crate::{
    model::{
        answer::Answer,
        policy::Policy,
        principal::{CredentialKind, Principal},
        rejection::AuthRejection,
    },
    verify::{
        credentials::{BasicVerifier, CredentialError},
        jwt::VerifyError,
    },
};

use super::{
    audit::{refused, token_refused},
    failures,
};

pub(super) fn bearer_result(
    policy: &'static Policy,
    verified: Result<Principal, VerifyError>,
) -> Result<Principal, AuthRejection> {
    match verified {
        Ok(p) => Ok(p),
        Err(VerifyError::Token(e)) => Err(token_refused(policy, e)),
        Err(VerifyError::SourceDown) => Err(refused(
            policy,
            CredentialKind::Bearer,
            CredentialError::Unavailable,
        )),
    }
}

/// HTTP Basic: decodes `user:password` and asks the verifier. Always a
/// future: the verifier hashes (argon2) off the request thread, and the
/// decoded password must outlive the call.
pub(super) fn verify_basic<'r>(
    policy: &'static Policy,
    basic: &'r dyn BasicVerifier,
    b64: &'r str,
    attempt: Option<failures::Attempt<'r>>,
) -> Answer<'r, Result<Principal, AuthRejection>> {
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| s.contains(':'));
    let Some(decoded) = decoded else {
        return Answer::Ready(Err(refused(
            policy,
            CredentialKind::Basic,
            CredentialError::Invalid,
        )));
    };
    Answer::later(async move {
        let (user, pass) = decoded.split_once(':').unwrap_or_default();
        let verdict = match attempt {
            // Over budget: refused before the password is hashed.
            Some(attempt) => attempt.run(Some(user), || basic.verify(user, pass)).await?,
            None => basic.verify(user, pass).await,
        };
        verdict.map_err(|e| refused(policy, CredentialKind::Basic, e))
    })
}
