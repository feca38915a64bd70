//! A GitOps environment's access: the token that writes to its repository (a git URL's user
//! too), and Argo CD's token and how long and how often to wait for it. promote-digest writes
//! promotions with them, canary-watch rollbacks.

use std::time::Duration;

use clap::Args;
use gantry_secret::Secret;

use crate::parse_duration;

/// The secret inputs of [`GitOpsArgs`].
pub const GITOPS_SECRET_INPUTS: &[&str] = &["gitops-token", "argocd-token"];

/// Reaching a `gitops:` environment's repository and its Argo CD application.
#[derive(Debug, Clone, Args)]
pub struct GitOpsArgs {
    /// A token that may write to the GitOps repository of a `gitops:` environment (on GitHub:
    /// `contents: write` there, and `pull-requests` and `statuses: write` for mode pull-request;
    /// for a git URL, the password with `gitops-username`); default the GitHub token. Also read
    /// from `GANTRY_GITOPS_TOKEN`.
    #[arg(
        long,
        value_name = "SECRET",
        env = "GANTRY_GITOPS_TOKEN",
        hide_env_values = true
    )]
    pub gitops_token: Option<Secret>,

    /// The user for a GitOps repository given as a git URL (with `gitops-token`).
    #[arg(long, value_name = "USER")]
    pub gitops_username: Option<String>,

    /// An Argo CD token (a project role's or an account's) for a `gitops:` environment whose
    /// `argocd:` syncs or waits: `applications, get` (and `sync`) on the application. Also read
    /// from `ARGOCD_AUTH_TOKEN`, as the argocd CLI does.
    #[arg(
        long,
        value_name = "SECRET",
        env = "ARGOCD_AUTH_TOKEN",
        hide_env_values = true
    )]
    pub argocd_token: Option<Secret>,

    /// How long to wait for Argo CD to run the commit written (synced, healthy, the operation
    /// succeeded).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub argocd_timeout: Duration,

    /// How often to read the Argo CD application while waiting.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub argocd_interval: Duration,
}

impl GitOpsArgs {
    /// The token that writes to the GitOps repository: `gitops-token`, else the GitHub token.
    pub fn token<'a>(&'a self, github_token: Option<&'a Secret>) -> Option<&'a Secret> {
        self.gitops_token.as_ref().or(github_token)
    }

    /// The Argo CD application the policy syncs or waits for, reachable with `argocd-token`;
    /// `None` when the policy does neither.
    pub fn deployer(
        &self,
        argocd: Option<&gantry_policy::ArgoCd>,
        ca_files: &[std::path::PathBuf],
    ) -> anyhow::Result<Option<gantry_gitops::argocd::Deployer>> {
        use anyhow::Context as _;
        let Some(a) = argocd.filter(|a| a.acts()) else {
            return Ok(None);
        };
        let token = self.argocd_token.as_ref().with_context(|| {
            format!(
                "the policy {} Argo CD application {}: give argocd-token (or ARGOCD_AUTH_TOKEN)",
                if a.sync { "syncs" } else { "waits for" },
                a.application
            )
        })?;
        let roots = gantry_http::roots(ca_files)?;
        Ok(Some(gantry_gitops::argocd::Deployer {
            client: gantry_gitops::argocd::ArgoCd::new(&a.server, token.clone(), &roots)?,
            application: a.application.clone(),
            until: a.until(),
            sync: a.sync,
            timeout: self.argocd_timeout,
            interval: self.argocd_interval,
        }))
    }
}
