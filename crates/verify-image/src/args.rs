//! The command line and action inputs of verify-image.

use std::path::PathBuf;

use clap::Parser;
use gantry_args::{GitHubTokenArgs, ImagesArgs, RegistryArgs, SignatureArgs};

/// Verify that images carry Sigstore signatures from the expected identity or key.
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// The images to verify (a tag is resolved once; its digest is verified).
    #[command(flatten)]
    pub images: ImagesArgs,

    /// Whose signature counts.
    #[command(flatten)]
    pub signature: SignatureArgs,

    /// Attestations the image must carry, signed by the same identity or key: a predicate type
    /// URI, or `slsaprovenance`, `cyclonedx`, `spdx`, `vuln`, `openvex`, `test-result` (which
    /// counts only when its `result` is PASSED).
    #[arg(long = "require-attestation", value_name = "TYPE")]
    pub require_attestations: Vec<String>,

    /// Require a plain signature (cosign's `sign`). With `false`, only the attestations named by
    /// `require-attestation` are verified, as `cosign verify-attestation` does: an image that
    /// carries attestations but no signature passes.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub require_signature: bool,

    /// The vulnerability gate.
    #[command(flatten)]
    pub gate: GateArgs,

    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// The GitHub token (ghcr.io).
    #[command(flatten)]
    pub github: GitHubTokenArgs,
}

/// The vulnerability gate: what it reads and what fails it.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// Vulnerability reports (Trivy `--format json` or Grype `-o json`) to gate on. A report that
    /// names the image's digest applies to that image; one that names none applies to every image.
    #[arg(long = "vuln-report", value_name = "PATH")]
    pub vuln_reports: Vec<PathBuf>,

    /// Gate on the image's signed vulnerability attestation (cosign's `vuln` predicate, as
    /// `trivy --format cosign-vuln` writes it), verified for the same identity or key; the
    /// newest scan counts. With `vuln-report` too, both sets of findings count.
    #[arg(long)]
    pub vuln_attestation: bool,

    /// A scan older than this fails the gate, as does one that does not say when it ran:
    /// minutes, hours or days, e.g. `24h`, `7d`.
    #[arg(long, value_name = "AGE")]
    pub vuln_max_age: Option<String>,

    /// Severities that fail the gate (comma-separated).
    #[arg(long, value_name = "LIST", default_value = "CRITICAL,HIGH")]
    pub severity: String,

    /// Set aside findings that have no fix yet.
    #[arg(long)]
    pub ignore_unfixed: bool,

    /// Findings to set aside, `.trivyignore` style: one ID per line, optionally `exp:YYYY-MM-DD`
    /// after which the entry no longer applies.
    #[arg(long, value_name = "PATH")]
    pub ignore_file: Option<PathBuf>,

    /// OpenVEX documents: `not_affected` and `fixed` statements for the image (or for every
    /// product) set findings aside.
    #[arg(long = "vex", value_name = "PATH")]
    pub vex: Vec<PathBuf>,
}
