//! Who must have signed, as a user writes it: in `verify-image`'s inputs or in a promotion
//! policy's `require-signature`. One conversion into a [`Signer`] and a trusted root for both.

use std::path::{Path, PathBuf};

use sigstore_verify::trust_root::TrustedRoot;

use crate::{ClaimPolicy, Matcher, RootSource, Signer, SigstoreError};

/// GitHub Actions' OIDC issuer, the default when an identity is given without one.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// A signature requirement: a keyless identity (exact or regexp, with its issuer and GitHub
/// claims) or a public key; and the trusted root to verify against.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SignaturePolicy {
    pub identity: Option<String>,
    pub identity_regexp: Option<String>,
    pub issuer: Option<String>,
    pub issuer_regexp: Option<String>,
    pub repository: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub workflow: Option<String>,
    pub trigger: Option<String>,
    pub sha: Option<String>,
    pub runner_environment: Option<String>,
    /// A PEM public key file.
    pub key: Option<PathBuf>,
    /// Accept key signatures that are not in the transparency log.
    #[serde(default)]
    pub insecure_ignore_tlog: bool,
    /// A trusted root file; default the public-good root compiled into gantry.
    pub trusted_root: Option<PathBuf>,
}

fn conflict(message: &str) -> SigstoreError {
    SigstoreError::Invalid {
        what: "the signature policy".to_owned(),
        expected: "signature policy",
        reason: message.to_owned(),
    }
}

impl SignaturePolicy {
    /// The signer this policy requires. Paths are relative to `base` (the policy file's folder,
    /// or the working directory).
    pub fn signer(&self, base: &Path) -> Result<Signer, SigstoreError> {
        let keyless = self.identity.is_some() || self.identity_regexp.is_some();
        match (&self.key, keyless) {
            (Some(_), true) => Err(conflict("give a key or a certificate identity, not both")),
            (None, false) => Err(conflict(
                "give a certificate identity (or identity regexp), or a key: gantry does not accept a signature from anyone",
            )),
            (Some(key), false) => {
                if self.issuer.is_some() || self.issuer_regexp.is_some() {
                    return Err(conflict(
                        "an issuer applies to keyless identities, not to a key",
                    ));
                }
                let Signer::Key { key, .. } = Signer::key_file(&base.join(key))? else {
                    unreachable!("key_file returns a key")
                };
                Ok(Signer::Key {
                    key,
                    tlog: !self.insecure_ignore_tlog,
                })
            }
            (None, true) => {
                if self.insecure_ignore_tlog {
                    return Err(conflict(
                        "insecure-ignore-tlog applies to keys: a keyless certificate is proven only by its log entry",
                    ));
                }
                Ok(Signer::Identity {
                    identity: matcher(
                        "identity",
                        self.identity.as_deref(),
                        self.identity_regexp.as_deref(),
                    )?
                    .ok_or_else(|| conflict("no identity"))?,
                    issuer: matcher(
                        "issuer",
                        self.issuer.as_deref(),
                        self.issuer_regexp.as_deref(),
                    )?
                    .unwrap_or_else(|| Matcher::exact(GITHUB_ISSUER)),
                    claims: Box::new(ClaimPolicy {
                        repository: self.repository.as_deref().map(Matcher::exact),
                        git_ref: self.git_ref.as_deref().map(Matcher::exact),
                        workflow: self.workflow.as_deref().map(Matcher::exact),
                        trigger: self.trigger.as_deref().map(Matcher::exact),
                        sha: self.sha.as_deref().map(Matcher::exact),
                        runner_environment: self.runner_environment.as_deref().map(Matcher::exact),
                    }),
                })
            }
        }
    }

    /// The trusted root: the file named, or the embedded public-good root.
    pub fn root(&self, base: &Path) -> Result<TrustedRoot, SigstoreError> {
        crate::trusted_root(&match &self.trusted_root {
            Some(path) => RootSource::File(base.join(path)),
            None => RootSource::Production,
        })
    }
}

fn matcher(
    what: &str,
    exact: Option<&str>,
    regexp: Option<&str>,
) -> Result<Option<Matcher>, SigstoreError> {
    match (exact, regexp) {
        (Some(_), Some(_)) => Err(conflict(&format!("give {what} or {what}-regexp, not both"))),
        (Some(text), None) => Ok(Some(Matcher::exact(text))),
        (None, Some(pattern)) => Matcher::regex(pattern).map(Some),
        (None, None) => Ok(None),
    }
}
