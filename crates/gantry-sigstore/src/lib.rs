//! Sigstore verification for gantry, on the sigstore-rust crates (`sigstore-verify`,
//! `sigstore-trust-root`), which pass the sigstore-conformance suite.
//!
//! The one decision: the trusted root is always explicit. It comes from a file (no network at
//! all), from the production root compiled into sigstore-trust-root, or from a TUF repository
//! when the caller names one ([`tuf`]); nothing else here reaches the network, so "offline" means
//! offline. Identity policy is exact or a regular expression, for both
//! the identity (the certificate's SAN) and the issuer, and a mismatch names what was found.
//!
//! The OCI side (finding bundles and cosign's legacy signatures in a registry) builds on this.

#![warn(missing_docs)]

mod keys;
pub mod legacy;
pub mod oci;
pub mod policy;
pub mod sign;
pub mod tuf;

use std::path::{Path, PathBuf};

use sigstore_verify::trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT;
pub use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::{Artifact, ArtifactDigest, Bundle, DerPublicKey, Sha256Hash};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy};

#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
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
    /// Options that do not make a signature policy (none, or two that exclude each other).
    #[error("signature policy: {0}")]
    Policy(String),
    #[error("TUF repository {url}: {reason}")]
    Tuf { url: String, reason: String },
    #[error("{0:?} is not a valid regular expression: {1}")]
    Regex(String, String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("verification failed: {0}")]
    Verification(String),
    #[error("the certificate's identity is {found:?}, expected {expected}")]
    IdentityMismatch { expected: String, found: String },
    #[error("the certificate's issuer is {found:?}, expected {expected}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the signature is for {found}, not sha256:{expected}")]
    SubjectMismatch { expected: String, found: String },
    #[error("the bundle has no certificate identity to check against the policy")]
    NoIdentity,
    #[error("the certificate's {claim} is {found}, expected {expected}")]
    ClaimMismatch {
        claim: &'static str,
        expected: String,
        /// The value found, quoted, or "absent".
        found: String,
    },
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

pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| SigstoreError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Matches an identity or issuer exactly or by a regular expression (anchored: the whole value
/// must match).
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Exactly this text.
    Exact(String),
    /// An anchored regular expression.
    Regex(regex::Regex),
}

impl Matcher {
    /// A matcher for exactly `text`.
    pub fn exact(text: impl Into<String>) -> Self {
        Self::Exact(text.into())
    }

    /// A regular expression the whole value must match. The pattern must be a regular
    /// expression on its own before it is anchored: `a)|(b` would otherwise close the anchoring
    /// group early and match `a…` or `…b` anywhere.
    pub fn regex(pattern: &str) -> Result<Self> {
        let invalid = |e: regex::Error| SigstoreError::Regex(pattern.to_owned(), e.to_string());
        regex::Regex::new(pattern).map_err(invalid)?;
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(Self::Regex)
            .map_err(invalid)
    }

    /// Whether `value` matches.
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
    /// Keyless: a Fulcio certificate for this identity from this issuer, with these claims.
    Identity {
        /// The certificate's identity (SAN).
        identity: Matcher,
        /// The OIDC issuer.
        issuer: Matcher,
        /// GitHub claims the certificate must carry.
        claims: Box<ClaimPolicy>,
    },
    /// A key the verifier holds (PEM `PUBLIC KEY`). Its signatures must be in the transparency
    /// log unless `tlog` is off (cosign's `--insecure-ignore-tlog`, for keys signed offline).
    /// A public key; `tlog: false` waives the transparency log.
    Key {
        /// The public key (DER).
        key: DerPublicKey,
        /// Whether a transparency log entry (or timestamp) is required.
        tlog: bool,
    },
}

