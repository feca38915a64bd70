//! How every gantry HTTP client is set up, so that they all trust the same roots.
//!
//! gantry runs in scratch images, on hosted runners and behind corporate proxies with private CAs.
//! The one decision: roots come from the system bundle when there is one (`SSL_CERT_FILE` and
//! `SSL_CERT_DIR` honoured), else from Mozilla's roots compiled in, so a scratch image without a
//! bundle still reaches public registries, and never from nowhere (a client that fails to build
//! cannot even speak plain HTTP). Extra CA files are added on top. Names resolve through hickory,
//! which reads `/etc/hosts` and `/etc/resolv.conf` without glibc's NSS modules.

#![warn(missing_docs)]

pub mod retry;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the trusted roots came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    /// The system bundle (or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    System,
    /// No system bundle was found: Mozilla's roots, compiled in.
    Embedded,
}

#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum HttpError {
    #[error("reading CA file {path}")]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA file {path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("CA file {path} is not valid PEM")]
    BadPem {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("building the HTTP client")]
    Build(#[source] reqwest::Error),
}

/// Trusted roots for TLS.
#[derive(Debug, Clone)]
pub struct Roots {
    /// The trusted certificates.
    pub certificates: Vec<reqwest::Certificate>,
    /// Where the roots other than the extra CA files came from.
    pub source: RootSource,
    /// How many of `certificates` came from extra CA files.
    pub extra: usize,
}

/// The system roots, else the embedded ones, plus every certificate in `extra_ca_files`.
pub fn roots(extra_ca_files: &[PathBuf]) -> Result<Roots, HttpError> {
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!("loading system CA certificates: {error}");
    }
    let mut certificates: Vec<reqwest::Certificate> = native
        .certs
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
        .collect();
    let source = if certificates.is_empty() {
        tracing::debug!("no system CA bundle found; trusting the embedded Mozilla roots");
        certificates = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok())
            .collect();
        RootSource::Embedded
    } else {
        RootSource::System
    };
    let mut extra = 0;
    for path in extra_ca_files {
        let added = read_pem_file(path)?;
        extra += added.len();
        certificates.extend(added);
    }
    Ok(Roots {
        certificates,
        source,
        extra,
    })
}

fn read_pem_file(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
    let pem = std::fs::read(path).map_err(|source| HttpError::ReadCa {
        path: path.to_owned(),
        source,
    })?;
    let certs =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| HttpError::BadPem {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(HttpError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// A client builder that trusts exactly `roots`, with gantry's user agent and timeouts.
pub fn client_builder(roots: &Roots, timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_certs_only(roots.certificates.iter().cloned())
        .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .timeout(timeout)
}

/// What went wrong with a request, for a person: the error and its causes on one line, each said
/// once. A name that does not resolve is said plainly (hickory's own message repeats its query
/// twice, in debug format).
pub fn explain(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if text.starts_with("dns error") {
            let mut rest = String::new();
            let mut cause = e.source();
            while let Some(c) = cause {
                rest.push_str(&c.to_string());
                cause = c.source();
            }
            let host = error.url().and_then(|u| u.host_str()).unwrap_or("the host");
            let why = if rest.contains("no records found") || rest.contains("NXDomain") {
                "DNS has no address for it".to_owned()
            } else if rest.is_empty() {
                "DNS error".to_owned()
            } else {
                format!("DNS: {}", rest.split(": ").next().unwrap_or(&rest))
            };
            parts.push(format!("{host} does not resolve ({why})"));
            break;
        }
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// A client that trusts exactly `roots`, with gantry's user agent and timeouts.
pub fn client(roots: &Roots, timeout: Duration) -> Result<reqwest::Client, HttpError> {
    client_builder(roots, timeout)
        .build()
        .map_err(HttpError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").expect("write");
        let err = roots(&[empty]).expect_err("must fail");
        assert!(matches!(err, HttpError::NoCertificate { .. }), "{err:?}");
        let missing = dir.path().join("missing.pem");
        assert!(matches!(roots(&[missing]), Err(HttpError::ReadCa { .. })));
    }
}
