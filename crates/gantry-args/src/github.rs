//! The GitHub token, and the API it is used with.

use std::path::PathBuf;

use gantry_secret::Secret;

/// The GitHub token: from a flag, `GANTRY_GITHUB_TOKEN` or a file, so that it need not sit on a
/// command line where other processes can read it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GitHubTokenArgs {
    /// GitHub token: GitHub's API where the tool calls it, and ghcr.io when no registry password
    /// is given. Also read from `GANTRY_GITHUB_TOKEN`, or a file with `github-token-file`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GANTRY_GITHUB_TOKEN",
        hide_env_values = true,
        conflicts_with = "github_token_file"
    )]
    pub github_token: Option<Secret>,

    /// A file holding the GitHub token.
    #[arg(long, value_name = "PATH")]
    pub github_token_file: Option<PathBuf>,
}

impl GitHubTokenArgs {
    /// The token, from the flag, the variable or the file; `None` when none was given.
    pub fn token(&self) -> anyhow::Result<Option<Secret>> {
        crate::secret(
            self.github_token.as_ref(),
            self.github_token_file.as_deref(),
            "github-token-file",
        )
    }
}

/// GitHub's REST API: the token and where the API lives.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GitHubApiArgs {
    /// The token.
    #[command(flatten)]
    pub token: GitHubTokenArgs,

    /// The GitHub REST API; default `GITHUB_API_URL`, then `https://api.github.com`.
    #[arg(long, value_name = "URL")]
    pub github_api_url: Option<String>,
}

impl GitHubApiArgs {
    /// A client with `token` for this API (`github-api-url`, else the runner's `GITHUB_API_URL`
    /// given as `runner_api_url`, else github.com), trusting `ca_files` too.
    pub fn client(
        &self,
        token: Secret,
        runner_api_url: Option<&str>,
        ca_files: &[PathBuf],
    ) -> anyhow::Result<gantry_github::GitHub> {
        let mut options = gantry_github::Options::new(token);
        options.api_url = self
            .github_api_url
            .clone()
            .or_else(|| runner_api_url.map(str::to_owned));
        options.ca_files = ca_files.to_vec();
        Ok(gantry_github::GitHub::new(options)?)
    }
}
