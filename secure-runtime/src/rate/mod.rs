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

use std::{
    collections::HashSet,
    fmt,
    hash::Hasher,
    net::IpAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use ipnet::IpNet;
use poem::http::{HeaderMap, HeaderName, HeaderValue};

use crate::{credentials::BoxFuture, error::AuthRejection, Rate, AUDIT_TARGET};

mod clock;
mod failure;
mod gcra;
mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::{RedisRateLimiter, RedisRateLimiterBuilder};
pub(crate) use clock::Clock;
pub use clock::ManualClock;
pub use failure::{FailureAttempt, FailureLimit, LoginAttempt, LoginLimits};
pub use memory::MemoryRateLimiter;

/// What a request is counted per, inside its bucket.
///
/// Borrowed, so building one costs nothing; limiters hash it (memory) or
/// digest it (Redis) and never store the raw value.
///
/// ```
/// use secure_runtime::PartitionKey;
/// let k = PartitionKey::IpUser(Some("192.0.2.1".parse().unwrap()), "alice");
/// assert_eq!(k.to_string(), "ip_user:192.0.2.1|alice");
/// assert_eq!(PartitionKey::Ip(None).to_string(), "ip:unknown");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionKey<'a> {
    /// The client IP (`None`: no IP peer; all such requests share a key).
    Ip(Option<IpAddr>),
    /// The authenticated subject.
    User(&'a str),
    /// The API key identifier.
    ApiKey(&'a str),
    /// The pair (client IP, subject or user name).
    IpUser(Option<IpAddr>, &'a str),
    /// A custom key (`rate_key = my_fn`).
    Custom(&'a str),
}

impl PartitionKey<'_> {
    /// An unambiguous byte encoding: a tag, then the fields. An address is
    /// a family byte and its octets; the string, always last, runs to the
    /// end.
    pub(crate) fn encode<S: Sink>(&self, out: &mut S) {
        fn ip<S: Sink>(out: &mut S, ip: Option<IpAddr>) {
            match ip {
                None => out.put(&[0]),
                Some(IpAddr::V4(v4)) => {
                    out.put(&[4]);
                    out.put(&v4.octets());
                }
                Some(IpAddr::V6(v6)) => {
                    out.put(&[6]);
                    out.put(&v6.octets());
                }
            }
        }
        match *self {
            PartitionKey::Ip(a) => {
                out.put(b"i");
                ip(out, a);
            }
            PartitionKey::User(u) => {
                out.put(b"u");
                out.put(u.as_bytes());
            }
            PartitionKey::ApiKey(k) => {
                out.put(b"k");
                out.put(k.as_bytes());
            }
            PartitionKey::IpUser(a, u) => {
                out.put(b"p");
                ip(out, a);
                out.put(u.as_bytes());
            }
            PartitionKey::Custom(c) => {
                out.put(b"c");
                out.put(c.as_bytes());
            }
        }
    }

    /// The value an allow-list of keys is compared with.
    fn allow_value(&self) -> Option<&str> {
        match *self {
            PartitionKey::Ip(_) => None,
            PartitionKey::User(v)
            | PartitionKey::ApiKey(v)
            | PartitionKey::IpUser(_, v)
            | PartitionKey::Custom(v) => Some(v),
        }
    }

    fn to_owned_key(self) -> OwnedPartitionKey {
        match self {
            PartitionKey::Ip(a) => OwnedPartitionKey::Ip(a),
            PartitionKey::User(u) => OwnedPartitionKey::User(u.into()),
            PartitionKey::ApiKey(k) => OwnedPartitionKey::ApiKey(k.into()),
            PartitionKey::IpUser(a, u) => OwnedPartitionKey::IpUser(a, u.into()),
            PartitionKey::Custom(c) => OwnedPartitionKey::Custom(c.into()),
        }
    }
}

impl fmt::Display for PartitionKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Ip(Option<IpAddr>);
        impl fmt::Display for Ip {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Some(ip) => ip.fmt(f),
                    None => f.write_str("unknown"),
                }
            }
        }
        match *self {
            PartitionKey::Ip(a) => write!(f, "ip:{}", Ip(a)),
            PartitionKey::User(u) => write!(f, "user:{u}"),
            PartitionKey::ApiKey(k) => write!(f, "api_key:{k}"),
            PartitionKey::IpUser(a, u) => write!(f, "ip_user:{}|{u}", Ip(a)),
            PartitionKey::Custom(c) => write!(f, "custom:{c}"),
        }
    }
}

