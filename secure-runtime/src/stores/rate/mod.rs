//! Rate limiting: the [`RateLimiter`] extension point, the GCRA limiters
//! (in memory, and in Redis with the `redis` feature), failure-driven limits
//! for logins, and the IETF `RateLimit` header fields.
//!
//! # Model
//!
//! Every `#[secure(rate = ...)]` / `#[public(rate = ...)]` declaration owns a
//! *bucket* (its policy id, or the `rate_group` it names). Inside a bucket,
//! requests are counted per *partition key* ([`PartitionKey`]: client IP,
//! subject, API key, IP + subject, or a custom string). The algorithm is GCRA:
//! `"5/min"` admits a burst of 5, then one request every 12 s; `burst = N`
//! changes the burst, not the rate.
//!
//! # Refusals
//!
//! A refused request gets a 429 `application/problem+json` response with
//! `Retry-After` (whole seconds, rounded up, so never earlier than the real
//! next admission) and the `RateLimit-Policy` / `RateLimit` fields of
//! draft-ietf-httpapi-ratelimit-headers-11:
//!
//! ```text
//! RateLimit-Policy: "default";q=5;w=60
//! RateLimit: "default";r=0;t=12
//! ```
//!
//! `q`/`w` are the declared count and period; `r` is the number of requests
//! that would be admitted right now, and `t` the seconds until `r` grows by
//! one (on a refusal: equal to `Retry-After`). The policy name is the
//! `rate_group` when there is one, else `"default"`. With
//! [`SecurityBuilder::rate_limit_headers`](crate::SecurityBuilder::rate_limit_headers)
//! every response of a limited route carries the two fields.
//!
//! # Operations
//!
//! On the [`SecurityBuilder`](crate::SecurityBuilder):
//! [`rate_limiter`](crate::SecurityBuilder::rate_limiter) (memory by default,
//! [`RedisRateLimiter`] for several instances),
//! [`trusted_proxies`](crate::SecurityBuilder::trusted_proxies),
//! [`rate_limit_allow_ips`](crate::SecurityBuilder::rate_limit_allow_ips) and
//! [`rate_limit_allow_keys`](crate::SecurityBuilder::rate_limit_allow_keys)
//! (allow-lists that bypass every limit), and
//! [`rate_limit_dry_run`](crate::SecurityBuilder::rate_limit_dry_run) (log
//! what would be refused, refuse nothing).

mod clock;
mod gcra;
mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::{RedisRateLimiter, RedisRateLimiterBuilder};
pub(crate) use clock::Clock;
pub use clock::ManualClock;
pub use memory::MemoryRateLimiter;
