//! Layer 3, the stores: rate limiters in memory and in Redis, and the Redis
//! connection every Redis-backed store shares.

pub(crate) mod rate;
#[cfg(feature = "redis")]
pub(crate) mod redis_conn;