/// An owned [`PartitionKey`], kept by a pending [`FailureAttempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedPartitionKey {
    Ip(Option<IpAddr>),
    User(Box<str>),
    ApiKey(Box<str>),
    IpUser(Option<IpAddr>, Box<str>),
    Custom(Box<str>),
}

impl OwnedPartitionKey {
    fn as_key(&self) -> PartitionKey<'_> {
        match self {
            OwnedPartitionKey::Ip(a) => PartitionKey::Ip(*a),
            OwnedPartitionKey::User(u) => PartitionKey::User(u),
            OwnedPartitionKey::ApiKey(k) => PartitionKey::ApiKey(k),
            OwnedPartitionKey::IpUser(a, u) => PartitionKey::IpUser(*a, u),
            OwnedPartitionKey::Custom(c) => PartitionKey::Custom(c),
        }
    }
}

/// One rate-limit check: which bucket, which key, at what rate.
///
/// ```
/// use secure_runtime::{PartitionKey, Rate, RateQuery};
/// let q = RateQuery {
///     bucket: "app::login",
///     key: PartitionKey::User("alice"),
///     rate: Rate::new(5, 60),
///     ip: None,
/// };
/// assert_eq!(q.rate.burst(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuery<'a> {
    /// The bucket: the declaration's id, or its `rate_group`. Two buckets
    /// never share a counter.
    pub bucket: &'a str,
    /// What the request is counted per.
    pub key: PartitionKey<'a>,
    /// The limit.
    pub rate: Rate,
    /// The client IP, for allow-lists and logs (whatever the key is).
    pub ip: Option<IpAddr>,
}

/// The outcome of one rate-limit check: admitted or not, and what the
/// `RateLimit` header fields report.
///
/// ```
/// use std::time::Duration;
/// use secure_runtime::RateOutcome;
/// let d = RateOutcome { allowed: false, remaining: 0, reset_after: Duration::from_millis(11_500) };
/// assert_eq!(d.retry_after(), Some(Duration::from_millis(11_500)));
/// assert_eq!(d.retry_after_secs(), Some(12)); // rounded up, never early
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateOutcome {
    /// Whether the request is admitted (and was counted).
    pub allowed: bool,
    /// How many more requests would be admitted right now.
    pub remaining: u32,
    /// Time until `remaining` grows by one; for a refusal, the time until the
    /// next request would be admitted.
    pub reset_after: Duration,
}

impl RateOutcome {
    /// For a refusal, the exact time until the next admission.
    pub fn retry_after(&self) -> Option<Duration> {
        (!self.allowed).then_some(self.reset_after)
    }
    /// For a refusal, `Retry-After` in whole seconds, rounded up (at least 1).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after().map(|d| ceil_secs(d).max(1))
    }
}

/// The admission part of a [`RateOutcome`].
///
/// ```
/// use std::time::Duration;
/// use secure_runtime::{RateDecision, RateOutcome};
/// let o = RateOutcome { allowed: false, remaining: 0, reset_after: Duration::from_secs(3) };
/// assert_eq!(o.decision(), RateDecision::Limited { retry_after: Duration::from_secs(3) });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Admitted.
    Allowed,
    /// Refused; the next admission is possible after this long.
    Limited {
        /// Time until the next request would be admitted.
        retry_after: Duration,
    },
}

