//! How a tool reaches registries.

use std::path::PathBuf;

use gantry_oci::{Client, ClientOptions, Credential, Credentials, Reference};
use gantry_secret::Secret;

/// Registry access: credentials (flags, a file, `GANTRY_REGISTRY_PASSWORD`, else Docker's
/// `config.json`), plain-HTTP registries, extra CAs and token services to trust.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// User name for the registries of the images (with `registry-password`); any name works for
    /// ghcr.io and most token-as-password registries.
    #[arg(long, value_name = "USER", default_value = "gantry")]
    pub registry_username: String,

    /// Password or token for the registries of the images. Also read from
    /// `GANTRY_REGISTRY_PASSWORD`, or a file with `registry-password-file`. Without it: Docker's
    /// `config.json`, and for ghcr.io the GitHub token.
    #[arg(
        long,
        value_name = "SECRET",
        env = "GANTRY_REGISTRY_PASSWORD",
        hide_env_values = true,
        conflicts_with = "registry_password_file"
    )]
    pub registry_password: Option<Secret>,

    /// A file holding the registry password or token.
    #[arg(long, value_name = "PATH")]
    pub registry_password_file: Option<PathBuf>,

    /// Registries spoken to over plain HTTP (host:port). Loopback registries (`localhost`,
    /// `127.0.0.1`, `[::1]`) need not be listed: they are tried over HTTPS, then plain HTTP.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// Extra CA certificates (PEM files) to trust.
    #[arg(long = "ca-file", value_name = "PATH")]
    pub ca_files: Vec<PathBuf>,

    /// Token services on another host than their registry that may receive its credentials
    /// (Docker Hub's is known). Without it, such a service is asked for an anonymous token.
    #[arg(long = "registry-token-host", value_name = "HOST")]
    pub token_hosts: Vec<String>,
}

impl RegistryArgs {
    /// A client for `references`: the registry password for their registries when one is given,
    /// else `github_token` for ghcr.io; Docker's config for the rest.
    pub fn client(
        &self,
        references: &[&Reference],
        github_token: Option<&Secret>,
    ) -> anyhow::Result<Client> {
        let mut credentials = Credentials::anonymous().with_docker_config(None)?;
        let password = crate::secret(
            self.registry_password.as_ref(),
            self.registry_password_file.as_deref(),
            "registry-password-file",
        )?;
        for reference in references {
            let registry = reference.registry();
            if let Some(password) = &password {
                credentials = credentials.with(
                    registry,
                    Credential::Basic {
                        username: self.registry_username.clone(),
                        password: password.clone(),
                    },
                );
            } else if let Some(token) = github_token
                && registry == "ghcr.io"
            {
                credentials = credentials.with(registry, Credential::github_token(token.clone()));
            }
        }
        let options = ClientOptions {
            plain_http: self.insecure_registries.clone(),
            ca_files: self.ca_files.clone(),
            token_hosts: self.token_hosts.clone(),
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
