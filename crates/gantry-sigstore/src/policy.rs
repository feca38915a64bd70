//! Who must have signed, as a user writes it: in `verify-image`'s inputs or in a promotion
//! policy's `require-signature`. One conversion into a [`Signer`] and a trusted root for both.

use std::path::{Path, PathBuf};

use sigstore_verify::trust_root::TrustedRoot;

use crate::tuf::Tuf;
use crate::{ClaimPolicy, Matcher, RootSource, Signer, SigstoreError};

/// GitHub Actions' OIDC issuer, the default when an identity is given without one.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// A signature requirement: a keyless identity (exact or regexp, with its issuer and GitHub
/// claims) or a public key; and the trusted root to verify against.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SignaturePolicy {
    /// The signer's exact identity.
    pub identity: Option<String>,
    /// A regular expression the whole identity must match.
    pub identity_regexp: Option<String>,
    /// The exact OIDC issuer (default GitHub Actions').
    pub issuer: Option<String>,
    /// A regular expression the whole issuer must match.
    pub issuer_regexp: Option<String>,
    /// The repository the signing workflow ran in.
    pub repository: Option<String>,
    #[serde(rename = "ref")]
    /// The git ref it ran for.
    pub git_ref: Option<String>,
    /// The workflow that signed.
    pub workflow: Option<String>,
    /// The event that triggered it.
    pub trigger: Option<String>,
    /// The commit it ran at.
    pub sha: Option<String>,
    /// `github-hosted` or `self-hosted`.
    pub runner_environment: Option<String>,
    /// A PEM public key file.
    pub key: Option<PathBuf>,
    /// Accept key signatures that are not in the transparency log.
    #[serde(default)]
    pub insecure_ignore_tlog: bool,
    /// A trusted root file; default the public-good root compiled into gantry.
    pub trusted_root: Option<PathBuf>,
    /// Fetch the trusted root from this TUF repository instead.
    pub tuf_url: Option<String>,
    /// The TUF `root.json` to start from (required unless `tuf-url` is a well-known instance's).
    pub tuf_root: Option<PathBuf>,
    /// Where TUF metadata is cached between runs.
    pub tuf_cache: Option<PathBuf>,
    /// Use the verified TUF cache only, with no request.
    #[serde(default)]
    pub tuf_offline: bool,
}

/// Where a policy's trusted root comes from.
enum RootFrom {
    Tuf(Tuf),
    Local(RootSource),
}

fn conflict(message: &str) -> SigstoreError {
    SigstoreError::Policy(message.to_owned())
}

impl SignaturePolicy {
    /// The same policy with its relative paths (key, trusted root, TUF root and cache) taken
    /// from `base`, e.g. the folder of the policy file that names them.
    #[must_use]
    pub fn relative_to(mut self, base: &Path) -> Self {
        for path in [
            &mut self.key,
            &mut self.trusted_root,
            &mut self.tuf_root,
            &mut self.tuf_cache,
        ]
        .into_iter()
        .flatten()
        {
            *path = base.join(&*path);
        }
        self
    }

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

    /// Where the trusted root comes from: the TUF repository named, else the file named, else
    /// the embedded public-good root.
    fn root_source(&self, base: &Path) -> Result<RootFrom, SigstoreError> {
        let tuf_options = self.tuf_root.is_some() || self.tuf_cache.is_some() || self.tuf_offline;
        match (&self.tuf_url, &self.trusted_root) {
            (Some(_), Some(_)) => Err(conflict(
                "give a trusted root file or a TUF repository to fetch it from, not both",
            )),
            (Some(url), None) => Ok(RootFrom::Tuf(Tuf {
                url: url.clone(),
                root: self.tuf_root.as_ref().map(|p| base.join(p)),
                cache: self.tuf_cache.as_ref().map(|p| base.join(p)),
                offline: self.tuf_offline,
            })),
            (None, _) if tuf_options => Err(conflict(
                "tuf-root, tuf-cache and tuf-offline apply to a TUF repository; name it with tuf-url",
            )),
            (None, Some(path)) => Ok(RootFrom::Local(RootSource::File(base.join(path)))),
            (None, None) => Ok(RootFrom::Local(RootSource::Production)),
        }
    }

    /// Checks the trusted root's source without fetching anything: a file root is loaded, a TUF
    /// repository's URL and `root.json` are checked.
    pub fn check_root(&self, base: &Path) -> Result<(), SigstoreError> {
        match self.root_source(base)? {
            RootFrom::Tuf(tuf) => tuf.check(),
            RootFrom::Local(source) => crate::trusted_root(&source).map(drop),
        }
    }

    /// The trusted root. Only a TUF repository makes a request, with `http`.
    pub async fn root(
        &self,
        base: &Path,
        http: &reqwest::Client,
    ) -> Result<TrustedRoot, SigstoreError> {
        match self.root_source(base)? {
            RootFrom::Tuf(tuf) => tuf.trusted_root(http).await,
            RootFrom::Local(source) => crate::trusted_root(&source),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keyless() -> SignaturePolicy {
        SignaturePolicy {
            identity: Some(
                "https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main"
                    .to_owned(),
            ),
            ..SignaturePolicy::default()
        }
    }

    #[track_caller]
    fn refused(policy: &SignaturePolicy, expected: &str) {
        let error = policy
            .check_root(Path::new("."))
            .expect_err("refused")
            .to_string();
        assert!(error.contains(expected), "{error}");
    }

    #[test]
    fn the_root_comes_from_one_place_and_tuf_options_need_a_repository() {
        assert!(keyless().check_root(Path::new(".")).is_ok());
        refused(
            &SignaturePolicy {
                trusted_root: Some("root.json".into()),
                tuf_url: Some("https://tuf-repo-cdn.sigstore.dev".to_owned()),
                ..keyless()
            },
            "not both",
        );
        for stray in [
            SignaturePolicy {
                tuf_root: Some("root.json".into()),
                ..keyless()
            },
            SignaturePolicy {
                tuf_offline: true,
                ..keyless()
            },
        ] {
            refused(&stray, "name it with tuf-url");
        }
    }

    #[test]
    fn a_tuf_repository_is_checked_without_a_request() {
        // A well-known instance: its root is built in.
        for url in [
            "https://tuf-repo-cdn.sigstore.dev",
            "https://tuf-repo-cdn.sigstore.dev/",
            "https://tuf-repo.github.com",
        ] {
            let policy = SignaturePolicy {
                tuf_url: Some(url.to_owned()),
                ..keyless()
            };
            assert!(policy.check_root(Path::new(".")).is_ok(), "{url}");
        }
        refused(
            &SignaturePolicy {
                tuf_url: Some("https://tuf.example.com".to_owned()),
                ..keyless()
            },
            "give the root.json to trust for this one (tuf-root)",
        );
        refused(
            &SignaturePolicy {
                tuf_url: Some("file:///etc/tuf".to_owned()),
                tuf_root: Some("root.json".into()),
                ..keyless()
            },
            "expected an http(s) URL",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("root.json"), "not json").expect("write");
        refused(
            &SignaturePolicy {
                tuf_url: Some("https://tuf.example.com".to_owned()),
                tuf_root: Some(dir.path().join("root.json")),
                ..keyless()
            },
            "is not a valid TUF root.json",
        );
    }
}