impl RateOutcome {
    /// Admitted or refused, without the header details.
    pub fn decision(&self) -> RateDecision {
        match self.retry_after() {
            None => RateDecision::Allowed,
            Some(retry_after) => RateDecision::Limited { retry_after },
        }
    }
}

/// Whole seconds, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The limiter could not decide (e.g. Redis unreachable). [`crate::Security`]
/// answers 503 (fail closed); a limiter configured to fail open never returns
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterUnavailable;

impl fmt::Display for LimiterUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the rate limiter is unavailable")
    }
}

impl std::error::Error for LimiterUnavailable {}

/// Counts requests per (bucket, key) and decides admission.
///
/// Implemented by [`MemoryRateLimiter`] and, with the `redis` feature,
/// `RedisRateLimiter`. A custom implementation must be exact under
/// concurrency (check-and-record is one atomic step) and must never block:
/// bound every I/O with a timeout and return [`LimiterUnavailable`] (or admit,
/// when configured to fail open).
///
/// ```
/// use std::time::Duration;
/// use secure_runtime::{BoxFuture, LimiterUnavailable, RateOutcome, RateLimiter, RateQuery};
///
/// /// Admits everything (what a test might install).
/// struct Unlimited;
/// impl RateLimiter for Unlimited {
///     fn check<'a>(&'a self, q: &'a RateQuery<'a>) -> BoxFuture<'a, Result<RateOutcome, LimiterUnavailable>> {
///         let d = RateOutcome { allowed: true, remaining: q.rate.burst(), reset_after: Duration::ZERO };
///         Box::pin(async move { Ok(d) })
///     }
///     fn refund<'a>(&'a self, _q: &'a RateQuery<'a>) -> BoxFuture<'a, Result<(), LimiterUnavailable>> {
///         Box::pin(async { Ok(()) })
///     }
/// }
/// ```
pub trait RateLimiter: Send + Sync + 'static {
    /// Checks one request and, when it is admitted, records it.
    fn check<'a>(
        &'a self,
        query: &'a RateQuery<'a>,
    ) -> BoxFuture<'a, Result<RateOutcome, LimiterUnavailable>>;

    /// Gives back one admission recorded by [`check`](Self::check) for the
    /// same query (a [`FailureLimit`] reservation that turned out to be a
    /// success).
    fn refund<'a>(
        &'a self,
        query: &'a RateQuery<'a>,
    ) -> BoxFuture<'a, Result<(), LimiterUnavailable>>;

    /// The same as [`check`](Self::check) for limiters that decide without
    /// I/O, so that callers can skip boxing a future; `None` (the default):
    /// use `check`.
    fn check_sync(&self, query: &RateQuery<'_>) -> Option<Result<RateOutcome, LimiterUnavailable>> {
        let _ = query;
        None
    }
}

impl<T: RateLimiter + ?Sized> RateLimiter for Arc<T> {
    fn check<'a>(
        &'a self,
        query: &'a RateQuery<'a>,
    ) -> BoxFuture<'a, Result<RateOutcome, LimiterUnavailable>> {
        (**self).check(query)
    }
    fn refund<'a>(
        &'a self,
        query: &'a RateQuery<'a>,
    ) -> BoxFuture<'a, Result<(), LimiterUnavailable>> {
        (**self).refund(query)
    }
    fn check_sync(&self, query: &RateQuery<'_>) -> Option<Result<RateOutcome, LimiterUnavailable>> {
        (**self).check_sync(query)
    }
}

/// The state of one limit as the `RateLimit` header fields report it
/// (draft-ietf-httpapi-ratelimit-headers-11).
///
/// ```
/// use std::time::Duration;
/// use secure_runtime::{Rate, RateOutcome, RateStatus};
/// let d = RateOutcome { allowed: true, remaining: 4, reset_after: Duration::from_millis(11_200) };
/// let s = RateStatus::new("default", Rate::new(5, 60), &d);
/// assert_eq!(s.policy_header().unwrap(), "\"default\";q=5;w=60");
/// assert_eq!(s.limit_header().unwrap(), "\"default\";r=4;t=12");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    /// The policy name: letters, digits and `_ - . : /` only, else
    /// `"default"`.
    pub policy: &'static str,
    /// `q`: the declared count.
    pub quota: u32,
    /// `w`: the declared period in seconds.
    pub window_secs: u32,
    /// `r`: requests that would be admitted right now.
    pub remaining: u32,
    /// `t`: seconds (rounded up) until `r` grows by one.
    pub reset_secs: u64,
}

