//! `gantry verify-bundle`: one Sigstore bundle over a file or a digest, following
//! sigstore-conformance's CLI protocol, so the conformance suite (vendored in
//! `crates/gantry-sigstore/conformance`) can run against the real binary.
//!
//! ```text
//! gantry verify-bundle --bundle B --certificate-identity I --certificate-oidc-issuer U [--trusted-root T] FILE_OR_DIGEST
//! gantry verify-bundle --bundle B --key K [--trusted-root T] FILE_OR_DIGEST
//! ```
//! `FILE_OR_DIGEST` is a path or `sha256:<hex>`. Exit 0: verified; 1: not verified (the reason on
//! stderr); 2: usage, or a file that cannot be read.

use gantry_actions::output;
use std::path::PathBuf;

use clap::{ArgGroup, Args};
use gantry_actions::ExitStatus;
use gantry_sigstore::{Matcher, RootSource, Signer, SigstoreError, Subject};

/// Verify a Sigstore bundle over a file or digest (sigstore-conformance's protocol).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("who").required(true).args(["certificate_identity", "certificate_identity_regexp", "key"])))]
pub struct VerifyBundleArgs {
    /// The bundle (JSON, v0.1 to v0.3).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The signer's exact identity (the certificate's SAN).
    #[arg(long, requires = "issuer")]
    pub certificate_identity: Option<String>,
    /// A regular expression the whole identity must match.
    #[arg(long, value_name = "REGEX", requires = "issuer")]
    pub certificate_identity_regexp: Option<String>,
    /// The exact OIDC issuer.
    #[arg(long, value_name = "URL")]
    pub certificate_oidc_issuer: Option<String>,
    /// A regular expression the whole issuer must match.
    #[arg(long, value_name = "REGEX")]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// Verify with this public key (PEM) instead of a certificate identity.
    #[arg(long, value_name = "PEM", conflicts_with_all = ["certificate_identity", "certificate_identity_regexp"])]
    pub key: Option<PathBuf>,
    /// The trusted root (JSON); default: the embedded production root. Never fetched.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// The signed file, or its digest as sha256:<hex>.
    #[arg(value_name = "FILE_OR_DIGEST")]
    pub subject: String,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The `verify-bundle` subcommand.
pub fn command() -> clap::Command {
    VerifyBundleArgs::augment_args(
        clap::Command::new("verify-bundle")
            .about("Verify a Sigstore bundle over a file or digest (sigstore-conformance's CLI protocol)")
            .group(ArgGroup::new("issuer").args(["certificate_oidc_issuer", "certificate_oidc_issuer_regexp"])),
    )
}

/// Runs `verify-bundle`: exit 0 verified, 1 not, 2 usage or unreadable input.
pub fn run(args: VerifyBundleArgs) -> ExitStatus {
    let json = args.json;
    let (status, body) = match verify(args) {
        Ok(verified) => {
            let who = match (&verified.identity, &verified.issuer) {
                (Some(identity), Some(issuer)) => format!("{identity} ({issuer})"),
                _ => "the given key".to_owned(),
            };
            if !json {
                output::out(&format!("verified: signed by {who}"));
            }
            let body = serde_json::json!({
                "tool": "verify-bundle",
                "status": "success",
                "exit-code": 0,
                "identity": verified.identity,
                "issuer": verified.issuer,
            });
            (ExitStatus::Success, body)
        }
        Err(error) => {
            let status = match error {
                SigstoreError::Read { .. }
                | SigstoreError::Regex(..)
                | SigstoreError::Policy(..) => ExitStatus::Error,
                _ => ExitStatus::Failure,
            };
            // The whole chain: a file error says which file and why.
            let message = format!("{:#}", anyhow::Error::new(error));
            output::err(&format!("error: verify-bundle: {message}"));
            let body = serde_json::json!({
                "tool": "verify-bundle",
                "status": if status == ExitStatus::Error { "error" } else { "failed" },
                "exit-code": status.code(),
                "error": message,
            });
            (status, body)
        }
    };
    if json {
        output::out_json(&body.to_string());
    }
    status
}

fn verify(args: VerifyBundleArgs) -> Result<gantry_sigstore::Verified, SigstoreError> {
    let root = gantry_sigstore::trusted_root(&match args.trusted_root {
        Some(path) => RootSource::File(path),
        None => RootSource::Production,
    })?;
    let bundle_json =
        std::fs::read_to_string(&args.bundle).map_err(|source| SigstoreError::Read {
            path: args.bundle.clone(),
            source,
        })?;
    let bundle = gantry_sigstore::parse_bundle(&args.bundle.display().to_string(), &bundle_json)?;
    let signer = match &args.key {
        Some(path) => Signer::key_file(path)?,
        None => Signer::Identity {
            identity: matcher(
                args.certificate_identity.as_deref(),
                args.certificate_identity_regexp.as_deref(),
            )?,
            issuer: matcher(
                args.certificate_oidc_issuer.as_deref(),
                args.certificate_oidc_issuer_regexp.as_deref(),
            )?,
            claims: Box::default(),
        },
    };
    let bytes;
    let subject = if let Some(hex) = args.subject.strip_prefix("sha256:") {
        Subject::Sha256(hex)
    } else {
        let path = PathBuf::from(&args.subject);
        bytes = std::fs::read(&path).map_err(|source| SigstoreError::Read { path, source })?;
        Subject::Bytes(&bytes)
    };
    gantry_sigstore::verify(&bundle, subject, &signer, &root)
}

fn matcher(exact: Option<&str>, regex: Option<&str>) -> Result<Matcher, SigstoreError> {
    match (exact, regex) {
        (Some(text), _) => Ok(Matcher::exact(text)),
        (None, Some(pattern)) => Matcher::regex(pattern),
        // Never a wildcard: clap requires one of them, and a policy that checks nothing is refused.
        (None, None) => Err(SigstoreError::Policy(
            "give an identity and an issuer (exact or regexp)".to_owned(),
        )),
    }
}
