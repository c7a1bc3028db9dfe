//! What the Redis-backed credential stores share: bounding every call by a
//! timeout that turns into "unavailable" (fail closed). Connecting is
//! `redis_conn`'s.

use std::{future::Future, time::Duration};

use crate::{CredentialError, AUDIT_TARGET};

/// Runs one Redis call within `timeout`; an error or a timeout is logged once
/// and answered as [`CredentialError::Unavailable`] (503).
pub(crate) async fn bounded<T>(
    timeout: Duration,
    store: &'static str,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, CredentialError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            // The kind only: a message could quote a URL.
            tracing::error!(target: AUDIT_TARGET, event = "store_unavailable", store, kind = ?e.kind());
            Err(CredentialError::Unavailable)
        }
        Err(_) => {
            tracing::error!(target: AUDIT_TARGET, event = "store_unavailable", store, kind = "timeout");
            Err(CredentialError::Unavailable)
        }
    }
}