impl RateStatus {
    /// The status of `decision` under the limit `rate` named `policy`.
    pub fn new(policy: &'static str, rate: Rate, decision: &RateOutcome) -> RateStatus {
        RateStatus {
            policy: policy_name(policy),
            quota: rate.count(),
            window_secs: rate.period_secs(),
            remaining: decision.remaining,
            reset_secs: ceil_secs(decision.reset_after),
        }
    }
    /// `RateLimit-Policy: "name";q=5;w=60`.
    pub fn policy_header(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "\"{}\";q={};w={}",
            self.policy, self.quota, self.window_secs
        ))
        .ok()
    }
    /// `RateLimit: "name";r=0;t=12`.
    pub fn limit_header(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "\"{}\";r={};t={}",
            self.policy, self.remaining, self.reset_secs
        ))
        .ok()
    }
    /// Sets both fields on `headers` (replacing earlier values).
    pub fn apply(&self, headers: &mut HeaderMap) {
        if let Some(v) = self.policy_header() {
            headers.insert(RATELIMIT_POLICY.clone(), v);
        }
        if let Some(v) = self.limit_header() {
            headers.insert(RATELIMIT.clone(), v);
        }
    }
}

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// A name safe inside a structured-field string without escaping.
fn policy_name(name: &'static str) -> &'static str {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_-.:/".contains(&c));
    if ok {
        name
    } else {
        "default"
    }
}

/// Per-request slot through which the guard hands the route's rate status to
/// [`crate::SecurityEndpoint`], which adds the header fields to the response
/// (only installed when `rate_limit_headers(true)`).
#[derive(Clone, Default)]
pub(crate) struct RateSlot(pub(crate) Arc<OnceLock<RateStatus>>);

/// The rate-limit configuration of a [`crate::Security`].
pub(crate) struct RateSettings {
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) allow_ips: Vec<IpNet>,
    pub(crate) allow_keys: HashSet<Box<str>>,
    pub(crate) dry_run: bool,
    pub(crate) headers: bool,
}

/// What [`RateSettings::enforce`] did with an admitted request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Enforced {
    /// The request was counted by the limiter (and may be refunded).
    pub(crate) counted: bool,
    /// What the header fields report (`None`: exempt or unknown).
    pub(crate) status: Option<RateStatus>,
}

impl RateSettings {
    pub(crate) fn new(limiter: Arc<dyn RateLimiter>) -> RateSettings {
        RateSettings {
            limiter,
            allow_ips: Vec::new(),
            allow_keys: HashSet::new(),
            dry_run: false,
            headers: false,
        }
    }

    /// Whether an allow-list exempts the query.
    pub(crate) fn exempt(&self, q: &RateQuery<'_>) -> bool {
        let by_ip = !self.allow_ips.is_empty()
            && q.ip
                .map(|ip| ip.to_canonical())
                .is_some_and(|ip| self.allow_ips.iter().any(|n| n.contains(&ip)));
        let by_key = !self.allow_keys.is_empty()
            && q.key
                .allow_value()
                .is_some_and(|k| self.allow_keys.contains(k));
        by_ip || by_key
    }

    /// Applies allow-lists, the limiter and dry-run to one request: `Ok`
    /// admits, `Err` is the 429 (or the 503 of an unavailable limiter).
    pub(crate) async fn enforce(
        &self,
        q: &RateQuery<'_>,
        policy: &'static str,
        route: &str,
    ) -> Result<Enforced, AuthRejection> {
        if let Some(done) = self.enforce_now(q, policy, route) {
            return done;
        }
        let result = self.limiter.check(q).await;
        self.decide(q, result, policy, route)
    }

