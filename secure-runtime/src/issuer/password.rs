//! Password hashing with argon2id: OWASP parameters by default, PHC strings at
//! rest, off the async executor with bounded concurrency.

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};

use argon2::{
    password_hash::phc::{Output, ParamsString, Salt},
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher as _, Version,
};
use tokio::sync::Semaphore;

use crate::ConfigError;

/// The longest password accepted, in bytes. Longer input is refused before any
/// hashing work (an unbounded input is a denial-of-service lever).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why hashing or verification did not produce a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordError {
    /// The password does not match the hash (or the user does not exist: the
    /// caller cannot tell which).
    Mismatch,
    /// Longer than [`MAX_PASSWORD_BYTES`]: a 400, never hashed.
    TooLong,
    /// Every hashing slot stayed busy for the wait timeout: a 503.
    Busy,
    /// The stored hash is not a valid PHC string for argon2 (an operator
    /// error, logged; refused like a mismatch).
    BadHash,
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PasswordError::Mismatch => "password mismatch",
            PasswordError::TooLong => "password too long",
            PasswordError::Busy => "password hashing is saturated",
            PasswordError::BadHash => "stored hash is malformed",
        })
    }
}

impl std::error::Error for PasswordError {}

/// A successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The stored hash was made with other parameters (or another algorithm or
    /// version) than the configured ones: hash the password again and store
    /// the new PHC string (see [`PasswordHasher::hash`]).
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords with argon2id.
///
/// * Defaults to OWASP's current recommendation: m = 19 MiB, t = 2, p = 1.
/// * Runs on tokio's blocking pool, at most `concurrency` at once (default: the
///   number of cores); further callers wait at most `wait_timeout` (default
///   2 s) in a queue of at most `max_waiting` (default 8 × concurrency) and
///   then get [`PasswordError::Busy`]. Memory stays bounded by
///   `concurrency × m`.
/// * Passwords are compared exactly as given (no truncation, no
///   normalisation); at most [`MAX_PASSWORD_BYTES`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use secure_runtime::{PasswordError, PasswordHasher};
/// let hasher = PasswordHasher::with_params(1024, 1, 1).unwrap(); // small, for the doctest
/// let phc = hasher.hash("correct horse battery staple").await.unwrap();
/// assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
/// assert!(!hasher.verify("correct horse battery staple", &phc).await.unwrap().needs_rehash);
/// assert_eq!(hasher.verify("wrong", &phc).await, Err(PasswordError::Mismatch));
/// // Hashes made with other parameters still verify, and ask to be upgraded:
/// let stronger = PasswordHasher::with_params(2048, 1, 1).unwrap();
/// assert!(stronger.verify("correct horse battery staple", &phc).await.unwrap().needs_rehash);
/// # });
/// ```
#[derive(Clone)]
pub struct PasswordHasher(Arc<Inner>);

