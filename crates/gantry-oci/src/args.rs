//! The registry options every tool takes, and the client they make.

use std::path::PathBuf;

use gantry_secret::Secret;

use crate::{Client, ClientOptions, Credential, Credentials, Reference};

/// How a tool reaches registries: credentials from the Docker config, a GitHub token for ghcr.io,
/// plain-HTTP registries and extra CAs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// GitHub token: pulls and pushes on ghcr.io; a tool that calls GitHub's API uses it there too.
    #[arg(long, value_name = "TOKEN")]
    pub github_token: Option<Secret>,

    /// Registries spoken to over plain HTTP (host:port).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// Extra CA certificates (PEM files) to trust.
    #[arg(long = "ca-file", value_name = "PATH")]
    pub ca_files: Vec<PathBuf>,
}

impl RegistryArgs {
    /// A client with the Docker config's credentials, and the GitHub token for ghcr.io when one of
    /// `references` is there.
    pub fn client(&self, references: &[&Reference]) -> anyhow::Result<Client> {
        let mut credentials = Credentials::anonymous().with_docker_config(None)?;
        if let Some(token) = &self.github_token
            && references.iter().any(|r| r.registry() == "ghcr.io")
        {
            credentials = credentials.with("ghcr.io", Credential::github_token(token.clone()));
        }
        let options = ClientOptions {
            plain_http: self.insecure_registries.clone(),
            ca_files: self.ca_files.clone(),
            ..ClientOptions::default()
        };
        Ok(Client::new(options, credentials)?)
    }

    /// An HTTP client for the services beside the registries (Sigstore's, a TUF repository),
    /// trusting the same CAs, with a one-minute request timeout.
    pub fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        let roots = gantry_http::roots(&self.ca_files)?;
        Ok(gantry_http::client(
            &roots,
            std::time::Duration::from_mins(1),
        )?)
    }
}