    /// [`enforce`](Self::enforce) without I/O; `None`, with nothing
    /// recorded, when the limiter needs I/O.
    pub(crate) fn enforce_now(
        &self,
        q: &RateQuery<'_>,
        policy: &'static str,
        route: &str,
    ) -> Option<Result<Enforced, AuthRejection>> {
        if self.exempt(q) {
            return Some(Ok(Enforced {
                counted: false,
                status: None,
            }));
        }
        let result = self.limiter.check_sync(q)?;
        Some(self.decide(q, result, policy, route))
    }

    fn decide(
        &self,
        q: &RateQuery<'_>,
        result: Result<RateOutcome, LimiterUnavailable>,
        policy: &'static str,
        route: &str,
    ) -> Result<Enforced, AuthRejection> {
        match result {
            Ok(d) => {
                let status = RateStatus::new(policy, q.rate, &d);
                if d.allowed {
                    return Ok(Enforced {
                        counted: true,
                        status: Some(status),
                    });
                }
                let retry = d.retry_after_secs().unwrap_or(1);
                if self.dry_run {
                    tracing::warn!(target: AUDIT_TARGET, event = "rate_limit_dry_run", route,
                        bucket = q.bucket, key = %q.key, retry_after_secs = retry,
                        "rate limit exceeded; admitted because dry-run is on");
                    return Ok(Enforced {
                        counted: false,
                        status: Some(status),
                    });
                }
                tracing::info!(target: AUDIT_TARGET, event = "rate_limited", route,
                    bucket = q.bucket, key = %q.key, retry_after_secs = retry);
                Err(AuthRejection::rate_limited_with(retry, status))
            }
            Err(LimiterUnavailable) => {
                if self.dry_run {
                    tracing::error!(target: AUDIT_TARGET, event = "limiter_unavailable", route,
                        bucket = q.bucket, "rate limiter unavailable; admitted because dry-run is on");
                    return Ok(Enforced {
                        counted: false,
                        status: None,
                    });
                }
                tracing::error!(target: AUDIT_TARGET, event = "limiter_unavailable", route,
                    bucket = q.bucket, "rate limiter unavailable; refusing (fail closed)");
                Err(AuthRejection::unavailable())
            }
        }
    }

    /// Gives back one admission counted by `enforce`.
    pub(crate) async fn refund(&self, q: &RateQuery<'_>) {
        if self.limiter.refund(q).await.is_err() {
            tracing::error!(target: AUDIT_TARGET, event = "limiter_unavailable", bucket = q.bucket,
                "could not refund a rate-limit reservation");
        }
    }
}

/// Where [`PartitionKey::encode`] writes.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A fixed stack buffer that notes when it overflows.
struct StackBuf {
    buf: [u8; 128],
    len: usize,
    overflow: bool,
}

impl Sink for StackBuf {
    fn put(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) if !self.overflow => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            _ => self.overflow = true,
        }
    }
}

/// A keyed 64-bit fingerprint (SipHash) of (bucket, key), hashed in one
/// call over their unambiguous encoding (a single long write is about twice
/// as fast as one write per field, and fewer bytes hash faster).
pub(crate) fn fingerprint(
    state: &std::hash::RandomState,
    bucket: &str,
    key: &PartitionKey<'_>,
) -> u64 {
    fn encode<S: Sink>(out: &mut S, bucket: &str, key: &PartitionKey<'_>) {
        // 0xFF never occurs in UTF-8: it ends the bucket unambiguously.
        out.put(bucket.as_bytes());
        out.put(&[0xff]);
        key.encode(out);
    }
    let mut h = std::hash::BuildHasher::build_hasher(state);
    let mut stack = StackBuf {
        buf: [0; 128],
        len: 0,
        overflow: false,
    };
    encode(&mut stack, bucket, key);
    if stack.overflow {
        let mut long = Vec::with_capacity(bucket.len() + 64);
        encode(&mut long, bucket, key);
        h.write(&long);
    } else {
        h.write(&stack.buf[..stack.len]);
    }
    h.finish()
}