struct Inner {
    params: Params,
    concurrency: usize,
    running: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    wait_timeout: Duration,
    /// A hash of a random password, made when the hasher is built: unknown
    /// users are verified against it, so they cost the same work as a wrong
    /// password (from the very first login on).
    dummy: Arc<OnceLock<String>>,
    /// Reusable argon2 working memory, one buffer per hashing slot.
    memory: std::sync::Mutex<Vec<Vec<Block>>>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost", &self.0.params.m_cost())
            .field("t_cost", &self.0.params.t_cost())
            .field("p_cost", &self.0.params.p_cost())
            .finish_non_exhaustive()
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl PasswordHasher {
    /// OWASP's parameters (argon2id, m = 19456 KiB, t = 2, p = 1).
    pub fn new() -> Self {
        Self::build(Params::default(), cores(), Duration::from_secs(2))
    }

    /// Custom parameters: `m_kib` KiB of memory, `t` passes, `p` lanes.
    pub fn with_params(m_kib: u32, t: u32, p: u32) -> Result<Self, ConfigError> {
        let params = Params::new(m_kib, t, p, None)
            .map_err(|_| ConfigError::new("invalid argon2 parameters"))?;
        Ok(Self::build(params, cores(), Duration::from_secs(2)))
    }

    /// At most `n` hashes at once (at least 1); the waiting queue holds 8 × `n`.
    pub fn concurrency(self, n: usize) -> Self {
        Self::build_with(
            self.0.params.clone(),
            n,
            self.0.wait_timeout,
            self.0.dummy.clone(),
        )
    }

    /// How long a caller waits for a hashing slot before [`PasswordError::Busy`].
    pub fn wait_timeout(self, d: Duration) -> Self {
        Self::build_with(
            self.0.params.clone(),
            self.0.concurrency,
            d,
            self.0.dummy.clone(),
        )
    }

    fn build(params: Params, concurrency: usize, wait_timeout: Duration) -> Self {
        Self::build_with(params, concurrency, wait_timeout, Arc::new(OnceLock::new()))
    }

    fn build_with(
        params: Params,
        concurrency: usize,
        wait_timeout: Duration,
        dummy: Arc<OnceLock<String>>,
    ) -> Self {
        let concurrency = concurrency.max(1);
        if dummy.get().is_none() {
            let mut random = [0u8; 32];
            if getrandom::fill(&mut random).is_ok() {
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                if let Ok(h) = argon.hash_password(&random) {
                    let _ = dummy.set(h.to_string());
                }
            }
        }
        PasswordHasher(Arc::new(Inner {
            params,
            concurrency,
            running: Arc::new(Semaphore::new(concurrency)),
            waiting: Arc::new(Semaphore::new(concurrency.saturating_mul(8))),
            wait_timeout,
            dummy,
            memory: std::sync::Mutex::new(Vec::new()),
        }))
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.0.params.clone())
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let queued = self
            .0
            .waiting
            .clone()
            .try_acquire_owned()
            .map_err(|_| PasswordError::Busy)?;
        let slot =
            tokio::time::timeout(self.0.wait_timeout, self.0.running.clone().acquire_owned())
                .await
                .map_err(|_| PasswordError::Busy)?
                .map_err(|_| PasswordError::Busy)?;
        let this = self.clone();
        // The permits move into the blocking task: a caller that gives up (a
        // client that disconnects) does not free the slot while argon2 runs.
        tokio::task::spawn_blocking(move || {
            let out = work(&this);
            drop(slot);
            drop(queued);
            out
        })
        .await
        .map_err(|_| PasswordError::Busy)
    }

    /// Runs `f` with argon2 working memory of `blocks` blocks: a buffer of the
    /// pool (one per hashing slot, reused), or a fresh one for hashes made
    /// with larger parameters. Reusing the buffers keeps memory at
    /// `concurrency × m` however many logins come: allocating and freeing
    /// 19 MiB per login makes glibc keep freed blocks resident (measured: a
    /// login storm grew RSS to ~400 MiB; see BENCHMARKS.md).
    fn with_memory<T>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let standard = self.0.params.block_count();
        let pooled = self
            .0
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let mut buf = match pooled {
            Some(b) if b.len() >= blocks => b,
            _ => vec![Block::default(); blocks.max(standard)],
        };
        let out = f(&mut buf[..blocks]);
        if buf.len() == standard {
            let mut pool = self.0.memory.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < self.0.concurrency {
                pool.push(buf);
            }
        }
        out
    }

    fn hash_blocking(&self, pwd: &[u8]) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|_| PasswordError::Busy)?;
        let mut out = [0u8; 32];
        let argon = self.argon();
        self.with_memory(self.0.params.block_count(), |mem| {
            argon.hash_password_into_with_memory(pwd, &salt, &mut out, mem)
        })
        .map_err(|_| PasswordError::BadHash)?;
        let hash = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.0.params).map_err(|_| PasswordError::BadHash)?,
            salt: Some(Salt::new(&salt).map_err(|_| PasswordError::BadHash)?),
            hash: Some(Output::new(&out).map_err(|_| PasswordError::BadHash)?),
        };
        Ok(hash.to_string())
    }

    fn verify_blocking(&self, pwd: &[u8], phc: &str) -> Result<Verified, PasswordError> {
        let hash = PasswordHash::new(phc).map_err(|_| PasswordError::BadHash)?;
        // The stored hash's own algorithm, version and parameters are used.
        let algorithm =
            Algorithm::try_from(hash.algorithm.as_str()).map_err(|_| PasswordError::BadHash)?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).map_err(|_| PasswordError::BadHash)?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).map_err(|_| PasswordError::BadHash)?;
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return Err(PasswordError::BadHash);
        };
        let mut out = vec![0u8; expected.len()];
        let argon = Argon2::new(algorithm, version, params.clone());
        self.with_memory(params.block_count(), |mem| {
            argon.hash_password_into_with_memory(pwd, salt.as_ref(), &mut out, mem)
        })
        .map_err(|_| PasswordError::BadHash)?;
        let computed = Output::new(&out).map_err(|_| PasswordError::BadHash)?;
        // `Output` compares in constant time.
        if computed != *expected {
            return Err(PasswordError::Mismatch);
        }
        let current = &self.0.params;
        let same_params = params.m_cost() == current.m_cost()
            && params.t_cost() == current.t_cost()
            && params.p_cost() == current.p_cost();
        let same_alg = algorithm == Algorithm::Argon2id && version == Version::V0x13;
        Ok(Verified {
            needs_rehash: !(same_params && same_alg),
        })
    }

    /// Hashes `password` with a fresh random salt into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        let pwd = password.as_bytes().to_vec();
        self.run(move |h| h.hash_blocking(&pwd)).await?
    }

    /// Verifies `password` against a PHC string made by any argon2 variant and
    /// parameters; reports whether it should be re-hashed.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<Verified, PasswordError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        let pwd = password.as_bytes().to_vec();
        let phc = phc.to_owned();
        self.run(move |h| h.verify_blocking(&pwd, &phc)).await?
    }

    /// Spends the work of one verification and fails: used for unknown or
    /// disabled accounts so that they cannot be told apart by timing.
    pub async fn verify_dummy(&self, password: &str) -> PasswordError {
        let Some(dummy) = self.0.dummy.get().cloned() else {
            // No OS randomness at construction: refuse rather than answer faster.
            return PasswordError::Busy;
        };
        match self.verify(password, &dummy).await {
            Err(PasswordError::TooLong) => PasswordError::TooLong,
            Err(PasswordError::Busy) => PasswordError::Busy,
            _ => PasswordError::Mismatch,
        }
    }
}