impl Signer {
    /// A public key from a PEM file.
    pub fn key_file(path: &Path) -> Result<Self> {
        let pem = read(path)?;
        DerPublicKey::from_pem(&pem)
            .map(|key| Self::Key { key, tlog: true })
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
    /// The signed bytes.
    Bytes(&'a [u8]),
    /// The SHA-256 (hex) of what was signed.
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
    /// The entry's index in the transparency log, if it was logged.
    pub log_index: Option<u64>,
    /// Every signing time that verified (Unix seconds): the log's integrated time and each
    /// RFC 3161 timestamp.
    pub timestamps: Vec<i64>,
    /// How many of those are RFC 3161 timestamps from the trusted root's timestamp authorities
    /// (each one in the bundle must verify, or nothing does).
    pub rfc3161_timestamps: usize,
    /// What the certificate says about the GitHub Actions run that signed (keyless only).
    pub claims: Claims,
}

/// The GitHub Actions claims of a Fulcio certificate: the current OIDs (`1.3.6.1.4.1.57264.1.9`
/// onwards) first, the deprecated ones (`.1.2` to `.1.6`) when a certificate predates them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claims {
    /// `owner/name`.
    pub repository: Option<String>,
    /// The ref the workflow ran for.
    pub git_ref: Option<String>,
    /// The workflow file that ran, as `owner/name/.github/workflows/file.yml@ref`.
    pub workflow: Option<String>,
    /// The event that triggered it.
    pub trigger: Option<String>,
    /// The commit it ran at.
    pub sha: Option<String>,
    /// `github-hosted` or `self-hosted`.
    pub runner_environment: Option<String>,
}

impl Claims {
    fn from_certificate(claims: &sigstore_verify::crypto::x509::FulcioCiClaims) -> Self {
        let old = &claims.deprecated_github;
        let strip_host = |uri: &String| {
            uri.strip_prefix("https://github.com/")
                .map_or_else(|| uri.clone(), str::to_owned)
        };
        Self {
            repository: claims
                .source_repository_uri
                .as_ref()
                .map(strip_host)
                .or_else(|| old.workflow_repository.clone()),
            git_ref: claims
                .source_repository_ref
                .clone()
                .or_else(|| old.workflow_ref.clone()),
            workflow: claims.build_config_uri.as_ref().map(strip_host),
            trigger: claims
                .build_trigger
                .clone()
                .or_else(|| old.workflow_trigger.clone()),
            sha: claims
                .source_repository_digest
                .clone()
                .or_else(|| old.workflow_sha.clone()),
            runner_environment: claims.runner_environment.clone(),
        }
    }
}

/// Requirements on the GitHub claims; `None` asks nothing of that claim.
#[derive(Debug, Clone, Default)]
pub struct ClaimPolicy {
    /// The repository (owner/name).
    pub repository: Option<Matcher>,
    /// The git ref.
    pub git_ref: Option<Matcher>,
    /// The workflow (build config URI).
    pub workflow: Option<Matcher>,
    /// The triggering event.
    pub trigger: Option<Matcher>,
    /// The commit.
    pub sha: Option<Matcher>,
    /// `github-hosted` or `self-hosted`.
    pub runner_environment: Option<Matcher>,
}

impl ClaimPolicy {
    /// Checks every requirement; the first unmet one is the error (a missing claim never passes).
    pub fn check(&self, claims: &Claims) -> Result<()> {
        let pairs = [
            ("repository", &self.repository, &claims.repository),
            ("ref", &self.git_ref, &claims.git_ref),
            ("workflow", &self.workflow, &claims.workflow),
            ("trigger", &self.trigger, &claims.trigger),
            ("commit", &self.sha, &claims.sha),
            (
                "runner environment",
                &self.runner_environment,
                &claims.runner_environment,
            ),
        ];
        for (claim, wanted, found) in pairs {
            let Some(wanted) = wanted else { continue };
            if !found.as_deref().is_some_and(|f| wanted.matches(f)) {
                return Err(SigstoreError::ClaimMismatch {
                    claim,
                    expected: wanted.to_string(),
                    found: found
                        .as_ref()
                        .map_or_else(|| "absent".to_owned(), |f| format!("{f:?}")),
                });
            }
        }
        Ok(())
    }
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
    if let Subject::Sha256(hex) = subject {
        check_statement_subject(bundle, hex)?;
    }
    let failed = |e: sigstore_verify::Error| SigstoreError::Verification(e.to_string());
    match signer {
        Signer::Key { key, tlog: false }
            if bundle.verification_material.tlog_entries.is_empty()
                && bundle
                    .verification_material
                    .timestamp_verification_data
                    .rfc3161_timestamps
                    .is_empty() =>
        {
            verify_unlogged(bundle, subject, key)
        }
        Signer::Key { key, tlog } => {
            let mut policy = PublicKeyVerificationPolicy::new(key.clone());
            if !tlog {
                policy = policy.skip_tlog_unsafe();
            }
            let result = sigstore_verify::verify(artifact, bundle, &policy, root).map_err(|e| {
                let text = e.to_string();
                let about_the_log = ["tlog", "inclusion", "transparency", "log entr"]
                    .iter()
                    .any(|word| text.to_ascii_lowercase().contains(word));
                if *tlog && about_the_log {
                    SigstoreError::Verification(format!(
                        "{text}\nhint: a key signature made offline (tlog-upload: false) has no log entry; if that is expected, verify with --insecure-ignore-tlog (insecure-ignore-tlog: true in a policy)"
                    ))
                } else {
                    failed(e)
                }
            })?;
            Ok(Verified {
                identity: None,
                issuer: None,
                integrated_time: integrated_seconds(&result),
                log_index: log_index(bundle),
                timestamps: timestamp_seconds(&result),
                rfc3161_timestamps: rfc3161_count(bundle),
                claims: Claims::default(),
            })
        }
        Signer::Identity {
            identity,
            issuer,
            claims: wanted,
        } => {
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
            let claims = result
                .certificate()
                .map(|c| Claims::from_certificate(&c.ci_claims))
                .unwrap_or_default();
            wanted.check(&claims)?;
            Ok(Verified {
                identity: Some(found_identity),
                issuer: Some(found_issuer),
                integrated_time: integrated_seconds(&result),
                log_index: log_index(bundle),
                timestamps: timestamp_seconds(&result),
                rfc3161_timestamps: rfc3161_count(bundle),
                claims,
            })
        }
    }
}

fn log_index(bundle: &Bundle) -> Option<u64> {
    bundle
        .verification_material
        .tlog_entries
        .first()
        .map(|entry| u64::from(entry.log_index))
}

/// A key signature with neither a log entry nor a timestamp (signed offline), accepted only when
/// the log is explicitly not required: sigstore-verify refuses such bundles outright, so the
/// signature is checked here, over the DSSE PAE or the message, and the subject must match.
fn verify_unlogged(bundle: &Bundle, subject: Subject<'_>, key: &DerPublicKey) -> Result<Verified> {
    use sigstore_verify::crypto::{KeyAlgorithm, VerificationKey};
    use sigstore_verify::types::SignatureContent;
    let failed = |e: &dyn std::fmt::Display| SigstoreError::Verification(e.to_string());
    let scheme = KeyAlgorithm::from_spki(key)
        .map_err(|e| failed(&e))?
        .default_signing_scheme();
    let verifier = VerificationKey::from_der(key, scheme).map_err(|e| failed(&e))?;
    let wanted = match subject {
        Subject::Bytes(bytes) => {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(bytes))
        }
        Subject::Sha256(hex) => hex.to_ascii_lowercase(),
    };
    match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => {
            verifier
                .verify(envelope.pae(), &envelope.signature.sig)
                .map_err(|e| {
                    failed(&format!(
                        "the DSSE signature does not verify with the key: {e}"
                    ))
                })?;
            let statement: serde_json::Value = serde_json::from_slice(envelope.payload.as_bytes())
                .map_err(|e| {
                    failed(&format!(
                        "the DSSE payload is not an in-toto statement: {e}"
                    ))
                })?;
            let found: Vec<String> = statement["subject"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["digest"]["sha256"].as_str())
                .map(str::to_ascii_lowercase)
                .collect();
            if !found.contains(&wanted) {
                return Err(SigstoreError::SubjectMismatch {
                    expected: wanted,
                    found: if found.is_empty() {
                        "no subject".to_owned()
                    } else {
                        found
                            .iter()
                            .map(|d| format!("sha256:{d}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                });
            }
        }
        SignatureContent::MessageSignature(message) => {
            let outcome = match subject {
                Subject::Bytes(bytes) => verifier.verify(bytes, &message.signature),
                Subject::Sha256(_) => {
                    let digest = Sha256Hash::from_hex(&wanted).map_err(|e| failed(&e))?;
                    verifier.verify_prehashed(digest.as_bytes(), &message.signature)
                }
            };
            outcome
                .map_err(|e| failed(&format!("the signature does not verify with the key: {e}")))?;
        }
        _ => {
            return Err(failed(
                &"the bundle holds neither a DSSE envelope nor a message signature",
            ));
        }
    }
    Ok(Verified::default())
}

/// For a DSSE in-toto statement, names the digests it is for when `hex` is not among them (the
/// full verification that follows would only say the hashes differ).
fn check_statement_subject(bundle: &Bundle, hex: &str) -> Result<()> {
    let sigstore_verify::types::SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
        return Ok(());
    };
    let Ok(statement) = serde_json::from_slice::<serde_json::Value>(envelope.payload.as_bytes())
    else {
        return Ok(());
    };
    let found: Vec<String> = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["digest"]["sha256"].as_str())
        .map(|d| format!("sha256:{d}"))
        .collect();
    let wanted = format!("sha256:{}", hex.to_ascii_lowercase());
    if found.is_empty() || found.contains(&wanted) {
        return Ok(());
    }
    Err(SigstoreError::SubjectMismatch {
        expected: hex.to_owned(),
        found: found.join(", "),
    })
}

#[expect(
    clippy::redundant_closure_for_method_calls,
    reason = "the method path names jiff, which gantry does not depend on directly"
)]
fn integrated_seconds(result: &sigstore_verify::VerificationResult) -> Option<i64> {
    result.integrated_time().map(|t| t.as_second())
}