/// A `tracing` subscriber that records events, for tests that assert logs.
#[cfg(test)]
pub(crate) mod capture {
    use std::{
        fmt::Debug,
        sync::{Arc, Mutex},
    };

    use tracing::{
        field::{Field, Visit},
        span, Event, Level, Metadata, Subscriber,
    };

    /// `(level, value of the "event" field)` of every event seen.
    #[derive(Clone, Default)]
    pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<(Level, String)>>>);

    impl Capture {
        /// Runs `f` with this subscriber as the thread's default.
        pub(crate) fn run<T>(&self, f: impl FnOnce() -> T) -> T {
            tracing::subscriber::with_default(self.clone(), f)
        }
        pub(crate) fn events(&self) -> Vec<(Level, String)> {
            self.0.lock().unwrap().clone()
        }
    }

    struct EventName(String);

    impl Visit for EventName {
        fn record_str(&mut self, f: &Field, v: &str) {
            if f.name() == "event" {
                self.0 = v.to_owned();
            }
        }
        fn record_debug(&mut self, f: &Field, v: &dyn Debug) {
            if f.name() == "event" {
                self.0 = format!("{v:?}");
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, e: &Event<'_>) {
            let mut name = EventName(String::new());
            e.record(&mut name);
            self.0.lock().unwrap().push((*e.metadata().level(), name.0));
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capture::Capture;
    use tracing::Level;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn spent(settings: &RateSettings) -> RateQuery<'static> {
        let q = RateQuery {
            bucket: "logged",
            key: PartitionKey::User("u"),
            rate: Rate::new(1, 60),
            ip: None,
        };
        assert!(block_on(settings.enforce(&q, "default", "r")).is_ok());
        q
    }

    #[test]
    fn dry_run_admits_and_logs_a_warning() {
        let mut s = RateSettings::new(Arc::new(MemoryRateLimiter::new()));
        s.dry_run = true;
        let q = spent(&s);
        let log = Capture::default();
        let e = log.run(|| block_on(s.enforce(&q, "default", "r"))).unwrap();
        assert!(!e.counted);
        assert_eq!(e.status.map(|st| st.remaining), Some(0));
        assert_eq!(
            log.events(),
            [(Level::WARN, "rate_limit_dry_run".to_owned())]
        );
    }

    #[test]
    fn enforcing_refuses_and_logs_at_info() {
        let s = RateSettings::new(Arc::new(MemoryRateLimiter::new()));
        let q = spent(&s);
        let log = Capture::default();
        let e = log
            .run(|| block_on(s.enforce(&q, "default", "r")))
            .unwrap_err();
        assert_eq!(e.status(), 429);
        assert_eq!(e.retry_after_secs(), Some(60));
        let st = e.rate_status().expect("RateLimit fields");
        assert_eq!(
            (st.quota, st.window_secs, st.remaining, st.reset_secs),
            (1, 60, 0, 60)
        );
        assert_eq!(log.events(), [(Level::INFO, "rate_limited".to_owned())]);
    }

    struct Down;
    impl RateLimiter for Down {
        fn check<'a>(
            &'a self,
            _: &'a RateQuery<'a>,
        ) -> BoxFuture<'a, Result<RateOutcome, LimiterUnavailable>> {
            Box::pin(async { Err(LimiterUnavailable) })
        }
        fn refund<'a>(
            &'a self,
            _: &'a RateQuery<'a>,
        ) -> BoxFuture<'a, Result<(), LimiterUnavailable>> {
            Box::pin(async { Err(LimiterUnavailable) })
        }
    }

    #[test]
    fn unavailable_limiter_fails_closed_with_503_and_an_error_log() {
        let s = RateSettings::new(Arc::new(Down));
        let q = RateQuery {
            bucket: "b",
            key: PartitionKey::Ip(None),
            rate: Rate::new(1, 1),
            ip: None,
        };
        let log = Capture::default();
        let e = log.run(|| block_on(s.enforce(&q, "default", "r")));
        assert_eq!(e.unwrap_err().status(), 503);
        assert_eq!(
            log.events(),
            [(Level::ERROR, "limiter_unavailable".to_owned())]
        );
        // Dry-run admits even then, still logging the error.
        let mut s = RateSettings::new(Arc::new(Down));
        s.dry_run = true;
        let log = Capture::default();
        assert!(log.run(|| block_on(s.enforce(&q, "default", "r"))).is_ok());
        assert_eq!(
            log.events(),
            [(Level::ERROR, "limiter_unavailable".to_owned())]
        );
    }

    #[test]
    fn policy_names_that_need_escaping_become_default() {
        assert_eq!(policy_name("login"), "login");
        assert_eq!(policy_name("app::handler"), "app::handler");
        assert_eq!(policy_name("a\"b"), "default");
        assert_eq!(policy_name(""), "default");
        assert_eq!(policy_name("naïve"), "default");
    }

    #[test]
    fn partition_encoding_is_unambiguous() {
        let enc = |k: PartitionKey<'_>| {
            let mut v = Vec::new();
            k.encode(&mut v);
            v
        };
        assert_ne!(enc(PartitionKey::User("a")), enc(PartitionKey::ApiKey("a")));
        assert_ne!(
            enc(PartitionKey::User("ab")),
            enc(PartitionKey::Custom("ab"))
        );
        assert_ne!(
            enc(PartitionKey::IpUser(None, "x")),
            enc(PartitionKey::IpUser(Some("0.0.0.0".parse().unwrap()), "x"))
        );
    }

    #[test]
    fn fingerprints_separate_buckets_and_keys_short_and_long() {
        let st = std::hash::RandomState::new();
        let long = "x".repeat(500);
        let long2 = format!("{}y", "x".repeat(499));
        let f = |b: &str, k: PartitionKey<'_>| fingerprint(&st, b, &k);
        assert_eq!(
            f("b", PartitionKey::User(&long)),
            f("b", PartitionKey::User(&long.clone()))
        );
        assert_ne!(
            f("b", PartitionKey::User(&long)),
            f("b", PartitionKey::User(&long2))
        );
        assert_ne!(
            f("b", PartitionKey::User("u")),
            f("c", PartitionKey::User("u"))
        );
        // The bucket/key boundary is unambiguous.
        assert_ne!(
            f("ab", PartitionKey::Custom("c")),
            f("a", PartitionKey::Custom("bc"))
        );
        assert_ne!(
            f("b", PartitionKey::User("u")),
            f("b", PartitionKey::ApiKey("u"))
        );
    }

    #[test]
    fn allow_keys_match_subject_api_key_and_custom_values() {
        let mut s = RateSettings::new(Arc::new(MemoryRateLimiter::new()));
        s.allow_keys.insert("svc-monitor".into());
        s.allow_ips.push("192.0.2.0/24".parse().unwrap());
        let q = |key, ip: Option<&str>| RateQuery {
            bucket: "b",
            key,
            rate: Rate::new(1, 60),
            ip: ip.map(|i| i.parse().unwrap()),
        };
        assert!(s.exempt(&q(PartitionKey::User("svc-monitor"), None)));
        assert!(s.exempt(&q(PartitionKey::Custom("svc-monitor"), None)));
        assert!(!s.exempt(&q(PartitionKey::User("alice"), Some("198.51.100.1"))));
        assert!(s.exempt(&q(PartitionKey::User("alice"), Some("192.0.2.77"))));
        assert!(s.exempt(&q(PartitionKey::Ip(None), Some("::ffff:192.0.2.1"))));
    }
}
