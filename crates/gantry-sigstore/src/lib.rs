//! Sigstore verification for gantry, on the sigstore-rust crates (`sigstore-verify`,
//! `sigstore-trust-root`), which pass the sigstore-conformance suite.
//!
//! The one decision: the trusted root is always explicit. It comes from a file (no network at
//! all) or from the production root compiled into sigstore-trust-root; nothing here reaches the
//! network, so "offline" means offline. Identity policy is exact or a regular expression, for both
//! the identity (the certificate's SAN) and the issuer, and a mismatch names what was found.
//!
//! The OCI side (finding bundles and cosign's legacy signatures in a registry) builds on this.

use std::path::{Path, PathBuf};

use sigstore_verify::trust_root::{SIGSTORE_PRODUCTION_TRUSTED_ROOT, TrustedRoot};
use sigstore_verify::types::{Artifact, ArtifactDigest, Bundle, DerPublicKey, Sha256Hash};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy};

#[derive(Debug, thiserror::Error)]
pub enum SigstoreError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not a valid {expected}: {reason}")]
    Invalid {
        what: String,
        expected: &'static str,
        reason: String,
    },
    #[error("{0:?} is not a valid regular expression: {1}")]
    Regex(String, String),
    #[error("verification failed: {0}")]
    Verification(String),
    #[error("the certificate's identity is {found:?}, expected {expected}")]
    IdentityMismatch { expected: String, found: String },
    #[error("the certificate's issuer is {found:?}, expected {expected}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the bundle has no certificate identity to check against the policy")]
    NoIdentity,
}

type Result<T> = std::result::Result<T, SigstoreError>;

/// Where the trusted root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// A protobuf-specs `TrustedRoot` JSON file.
    File(PathBuf),
    /// The Sigstore public-good root compiled into gantry.
    Production,
}

/// Loads a trusted root without touching the network.
pub fn trusted_root(source: &RootSource) -> Result<TrustedRoot> {
    let (what, json) = match source {
        RootSource::File(path) => (path.display().to_string(), read(path)?),
        RootSource::Production => (
            "the embedded production root".to_owned(),
            SIGSTORE_PRODUCTION_TRUSTED_ROOT.to_owned(),
        ),
    };
    TrustedRoot::from_json(&json).map_err(|e| SigstoreError::Invalid {
        what,
        expected: "trusted root",
        reason: e.to_string(),
    })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| SigstoreError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Matches an identity or issuer exactly or by a regular expression (anchored: the whole value
/// must match).
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    Regex(regex::Regex),
}

impl Matcher {
    pub fn exact(text: impl Into<String>) -> Self {
        Self::Exact(text.into())
    }

    /// A regular expression the whole value must match.
    pub fn regex(pattern: &str) -> Result<Self> {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(Self::Regex)
            .map_err(|e| SigstoreError::Regex(pattern.to_owned(), e.to_string()))
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(expected) => expected == value,
            Self::Regex(regex) => regex.is_match(value),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(text) => write!(f, "{text:?}"),
            Self::Regex(regex) => {
                let pattern = regex.as_str();
                let inner = pattern
                    .strip_prefix("^(?:")
                    .and_then(|p| p.strip_suffix(")$"))
                    .unwrap_or(pattern);
                write!(f, "a match of /{inner}/")
            }
        }
    }
}

/// Who must have signed.
#[derive(Debug, Clone)]
pub enum Signer {
    /// Keyless: a Fulcio certificate for this identity from this issuer.
    Identity { identity: Matcher, issuer: Matcher },
    /// A key the verifier holds (PEM `PUBLIC KEY`).
    Key(DerPublicKey),
}

impl Signer {
    /// A public key from a PEM file.
    pub fn key_file(path: &Path) -> Result<Self> {
        let pem = read(path)?;
        DerPublicKey::from_pem(&pem)
            .map(Self::Key)
            .map_err(|e| SigstoreError::Invalid {
                what: path.display().to_string(),
                expected: "PEM public key",
                reason: e.to_string(),
            })
    }
}

