//! `gantry registry serve`: the embedded OCI registry as a command, for the demo and for trying
//! the tools on a laptop without a registry account.

use gantry_actions::output;
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
/// How clients authenticate to `registry serve`.
pub enum AuthKind {
    /// No authentication.
    None,
    /// HTTP basic authentication.
    Basic,
    /// The bearer-token challenge flow, with tokens issued at /token.
    Bearer,
}

#[derive(Debug, Args)]
/// The options of `registry serve`.
pub struct ServeArgs {
    /// Address to listen on (an IP address and port); loopback unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1:5000", value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Keep content in this directory (reloaded on the next start); else a temporary directory
    /// removed when the registry stops.
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
    /// The URL clients use to reach the registry (e.g. https://registry.example:5000): bearer
    /// challenges name its /token as the realm. Default: the scheme and the bound address.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// The largest blob accepted, in bytes (suffixes K, M, G: powers of 1024).
    #[arg(long, value_name = "SIZE", default_value = "8G", value_parser = parse_size)]
    pub max_blob_size: u64,
    /// Bytes all unfinished uploads may hold together (suffixes K, M, G).
    #[arg(long, value_name = "SIZE", default_value = "32G", value_parser = parse_size)]
    pub upload_budget: u64,
}

/// `IP:PORT`, with a message that says a host name is not enough.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        "expected an IP address and port such as 127.0.0.1:5000 or [::1]:5000, not a host name (the registry binds exactly this address)".to_owned()
    })
}

/// A byte count with an optional K, M or G suffix (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&text[..text.len() - 1], 10),
        Some('M') => (&text[..text.len() - 1], 20),
        Some('G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("expected a size such as 1048576, 512M or 8G, not {text:?}"))
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

/// Runs `registry serve` until interrupted.
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
            output::err(
                "error: --auth basic and --auth bearer need --password (or GANTRY_REGISTRY_PASSWORD)",
            );
            return ExitStatus::Error;
        }
    };
    let tls = args
        .tls_cert
        .zip(args.tls_key)
        .map(|(cert, key)| TlsFiles { cert, key });
    let scheme = if tls.is_some() { "https" } else { "http" };
    if args.allow_remote && !args.addr.ip().is_loopback() {
        if auth == AuthMode::None {
            output::err(&format!(
                "warning: serving {} to other hosts WITHOUT AUTHENTICATION: anyone who can reach it may push, overwrite tags and delete\nhint: add --auth bearer --password … (and --tls-cert/--tls-key), or listen on 127.0.0.1",
                args.addr
            ));
        }
        if tls.is_none() && auth != AuthMode::None {
            output::err(&format!(
                "warning: serving {} to other hosts over plain HTTP: passwords and tokens cross the network in cleartext\nhint: add --tls-cert and --tls-key",
                args.addr
            ));
        }
    }
    let config = Config {
        addr: args.addr,
        storage: args.storage,
        auth,
        allow_remote: args.allow_remote,
        tls,
        public_url: args.public_url,
        limits: gantry_registry::Limits {
            max_blob_size: args.max_blob_size,
            budget: args.upload_budget,
            ..gantry_registry::Limits::default()
        },
        ..Config::default()
    };
    let result = gantry_actions::app::block_on(async move {
        let running = gantry_registry::start(config).await?;
        output::err(&format!(
            "gantry registry listening on {scheme}://{} (Ctrl-C stops it)",
            running.addr()
        ));
        let _ = tokio::signal::ctrl_c().await;
        running.stop().await;
        Ok::<_, gantry_registry::ServeError>(())
    });
    match result {
        Ok(Ok(())) => ExitStatus::Success,
        Ok(Err(e)) => {
            output::err(&format!(
                "error: registry serve: {:#}",
                anyhow::Error::new(e)
            ));
            ExitStatus::Error
        }
        Err(e) => {
            output::err(&format!("error: {e:#}"));
            ExitStatus::Error
        }
    }
}
