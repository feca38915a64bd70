//! The command line and action inputs of promote-digest.

use std::path::PathBuf;

use clap::Parser;
use gantry_args::{GitHubApiArgs, RegistryArgs};
use gantry_oci::{Digest, Reference};

/// Point an environment at a digest that passed the environment before it, without rebuilding.
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// The image's repository, e.g. ghcr.io/acme/billing (environments without a repository of
    /// their own live here).
    #[arg(long, required = true, value_name = "REPOSITORY")]
    pub image: Reference,

    /// The digest to promote (sha256:…). The source environment must point at exactly it.
    #[arg(long, required = true)]
    pub digest: Digest,

    /// The environment the digest passed.
    #[arg(long, required = true, value_name = "ENV")]
    pub source_env: String,

    /// The environment to point at the digest.
    #[arg(long, required = true, value_name = "ENV")]
    pub target_env: String,

    /// The promotion policy; without it, .github/gantry.yml or else the default chain
    /// dev -> staging -> canary -> production.
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// Record the promotion as a GitHub Deployment of the target environment (needs a token).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub deployment: bool,

    /// The repository (owner/name) whose roles and deployments count; default `GITHUB_REPOSITORY`.
    #[arg(long, value_name = "OWNER/NAME")]
    pub repository: Option<String>,

    /// The commit the deployment records; default `GITHUB_SHA`.
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,

    /// Who is promoting (a GitHub login); default `GITHUB_TRIGGERING_ACTOR`, then `GITHUB_ACTOR`.
    #[arg(long, value_name = "LOGIN")]
    pub actor: Option<String>,

    /// Promote a digest even though canary-watch rolled it back (its newest signed canary verdict
    /// failed); without it, such a digest is refused.
    #[arg(long)]
    pub allow_rolled_back: bool,

    /// Check everything and report what would happen; change nothing and run no gate.
    #[arg(long)]
    pub dry_run: bool,

    /// A GitOps environment's repository and Argo CD application.
    #[command(flatten)]
    pub gitops: gantry_args::GitOpsArgs,

    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// GitHub's API: roles, teams and deployments.
    #[command(flatten)]
    pub github: GitHubApiArgs,
}
