//! The rate-limit model shared by the decision and the limiters: what is
//! counted ([`PartitionKey`], [`RateQuery`]), what a limiter answers
//! ([`RateOutcome`]), the [`RateLimiter`] extension point, and the IETF
//! `RateLimit` header fields ([`RateStatus`]).

use std::{fmt, hash::Hasher, net::IpAddr, sync::Arc, time::Duration};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::model::{answer::Answer, policy::Rate};

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

    /// The value an allow-list of keys is compared with: an authenticated
    /// subject or an API key id, never a custom key's value (which may come
    /// from the request).
    pub(crate) fn allow_value(&self) -> Option<&str> {
        match *self {
            PartitionKey::Ip(_) | PartitionKey::Custom(_) => None,
            PartitionKey::User(v) | PartitionKey::ApiKey(v) | PartitionKey::IpUser(_, v) => Some(v),
        }
    }

    pub(crate) fn to_owned_key(self) -> OwnedPartitionKey {
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
pub(crate) enum OwnedPartitionKey {
    Ip(Option<IpAddr>),
    User(Box<str>),
    ApiKey(Box<str>),
    IpUser(Option<IpAddr>, Box<str>),
    Custom(Box<str>),
}

impl OwnedPartitionKey {
    pub(crate) fn as_key(&self) -> PartitionKey<'_> {
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
/// Implemented by [`MemoryRateLimiter`](crate::MemoryRateLimiter) and, with the `redis` feature,
/// `RedisRateLimiter`. A custom implementation must be exact under
/// concurrency (check-and-record is one atomic step) and must never block:
/// bound every I/O with a timeout and return [`LimiterUnavailable`] (or admit,
/// when configured to fail open).
///
/// ```
/// use std::time::Duration;
/// use secure_runtime::{Answer, LimiterUnavailable, RateOutcome, RateLimiter, RateQuery};
///
/// /// Admits everything (what a test might install).
/// struct Unlimited;
/// impl RateLimiter for Unlimited {
///     fn check<'a>(&'a self, q: RateQuery<'a>) -> Answer<'a, Result<RateOutcome, LimiterUnavailable>> {
///         Answer::Ready(Ok(RateOutcome { allowed: true, remaining: q.rate.burst(), reset_after: Duration::ZERO }))
///     }
///     fn refund<'a>(&'a self, _q: RateQuery<'a>) -> Answer<'a, Result<(), LimiterUnavailable>> {
///         Answer::Ready(Ok(()))
///     }
/// }
/// ```
pub trait RateLimiter: Send + Sync + 'static {
    /// Checks one request and, when it is admitted, records it: at once
    /// ([`Answer::Ready`], an in-memory limiter) or after I/O.
    fn check<'a>(
        &'a self,
        query: RateQuery<'a>,
    ) -> Answer<'a, Result<RateOutcome, LimiterUnavailable>>;

    /// Gives back one admission recorded by [`check`](Self::check) for the
    /// same query (a [`FailureLimit`](crate::FailureLimit) reservation that
    /// turned out to be a success).
    fn refund<'a>(&'a self, query: RateQuery<'a>) -> Answer<'a, Result<(), LimiterUnavailable>>;
}

impl<T: RateLimiter + ?Sized> RateLimiter for Arc<T> {
    fn check<'a>(
        &'a self,
        query: RateQuery<'a>,
    ) -> Answer<'a, Result<RateOutcome, LimiterUnavailable>> {
        (**self).check(query)
    }
    fn refund<'a>(&'a self, query: RateQuery<'a>) -> Answer<'a, Result<(), LimiterUnavailable>> {
        (**self).refund(query)
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
pub(crate) fn policy_name(name: &'static str) -> &'static str {
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