/// What was signed: the bytes, or their SHA-256 when only the digest is known (an image digest,
/// a DSSE subject).
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Bytes(&'a [u8]),
    Sha256(&'a str),
}

/// What a successful verification proved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The certificate's SAN (keyless only).
    pub identity: Option<String>,
    /// The OIDC issuer in the certificate (keyless only).
    pub issuer: Option<String>,
    /// When the transparency log integrated the entry (Unix seconds), if it did.
    pub integrated_time: Option<i64>,
}

/// Parses a bundle (v0.1 to v0.3, message signature or DSSE).
pub fn parse_bundle(what: &str, json: &str) -> Result<Bundle> {
    Bundle::from_json(json).map_err(|e| SigstoreError::Invalid {
        what: what.to_owned(),
        expected: "Sigstore bundle",
        reason: e.to_string(),
    })
}

/// Verifies `bundle` over `subject` for `signer` against `root`: signature, certificate chain and
/// SCT, transparency log (SET, inclusion proof, checkpoint), timestamps, then the identity policy.
pub fn verify(
    bundle: &Bundle,
    subject: Subject<'_>,
    signer: &Signer,
    root: &TrustedRoot,
) -> Result<Verified> {
    let digest;
    let artifact = match subject {
        Subject::Bytes(bytes) => Artifact::from_blob(bytes),
        Subject::Sha256(hex) => {
            let hash = Sha256Hash::from_hex(hex).map_err(|e| SigstoreError::Invalid {
                what: hex.to_owned(),
                expected: "SHA-256 digest",
                reason: e.to_string(),
            })?;
            digest = ArtifactDigest::sha256(hash);
            Artifact::Digest(digest)
        }
    };
    let failed = |e: sigstore_verify::Error| SigstoreError::Verification(e.to_string());
    match signer {
        Signer::Key(key) => {
            let policy = PublicKeyVerificationPolicy::new(key.clone());
            let result =
                sigstore_verify::verify(artifact, bundle, &policy, root).map_err(failed)?;
            Ok(Verified {
                identity: None,
                issuer: None,
                integrated_time: integrated_seconds(&result),
            })
        }
        Signer::Identity { identity, issuer } => {
            let policy = VerificationPolicy::any_identity();
            let result =
                sigstore_verify::verify(artifact, bundle, &policy, root).map_err(failed)?;
            let found_identity = result
                .identity()
                .map(|san| san.as_str().to_owned())
                .ok_or(SigstoreError::NoIdentity)?;
            let found_issuer = result.issuer().unwrap_or_default().to_owned();
            if !identity.matches(&found_identity) {
                return Err(SigstoreError::IdentityMismatch {
                    expected: identity.to_string(),
                    found: found_identity,
                });
            }
            if !issuer.matches(&found_issuer) {
                return Err(SigstoreError::IssuerMismatch {
                    expected: issuer.to_string(),
                    found: found_issuer,
                });
            }
            Ok(Verified {
                identity: Some(found_identity),
                issuer: Some(found_issuer),
                integrated_time: integrated_seconds(&result),
            })
        }
    }
}

#[expect(
    clippy::redundant_closure_for_method_calls,
    reason = "the method path names jiff, which gantry does not depend on directly"
)]
fn integrated_seconds(result: &sigstore_verify::VerificationResult) -> Option<i64> {
    result.integrated_time().map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_match_the_whole_value() {
        let m = Matcher::regex("https://github.com/acme/.*").expect("regex");
        assert!(
            m.matches("https://github.com/acme/billing/.github/workflows/ci.yml@refs/heads/main")
        );
        assert!(
            !m.matches("evil https://github.com/acme/x"),
            "anchored at the start"
        );
        let m = Matcher::regex("acme").expect("regex");
        assert!(!m.matches("acme-evil"), "anchored at the end");
        assert_eq!(m.to_string(), "a match of /acme/");
        assert!(Matcher::regex("(").is_err());
    }

    #[test]
    fn the_embedded_production_root_loads() {
        trusted_root(&RootSource::Production).expect("production root");
    }
}
