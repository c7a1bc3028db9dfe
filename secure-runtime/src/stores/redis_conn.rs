//! What the Redis-backed credential stores share: connecting, and bounding
//! every call by a timeout that turns into "unavailable" (fail closed).

use std::{future::Future, sync::Arc, time::Duration};

use redis::aio::ConnectionManager;

use crate::{ConfigError, CredentialError, AUDIT_TARGET};

/// Connects to `url` (5 s at most), with automatic reconnection.
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager, ConfigError> {
    let client = redis::Client::open(url)
        .map_err(|e| ConfigError::store("REDIS_URL", "not a valid Redis URL", Some(Arc::new(e))))?;
    // The URL may hold a password: name the server by host and port only.
    let target = client.get_connection_info().addr().to_string();
    tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
        .await
        .map_err(|_| ConfigError::store(target.clone(), "did not answer within 5 s", None))?
        .map_err(|e| ConfigError::store(target, "cannot connect", Some(Arc::new(e))))
}

/// Runs one Redis call within `timeout`; an error or a timeout is logged once
/// and answered as [`CredentialError::Unavailable`] (503).
pub(crate) async fn bounded<T>(
    timeout: Duration,
    store: &'static str,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, CredentialError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        _ => {
            tracing::error!(target: AUDIT_TARGET, event = "store_unavailable", store);
            Err(CredentialError::Unavailable)
        }
    }
}
