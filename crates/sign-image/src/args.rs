//! The command line and action inputs of sign-image.

use std::path::PathBuf;

use clap::Parser;
use gantry_actions::Secret;
use gantry_args::{GitHubTokenArgs, ImagesArgs, RegistryArgs};

/// Sign images by digest with Sigstore (keyless through Fulcio and Rekor, or with a key).
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// The images to sign (a tag is resolved once and its digest signed).
    #[command(flatten)]
    pub images: ImagesArgs,

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

    /// Annotations signed into the statement's predicate (KEY=VALUE).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// Also write cosign's legacy `.sig` signature (simple-signing payload, signature, certificate
    /// and Rekor bundle in annotations) for verifiers older than cosign v3. Needs Rekor v1.
    #[arg(long)]
    pub legacy_sig: bool,

    /// Also write each bundle here (a directory; one `<hex>.sigstore.json` per digest).
    #[arg(long, value_name = "DIR")]
    pub bundle_dir: Option<PathBuf>,

    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// The GitHub token (ghcr.io).
    #[command(flatten)]
    pub github: GitHubTokenArgs,
}
