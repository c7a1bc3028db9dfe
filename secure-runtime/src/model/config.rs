//! [`ConfigError`]: what is wrong with a configuration, found at startup.

use std::{borrow::Cow, error::Error, fmt, sync::Arc};

/// The error type of a boxed underlying cause.
pub type BoxError = Arc<dyn Error + Send + Sync + 'static>;

/// A configuration mistake or an unreachable dependency found while building
/// a [`Security`](crate::Security), a verifier or a store — at startup, so
/// that a misconfigured service never starts serving.
///
/// The message names the setting, or the URL and the cause; the underlying
/// error, when there is one, is its [`source`](Error::source). Secrets never
/// appear in it: a Redis URL is shown without its password.
///
/// ```
/// use secure_runtime::{ConfigError, JwtConfig, Security};
/// let err = Security::builder().jwt(JwtConfig::hs256([1u8; 32]).unwrap()).build().unwrap_err();
/// assert!(matches!(err, ConfigError::Invalid(_)));
/// assert!(err.to_string().contains("issuer"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting is missing, malformed or out of range.
    Invalid(Cow<'static, str>),
    /// A document (discovery, JWKS) could not be fetched or read.
    Fetch {
        /// The URL that was asked.
        url: String,
        /// What went wrong, in words.
        cause: Cow<'static, str>,
        /// The underlying error, if any.
        source: Option<BoxError>,
    },
    /// A store (Redis) could not be reached or configured.
    Store {
        /// Where it was (a URL without credentials, or a host list).
        target: String,
        /// What went wrong, in words.
        cause: Cow<'static, str>,
        /// The underlying error, if any.
        source: Option<BoxError>,
    },
    /// The operating system's random source failed.
    Random,
}

impl ConfigError {
    pub(crate) fn new(msg: impl Into<Cow<'static, str>>) -> Self {
        ConfigError::Invalid(msg.into())
    }

    #[allow(dead_code)] // the discovery client's errors move here next
    pub(crate) fn fetch(
        url: impl Into<String>,
        cause: impl Into<Cow<'static, str>>,
        source: Option<BoxError>,
    ) -> Self {
        ConfigError::Fetch {
            url: url.into(),
            cause: cause.into(),
            source,
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn store(
        target: impl Into<String>,
        cause: impl Into<Cow<'static, str>>,
        source: Option<BoxError>,
    ) -> Self {
        ConfigError::Store {
            target: target.into(),
            cause: cause.into(),
            source,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("poem-secure configuration: ")?;
        match self {
            ConfigError::Invalid(msg) => f.write_str(msg),
            ConfigError::Fetch { url, cause, .. } => write!(f, "{url}: {cause}"),
            ConfigError::Store { target, cause, .. } => write!(f, "{target}: {cause}"),
            ConfigError::Random => f.write_str("the OS random source failed"),
        }
    }
}

impl Error for ConfigError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ConfigError::Fetch {
                source: Some(s), ..
            }
            | ConfigError::Store {
                source: Some(s), ..
            } => Some(&**s),
            _ => None,
        }
    }
}
