//! How a tool signs: keyless through Fulcio and Rekor, or with a key. sign-image and sbom-attach
//! flatten [`SigningArgs`], so both sign the same ways with the same inputs.

use std::future::Future;
use std::path::PathBuf;

use gantry_secret::Secret;
use gantry_sigstore::sign::{Identity, Services, SigningKey};

/// Rekor v1 of the public-good instance, where key-based signatures are logged by default.
pub const PUBLIC_REKOR: &str = "https://rekor.sigstore.dev";

/// The signing flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SigningArgs {
    /// Sign with this private key (PKCS#8 PEM, or cosign's encrypted key) instead of keyless.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    /// The password of an encrypted key.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "COSIGN_PASSWORD",
        hide_env_values = true
    )]
    pub key_password: Option<Secret>,

    /// The OIDC token for Fulcio; default: requested from GitHub Actions (needs
    /// `permissions: id-token: write`). Also read from `SIGSTORE_ID_TOKEN`, or a file with
    /// `identity-token-file`.
    #[arg(
        long,
        value_name = "JWT",
        env = "SIGSTORE_ID_TOKEN",
        hide_env_values = true,
        conflicts_with = "identity_token_file"
    )]
    pub identity_token: Option<Secret>,

    /// A file holding the OIDC token for Fulcio.
    #[arg(long, value_name = "PATH")]
    pub identity_token_file: Option<PathBuf>,

    /// Sigstore services from a signing config (v0.2 JSON); default: the public-good instance.
    #[arg(long, value_name = "PATH")]
    pub signing_config: Option<PathBuf>,

    /// Fulcio to ask for the certificate (overrides the signing config).
    #[arg(long, value_name = "URL")]
    pub fulcio_url: Option<String>,

    /// Rekor (v1) to log the signature in (overrides the signing config).
    #[arg(long, value_name = "URL")]
    pub rekor_url: Option<String>,

    /// RFC 3161 timestamp authority to ask for a timestamp (overrides the signing config).
    #[arg(long, value_name = "URL")]
    pub tsa_url: Option<String>,

    /// Log a key-based signature in Rekor. Without it, verifiers must waive the log
    /// (`insecure-ignore-tlog`). Keyless signatures are always logged.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tlog_upload: bool,
}

/// The inputs that hold secrets in a tool that flattens [`SigningArgs`] with `RegistryArgs` and
/// `GitHubTokenArgs` (its `ToolSpec::secret_inputs`).
pub const SIGNING_SECRET_INPUTS: &[&str] = &[
    "github-token",
    "registry-password",
    "identity-token",
    "key-password",
];

impl SigningArgs {
    fn services(&self) -> anyhow::Result<Services> {
        let mut services = match &self.signing_config {
            Some(path) => Services::from_signing_config(path)?,
            None => Services::production()?,
        };
        if let Some(url) = &self.fulcio_url {
            services.fulcio.clone_from(url);
        }
        if let Some(url) = &self.rekor_url {
            services.rekor.clone_from(url);
            services.rekor_v2 = false;
        }
        if let Some(url) = &self.tsa_url {
            services.tsa = Some(url.clone());
        }
        Ok(services)
    }

    /// Who signs. Contradicting flags are refused before anything is signed; without a token,
    /// `oidc` asks for one (in GitHub Actions, the job's OIDC token).
    pub async fn identity<F, E>(&self, oidc: impl FnOnce() -> F) -> anyhow::Result<Identity>
    where
        F: Future<Output = Result<Secret, E>>,
        E: std::error::Error + Send + Sync + 'static,
    {
        if let Some(path) = &self.key {
            let keyless_only = [
                ("--identity-token", self.identity_token.is_some()),
                ("--identity-token-file", self.identity_token_file.is_some()),
                ("--signing-config", self.signing_config.is_some()),
                ("--fulcio-url", self.fulcio_url.is_some()),
                ("--tsa-url", self.tsa_url.is_some()),
            ];
            if let Some((flag, _)) = keyless_only.iter().find(|(_, given)| *given) {
                anyhow::bail!(
                    "{flag} applies to keyless signing; with --key it would be ignored, so gantry refuses to guess which was meant"
                );
            }
            let key = SigningKey::from_file(path, self.key_password.as_ref())?;
            let rekor = self.tlog_upload.then(|| {
                self.rekor_url
                    .clone()
                    .unwrap_or_else(|| PUBLIC_REKOR.to_owned())
            });
            return Ok(Identity::Key {
                key: Box::new(key),
                rekor,
            });
        }
        if !self.tlog_upload {
            anyhow::bail!(
                "--tlog-upload false applies to key-based signing only: a keyless certificate is short-lived and proven only by its log entry"
            );
        }
        let services = self.services()?;
        let given = crate::secret(
            self.identity_token.as_ref(),
            self.identity_token_file.as_deref(),
            "identity-token-file",
        )?;
        let token = match given {
            Some(token) => token,
            None => oidc().await.map_err(|e| {
                anyhow::Error::new(e).context("keyless signing needs an identity token")
            })?,
        };
        Ok(Identity::Keyless { token, services })
    }
}
