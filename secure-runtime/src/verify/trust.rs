//! Which certificate authorities the discovery and JWKS fetches trust.

use std::{sync::OnceLock, time::Duration};

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::{model::audit::AUDIT_TARGET, ConfigError};

/// The certificate authorities that https fetches of discovery documents
/// and JWKS trust.
///
/// * [`system`](Self::system) (the default): the operating system's trust
///   store (on Linux the CA bundle, honouring `SSL_CERT_FILE` and
///   `SSL_CERT_DIR`), so that a CA the administrator installed works; where
///   the store is empty or unreadable, Mozilla's list, with a warning.
/// * [`mozilla`](Self::mozilla): Mozilla's list built into the binary.
/// * [`empty`](Self::empty): nothing but the CAs added with
///   [`add_ca_pem`](Self::add_ca_pem) — an internal provider with a private
///   CA, trusted for nothing else.
///
/// Every fetch stays https-only (plain http only to loopback), without
/// redirects, within 5 s and 1 MiB.
///
/// ```
/// use secure_runtime::HttpsTrust;
/// // A CA certificate in PEM, e.g. read from a file:
/// # const CA: &[u8] = b"\
/// # -----BEGIN CERTIFICATE-----\n\
/// # MIIBojCCAUmgAwIBAgIUJjn94g2TbNPmWzNefRvXCfm9T5QwCgYIKoZIzj0EAwIw\n\
/// # HjEcMBoGA1UEAwwTcG9lbS1zZWN1cmUgdGVzdCBDQTAgFw0yNjExMzAyMDM5MzZa\n\
/// # GA8yMTI2MTEwNjIwMzkzNlowHjEcMBoGA1UEAwwTcG9lbS1zZWN1cmUgdGVzdCBD\n\
/// # QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGy5kg1TLpC9IfH45eK+nmttTKqY\n\
/// # ea37zovdyWf146vyYjlrwF/uDZgQh5QHh8bWDhtwX4AOzt0b/6Zqy+OUavOjYzBh\n\
/// # MB0GA1UdDgQWBBTGI3Nt/rqI0xgQuYAybTADTiiwuDAfBgNVHSMEGDAWgBTGI3Nt\n\
/// # /rqI0xgQuYAybTADTiiwuDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIB\n\
/// # BjAKBggqhkjOPQQDAgNHADBEAiAiWEngqeDe7+TnkER71nCuA+MJ3SHUDExaCGRS\n\
/// # KNzUkwIgZMlExPyC8DVnHZTAneqeKznIYWNwfTebHCCFuwGC6bM=\n\
/// # -----END CERTIFICATE-----\n";
/// // The system's CAs plus the company's private one:
/// let trust = HttpsTrust::system().add_ca_pem(CA).unwrap();
/// // Only the private CA:
/// let strict = HttpsTrust::empty().add_ca_pem(CA).unwrap();
/// # let _ = (trust, strict);
/// assert!(HttpsTrust::system().add_ca_pem(b"not a certificate").is_err());
/// ```
#[derive(Clone)]
pub struct HttpsTrust {
    roots: Roots,
    added: Vec<Certificate<'static>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Roots {
    System,
    Mozilla,
    Empty,
}

impl std::fmt::Debug for HttpsTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsTrust")
            .field("roots", &self.roots)
            .field("added_cas", &self.added.len())
            .finish()
    }
}

impl Default for HttpsTrust {
    /// [`HttpsTrust::system`].
    fn default() -> Self {
        Self::system()
    }
}

/// The system store, read once per process (DER certificates).
fn system_store() -> &'static [Certificate<'static>] {
    static STORE: OnceLock<Vec<Certificate<'static>>> = OnceLock::new();
    STORE.get_or_init(|| {
        rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect()
    })
}

impl HttpsTrust {
    /// The operating system's trust store (the default).
    pub fn system() -> Self {
        HttpsTrust {
            roots: Roots::System,
            added: Vec::new(),
        }
    }

    /// Mozilla's CA list, built in. It cannot be combined with
    /// [`add_ca_pem`](Self::add_ca_pem): use [`system`](Self::system) or
    /// [`empty`](Self::empty) for that.
    pub fn mozilla() -> Self {
        HttpsTrust {
            roots: Roots::Mozilla,
            added: Vec::new(),
        }
    }

    /// No CA at all until some are added with [`add_ca_pem`](Self::add_ca_pem).
    pub fn empty() -> Self {
        HttpsTrust {
            roots: Roots::Empty,
            added: Vec::new(),
        }
    }

    /// Also trusts the CA certificate(s) in `pem` (every `CERTIFICATE`
    /// block; other blocks, such as keys, are refused).
    pub fn add_ca_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        if self.roots == Roots::Mozilla {
            return Err(ConfigError::new(
                "a CA cannot be added to Mozilla's built-in list: start from \
                 HttpsTrust::system() or HttpsTrust::empty()",
            ));
        }
        let mut found = 0;
        for item in ureq::tls::parse_pem(pem) {
            match item {
                Ok(PemItem::Certificate(c)) => {
                    self.added.push(c);
                    found += 1;
                }
                Ok(_) => {
                    return Err(ConfigError::new(
                        "the CA PEM holds something other than certificates (a key?)",
                    ))
                }
                Err(_) => return Err(ConfigError::new("the CA PEM is not valid PEM")),
            }
        }
        if found == 0 {
            return Err(ConfigError::new("the CA PEM holds no certificate"));
        }
        Ok(self)
    }

    fn root_certs(&self) -> RootCerts {
        let base: &[Certificate<'static>] = match self.roots {
            Roots::Mozilla => return RootCerts::WebPki,
            Roots::Empty => &[],
            Roots::System => {
                let store = system_store();
                if store.is_empty() && self.added.is_empty() {
                    tracing::warn!(
                        target: AUDIT_TARGET,
                        event = "system_trust_store_empty",
                        "no CA in the system trust store: using Mozilla's built-in list"
                    );
                    return RootCerts::WebPki;
                }
                store
            }
        };
        RootCerts::new_with_certs(&[base, self.added.as_slice()].concat())
    }

    /// An agent for the discovery and JWKS fetches: these roots, 5 s, no
    /// redirects, HTTP errors as errors.
    pub(crate) fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .max_redirects(0)
            .http_status_as_error(true)
            .tls_config(TlsConfig::builder().root_certs(self.root_certs()).build())
            .build()
            .into()
    }
}
