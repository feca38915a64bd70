//! The command line and action inputs of sign-image.

use std::path::PathBuf;

use clap::Parser;
use gantry_args::{GitHubTokenArgs, ImagesArgs, RegistryArgs, SigningArgs};

/// Sign images by digest with Sigstore (keyless through Fulcio and Rekor, or with a key).
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// The images to sign (a tag is resolved once and its digest signed).
    #[command(flatten)]
    pub images: ImagesArgs,

    /// How to sign.
    #[command(flatten)]
    pub signing: SigningArgs,

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
