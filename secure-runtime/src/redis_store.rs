//! What the Redis-backed credential stores share: connecting, and bounding
//! every call by a timeout that turns into "unavailable" (fail closed).

use std::{future::Future, time::Duration};

use redis::aio::ConnectionManager;

use crate::{ConfigError, CredentialError, AUDIT_TARGET};

/// Connects to `url` (5 s at most), with automatic reconnection.
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager, ConfigError> {
    let client = redis::Client::open(url).map_err(|_| ConfigError::new("invalid REDIS_URL"))?;
    tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
        .await
        .map_err(|_| ConfigError::new("Redis did not answer within 5 s"))?
        .map_err(|_| ConfigError::new("cannot connect to Redis"))
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
