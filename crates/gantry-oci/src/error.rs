//! What can go wrong talking to a registry, as variants a caller can act on.

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum OciError {
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error("{registry} refused the credentials ({status}){}\nhint: check the user name and token, and that the token may {action} {repository}", detail_suffix(.detail))]
    Unauthorized {
        registry: String,
        repository: String,
        action: &'static str,
        status: u16,
        detail: String,
    },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what}: expected digest {expected}, the content hashes to {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{method} {url} answered HTTP {status}{}", detail_suffix(.detail))]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    /// No answer: the connection failed or broke (`reason` has the causes, each once).
    #[error("{method} {url}: {reason}")]
    Http {
        method: String,
        url: String,
        reason: String,
    },
    #[error(
        "{host} answered an HTTPS request in plain HTTP\nhint: if this registry really serves plain HTTP, pass --insecure-registry {host}"
    )]
    PlainHttp { host: String },
    #[error("{what} is not a manifest gantry understands: {reason}")]
    InvalidManifest { what: String, reason: String },
    #[error("getting a token from {realm}: {reason}")]
    Token { realm: String, reason: String },
    #[error("{0}")]
    Protocol(String),
    #[error("building the image")]
    Build(#[source] std::io::Error),
    #[error(transparent)]
    Http2(#[from] gantry_http::HttpError),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl OciError {
    /// Whether the error says that something does not exist (as opposed to a failure to ask).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// A result with [`OciError`].
pub type Result<T, E = OciError> = std::result::Result<T, E>;