/// A breached-password check: `true` for a password that must not be used.
type BreachedCheck = dyn Fn(&str) -> bool + Send + Sync;

/// Rules for new passwords (registration, change), following NIST SP 800-63B:
/// a minimum length, a maximum far above it, no composition rules, and an
/// optional check against breached passwords.
///
/// ```
/// use secure_runtime::{PasswordPolicy, PolicyViolation};
/// let policy = PasswordPolicy::default().breached(|p: &str| p == "password1234");
/// assert_eq!(policy.check("short"), Err(PolicyViolation::TooShort { min: 12 }));
/// assert_eq!(policy.check("password1234"), Err(PolicyViolation::Breached));
/// assert!(policy.check("a long enough passphrase").is_ok());
/// ```
#[derive(Clone)]
pub struct PasswordPolicy {
    min_chars: usize,
    breached: Option<Arc<BreachedCheck>>,
}

impl fmt::Debug for PasswordPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordPolicy")
            .field("min_chars", &self.min_chars)
            .finish_non_exhaustive()
    }
}

/// Why a new password is refused; each answers a 4xx with this text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyViolation {
    /// Fewer characters than the minimum.
    TooShort {
        /// The minimum, in characters.
        min: usize,
    },
    /// Over [`MAX_PASSWORD_BYTES`].
    TooLong,
    /// Found by the breached-password check.
    Breached,
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyViolation::TooShort { min } => {
                write!(f, "the password must have at least {min} characters")
            }
            PolicyViolation::TooLong => write!(
                f,
                "the password must have at most {MAX_PASSWORD_BYTES} bytes"
            ),
            PolicyViolation::Breached => {
                f.write_str("this password appears in a list of breached passwords")
            }
        }
    }
}

impl Default for PasswordPolicy {
    /// At least 12 characters (OWASP ASVS 6.2.1), at most 1 KiB.
    fn default() -> Self {
        PasswordPolicy {
            min_chars: 12,
            breached: None,
        }
    }
}

impl PasswordPolicy {
    /// Sets the minimum length in characters.
    pub fn min_chars(mut self, n: usize) -> Self {
        self.min_chars = n;
        self
    }
    /// A breached-password check (e.g. a k-anonymity lookup, or a local list):
    /// returns `true` for a password that must not be used.
    pub fn breached(mut self, check: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.breached = Some(Arc::new(check));
        self
    }
    /// Checks a new password.
    pub fn check(&self, password: &str) -> Result<(), PolicyViolation> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PolicyViolation::TooLong);
        }
        if password.chars().count() < self.min_chars {
            return Err(PolicyViolation::TooShort {
                min: self.min_chars,
            });
        }
        if self.breached.as_ref().is_some_and(|b| b(password)) {
            return Err(PolicyViolation::Breached);
        }
        Ok(())
    }
}
