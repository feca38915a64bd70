//! The command line and action inputs of sbom-attach.

use std::path::PathBuf;

use clap::Parser;
use gantry_args::{GitHubTokenArgs, RegistryArgs, SigningArgs};
use gantry_oci::Reference;

/// Catalogue an image's packages into a CycloneDX 1.6 SBOM and attach it, signed.
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// The image, by tag or digest (a tag is resolved once). For an index, one SBOM per platform
    /// manifest, each attached to that manifest.
    #[arg(
        long,
        value_name = "IMAGE",
        required_unless_present = "rootfs",
        conflicts_with = "rootfs"
    )]
    pub image: Option<Reference>,

    /// Only this platform of an index (`os/arch[/variant]`).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// Catalogue a root filesystem directory, or an OCI layout directory, instead of a registry
    /// image; nothing is attached (a CI step before the push). Needs `output`.
    #[arg(long, value_name = "DIR", requires = "output")]
    pub rootfs: Option<PathBuf>,

    /// The subject's name in the SBOM of a `rootfs` (default: the directory's name).
    #[arg(long, value_name = "NAME", requires = "rootfs")]
    pub name: Option<String>,

    /// Also write the SBOM here (for several platforms, `-<os>-<arch>` is added before the
    /// extension).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Attach the SBOM as a signed attestation too (in-toto, predicate type
    /// `https://cyclonedx.org/bom`). With `false`, only the plain referrer is attached and no
    /// signing identity is needed.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub attest: bool,

    /// Layers downloaded at once.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub jobs: usize,

    /// The most one layer may decompress to, in bytes (decompression bombs stop here).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024 * 1024)]
    pub max_layer_size: u64,

    /// How to sign the attestation.
    #[command(flatten)]
    pub signing: SigningArgs,

    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// The GitHub token (ghcr.io).
    #[command(flatten)]
    pub github: GitHubTokenArgs,
}