fn rfc3161_count(bundle: &Bundle) -> usize {
    bundle
        .verification_material
        .timestamp_verification_data
        .rfc3161_timestamps
        .len()
}

fn timestamp_seconds(result: &sigstore_verify::VerificationResult) -> Vec<i64> {
    result
        .verified_timestamps()
        .iter()
        .map(|t| t.as_second())
        .collect()
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
        // Balanced only once wrapped: refused, not matched unanchored.
        let escape = Matcher::regex("https://github.com/acme/x)|(.*");
        assert!(escape.is_err(), "{escape:?}");
    }

    #[test]
    fn certificates_before_the_current_oids_fall_back_to_the_deprecated_ones() {
        use sigstore_verify::crypto::x509::FulcioCiClaims;
        let mut old = FulcioCiClaims::default();
        old.deprecated_github.workflow_repository = Some("acme/billing".into());
        old.deprecated_github.workflow_ref = Some("refs/heads/main".into());
        old.deprecated_github.workflow_trigger = Some("push".into());
        old.deprecated_github.workflow_sha = Some("abc".into());
        let claims = Claims::from_certificate(&old);
        assert_eq!(claims.repository.as_deref(), Some("acme/billing"));
        assert_eq!(claims.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(claims.trigger.as_deref(), Some("push"));
        assert_eq!(claims.sha.as_deref(), Some("abc"));
        let mut both = old.clone();
        both.source_repository_uri = Some("https://github.com/acme/billing-renamed".into());
        assert_eq!(
            Claims::from_certificate(&both).repository.as_deref(),
            Some("acme/billing-renamed"),
            "the current OID wins"
        );
        let policy = ClaimPolicy {
            runner_environment: Some(Matcher::exact("github-hosted")),
            ..ClaimPolicy::default()
        };
        assert_eq!(
            policy.check(&claims).expect_err("absent").to_string(),
            "the certificate's runner environment is absent, expected \"github-hosted\""
        );
    }

    #[test]
    fn the_embedded_production_root_loads() {
        trusted_root(&RootSource::Production).expect("production root");
    }
}
