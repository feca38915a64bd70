//! `gantry registry serve`: the embedded OCI registry as a command, for the demo and for trying
//! the tools on a laptop without a registry account.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use gantry_actions::{ExitStatus, Secret};
use gantry_registry::{AuthMode, Config, TlsFiles};

/// Run gantry's embedded OCI registry (distribution-spec 1.1 with the referrers API).
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve until interrupted.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthKind {
    /// No authentication.
    None,
    /// HTTP basic authentication.
    Basic,
    /// The bearer-token challenge flow, with tokens issued at /token.
    Bearer,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; loopback unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: SocketAddr,
    /// Keep content in this directory (reloaded on the next start); in memory if not given.
    #[arg(long, value_name = "DIR")]
    pub storage: Option<PathBuf>,
    /// How clients authenticate.
    #[arg(long, value_enum, default_value_t = AuthKind::None)]
    pub auth: AuthKind,
    /// User name for basic and bearer auth.
    #[arg(long, default_value = "gantry")]
    pub username: String,
    /// Password for basic and bearer auth.
    #[arg(long, env = "GANTRY_REGISTRY_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
    /// Allow a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The `registry` subcommand.
pub fn command() -> clap::Command {
    use clap::Subcommand as _;
    RegistryCommand::augment_subcommands(
        clap::Command::new("registry")
            .about(
                "Run gantry's embedded OCI registry (distribution-spec 1.1 with the referrers API)",
            )
            .subcommand_required(true),
    )
}

#[expect(clippy::print_stderr, reason = "the command's output layer")]
pub fn run(command: RegistryCommand) -> ExitStatus {
    let RegistryCommand::Serve(args) = command;
    gantry_actions::logging::init(gantry_actions::Mode::Cli);
    let auth = match (args.auth, args.password) {
        (AuthKind::None, _) => AuthMode::None,
        (AuthKind::Basic, Some(password)) => AuthMode::Basic {
            username: args.username,
            password,
        },
        (AuthKind::Bearer, Some(password)) => AuthMode::Bearer {
            username: args.username,
            password,
        },
        (_, None) => {
            eprintln!(
                "error: --auth basic and --auth bearer need --password (or GANTRY_REGISTRY_PASSWORD)"
            );
            return ExitStatus::Error;
        }
    };
    let tls = args
        .tls_cert
        .zip(args.tls_key)
        .map(|(cert, key)| TlsFiles { cert, key });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = Config {
        addr: args.addr,
        storage: args.storage,
        auth,
        allow_remote: args.allow_remote,
        tls,
        ..Config::default()
    };
    let result = gantry_actions::app::block_on(async move {
        let running = gantry_registry::start(config).await?;
        eprintln!(
            "gantry registry listening on {scheme}://{} (Ctrl-C stops it)",
            running.addr()
        );
        let _ = tokio::signal::ctrl_c().await;
        running.stop().await;
        Ok::<_, gantry_registry::ServeError>(())
    });
    match result {
        Ok(Ok(())) => ExitStatus::Success,
        Ok(Err(e)) => {
            eprintln!("error: registry serve: {:#}", anyhow::Error::new(e));
            ExitStatus::Error
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitStatus::Error
        }
    }
}
