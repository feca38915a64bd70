//! Whose signature counts: a keyless identity (with GitHub claims) or a key, and the trusted root.

use std::path::PathBuf;

use gantry_sigstore::policy::SignaturePolicy;

/// Who must have signed: an identity and issuer (exact or by regular expression, with GitHub
/// claims), or a public key.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SignerArgs {
    /// The signer's identity (the certificate's SAN), e.g.
    /// `https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main`.
    #[arg(long, value_name = "IDENTITY")]
    pub certificate_identity: Option<String>,

    /// A regular expression the whole identity must match.
    #[arg(long, value_name = "REGEXP")]
    pub certificate_identity_regexp: Option<String>,

    /// The OIDC issuer; default GitHub Actions' (`https://token.actions.githubusercontent.com`).
    #[arg(long, value_name = "URL")]
    pub certificate_oidc_issuer: Option<String>,

    /// A regular expression the whole issuer must match.
    #[arg(long, value_name = "REGEXP")]
    pub certificate_oidc_issuer_regexp: Option<String>,

    /// The repository (owner/name) the signing workflow ran in.
    #[arg(long, value_name = "OWNER/NAME")]
    pub github_repository: Option<String>,

    /// The git ref the signing workflow ran for, e.g. `refs/heads/main`.
    #[arg(long, value_name = "REF")]
    pub github_ref: Option<String>,

    /// The workflow that signed (the certificate's build config, e.g.
    /// `https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main`).
    #[arg(long, value_name = "URI")]
    pub github_workflow: Option<String>,

    /// The event that triggered the signing workflow, e.g. `push`.
    #[arg(long, value_name = "EVENT")]
    pub github_trigger: Option<String>,

    /// The commit the signing workflow ran at.
    #[arg(long, value_name = "SHA")]
    pub github_sha: Option<String>,

    /// `github-hosted` or `self-hosted`.
    #[arg(long, value_name = "ENV")]
    pub runner_environment: Option<String>,

    /// Verify with this public key (PEM) instead of a keyless identity.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    /// Accept key signatures that are not in the transparency log (signed with
    /// `tlog-upload: false`).
    #[arg(long)]
    pub insecure_ignore_tlog: bool,
}

/// Where the trusted root comes from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RootArgs {
    /// The trusted root (JSON); default the Sigstore public-good root built into gantry. Never
    /// fetched: verification makes no request beyond the registry (unless `tuf-url` is given).
    #[arg(long, value_name = "PATH", conflicts_with = "tuf_url")]
    pub trusted_root: Option<PathBuf>,

    /// Fetch the trusted root from this TUF repository, e.g. Sigstore's
    /// `https://tuf-repo-cdn.sigstore.dev` or a private mirror.
    #[arg(long, value_name = "URL")]
    pub tuf_url: Option<String>,

    /// The TUF `root.json` to start trusting from; required unless `tuf-url` is Sigstore's
    /// public-good, staging or GitHub's repository, whose roots are built in.
    #[arg(long, value_name = "PATH", requires = "tuf_url")]
    pub tuf_root: Option<PathBuf>,

    /// Where verified TUF metadata is kept between runs; default the user's cache folder.
    #[arg(long, value_name = "PATH", requires = "tuf_url")]
    pub tuf_cache: Option<PathBuf>,

    /// Use only the TUF cache (verified again from the root), with no request.
    #[arg(long, requires = "tuf_url")]
    pub tuf_offline: bool,
}

/// Whose signature counts, and against which root: the one way a tool's flags become a
/// [`SignaturePolicy`] (the policy file's `require-signature` is the other).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SignatureArgs {
    /// Who must have signed.
    #[command(flatten)]
    pub signer: SignerArgs,
    /// The trusted root.
    #[command(flatten)]
    pub root: RootArgs,
}

impl SignatureArgs {
    /// The policy these flags describe.
    pub fn policy(&self) -> SignaturePolicy {
        let SignerArgs {
            certificate_identity,
            certificate_identity_regexp,
            certificate_oidc_issuer,
            certificate_oidc_issuer_regexp,
            github_repository,
            github_ref,
            github_workflow,
            github_trigger,
            github_sha,
            runner_environment,
            key,
            insecure_ignore_tlog,
        } = self.signer.clone();
        let RootArgs {
            trusted_root,
            tuf_url,
            tuf_root,
            tuf_cache,
            tuf_offline,
        } = self.root.clone();
        SignaturePolicy {
            identity: certificate_identity,
            identity_regexp: certificate_identity_regexp,
            issuer: certificate_oidc_issuer,
            issuer_regexp: certificate_oidc_issuer_regexp,
            repository: github_repository,
            git_ref: github_ref,
            workflow: github_workflow,
            trigger: github_trigger,
            sha: github_sha,
            runner_environment,
            key,
            insecure_ignore_tlog,
            trusted_root,
            tuf_url,
            tuf_root,
            tuf_cache,
            tuf_offline,
        }
    }
}
