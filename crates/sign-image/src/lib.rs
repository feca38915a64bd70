//! `sign-image`: signs images by digest the way cosign v3 does, so `cosign verify` and gantry's
//! `verify-image` accept them: an in-toto statement for the digest in a DSSE envelope, in a
//! Sigstore bundle stored as a referrer of the image (with the fallback tag where the registry has
//! no referrers API).
//!
//! The one decision: a tag is resolved once, and the digest it named is what gets signed and
//! reported; nothing is signed "by tag".

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use gantry_actions::{Branding, Context, Outcome, OutputSpec, Secret, Tool, ToolSpec};
use gantry_args::{GitHubTokenArgs, ImagesArgs, RegistryArgs};
use gantry_oci::{Digest, Reference};
use gantry_sigstore::sign::{COSIGN_SIGN_PREDICATE, Identity, Services, SigningKey};

/// Rekor v1 of the public-good instance, where key-based signatures are logged by default.
pub const PUBLIC_REKOR: &str = "https://rekor.sigstore.dev";

/// Sign images by digest with Sigstore (keyless through Fulcio and Rekor, or with a key).
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// The images to sign (a tag is resolved once and its digest signed).
    #[command(flatten)]
    pub images: ImagesArgs,

    /// Sign with this private key (PKCS#8 PEM, or cosign's encrypted key) instead of keyless.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    /// The password of an encrypted key.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "COSIGN_PASSWORD",
        hide_env_values = true
    )]
    pub key_password: Option<Secret>,

    /// The OIDC token for Fulcio; default: requested from GitHub Actions (needs
    /// `permissions: id-token: write`). Also read from `SIGSTORE_ID_TOKEN`, or a file with
    /// `identity-token-file`.
    #[arg(
        long,
        value_name = "JWT",
        env = "SIGSTORE_ID_TOKEN",
        hide_env_values = true,
        conflicts_with = "identity_token_file"
    )]
    pub identity_token: Option<Secret>,

    /// A file holding the OIDC token for Fulcio.
    #[arg(long, value_name = "PATH")]
    pub identity_token_file: Option<PathBuf>,

    /// Sigstore services from a signing config (v0.2 JSON); default: the public-good instance.
    #[arg(long, value_name = "PATH")]
    pub signing_config: Option<PathBuf>,

    /// Fulcio to ask for the certificate (overrides the signing config).
    #[arg(long, value_name = "URL")]
    pub fulcio_url: Option<String>,

    /// Rekor (v1) to log the signature in (overrides the signing config).
    #[arg(long, value_name = "URL")]
    pub rekor_url: Option<String>,

    /// RFC 3161 timestamp authority to ask for a timestamp (overrides the signing config).
    #[arg(long, value_name = "URL")]
    pub tsa_url: Option<String>,

    /// Log a key-based signature in Rekor. Without it, verifiers must waive the log
    /// (`insecure-ignore-tlog`). Keyless signatures are always logged.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tlog_upload: bool,

    /// Annotations signed into the statement's predicate (KEY=VALUE).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// Also write cosign's legacy `.sig` signature (simple-signing payload, signature, certificate
    /// and Rekor bundle in annotations) for verifiers older than cosign v3. Needs Rekor v1.
    #[arg(long)]
    pub legacy_sig: bool,

    /// Also write each bundle here (a directory; one `<hex>.sigstore.json` per digest).
    #[arg(long, value_name = "DIR")]
    pub bundle_dir: Option<PathBuf>,

    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// The GitHub token (ghcr.io).
    #[command(flatten)]
    pub github: GitHubTokenArgs,
}

pub struct SignImage;

/// The tool's entry for a multi-call binary.
pub const ENTRY: gantry_actions::ToolEntry = gantry_actions::ToolEntry::of::<SignImage>();

impl Tool for SignImage {
    type Args = Args;
    const SPEC: ToolSpec = ToolSpec {
        name: "sign-image",
        description: "Sign images by digest with Sigstore, keyless or with a key, stored as cosign v3 does.",
        branding: Branding {
            icon: "edit-3",
            color: "purple",
        },
        outputs: &[
            OutputSpec {
                name: "digest",
                description: "The digests signed, one per line, in the order given.",
            },
            OutputSpec {
                name: "signature",
                description: "The referrer manifests that hold the signatures, one per line.",
            },
            OutputSpec {
                name: "log-index",
                description: "The Rekor log indexes of the signatures, one per line (empty when not logged).",
            },
        ],
        secret_inputs: &[
            "github-token",
            "registry-password",
            "identity-token",
            "key-password",
        ],
        action_defaults: &[("github-token", "${{ github.token }}")],
        publish_action: true,
    };

    async fn run(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
        sign(args, ctx).await
    }
}

/// Checks every input before anything is signed: bad input changes nothing.
fn annotations(args: &Args) -> anyhow::Result<BTreeMap<String, String>> {
    args.annotations
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => anyhow::bail!("--annotation {pair:?} is not KEY=VALUE"),
        })
        .collect()
}

fn services(args: &Args) -> anyhow::Result<Services> {
    let mut services = match &args.signing_config {
        Some(path) => Services::from_signing_config(path)?,
        None => Services::production()?,
    };
    if let Some(url) = &args.fulcio_url {
        services.fulcio.clone_from(url);
    }
    if let Some(url) = &args.rekor_url {
        services.rekor.clone_from(url);
        services.rekor_v2 = false;
    }
    if let Some(url) = &args.tsa_url {
        services.tsa = Some(url.clone());
    }
    Ok(services)
}

async fn identity(args: &Args, ctx: &Context) -> anyhow::Result<Identity> {
    if let Some(path) = &args.key {
        let keyless_only = [
            ("--identity-token", args.identity_token.is_some()),
            ("--signing-config", args.signing_config.is_some()),
            ("--fulcio-url", args.fulcio_url.is_some()),
            ("--tsa-url", args.tsa_url.is_some()),
        ];
        if let Some((flag, _)) = keyless_only.iter().find(|(_, given)| *given) {
            anyhow::bail!(
                "{flag} applies to keyless signing; with --key it would be ignored, so gantry refuses to guess which was meant"
            );
        }
        let key = SigningKey::from_file(path, args.key_password.as_ref())?;
        let rekor = args.tlog_upload.then(|| {
            args.rekor_url
                .clone()
                .unwrap_or_else(|| PUBLIC_REKOR.to_owned())
        });
        return Ok(Identity::Key {
            key: Box::new(key),
            rekor,
        });
    }
    if !args.tlog_upload {
        anyhow::bail!(
            "--tlog-upload false applies to key-based signing only: a keyless certificate is short-lived and proven only by its log entry"
        );
    }
    let services = services(args)?;
    let token = match &args.identity_token {
        Some(token) => token.clone(),
        None => ctx
            .id_token("sigstore")
            .await
            .context("keyless signing needs an identity token")?,
    };
    Ok(Identity::Keyless { token, services })
}

/// One signed digest.
struct Signed {
    image: Reference,
    signature: Digest,
    log_index: Option<u64>,
}

async fn sign(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
    let annotations = annotations(&args)?;
    let images = &args.images.images;
    if let Some(dir) = &args.bundle_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let identity = identity(&args, ctx).await?;
    let client = args
        .registry
        .client(&args.images.references(), args.github.token()?.as_ref())?;
    let http = args.registry.http_client()?;
    // Resolve everything first: a missing image fails before any signature is made.
    let mut targets = Vec::new();
    for image in images {
        for target in client
            .pinned(image, args.images.recursive)
            .await
            .with_context(|| format!("reading {image}"))?
        {
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    let mut signed = Vec::new();
    for target in targets {
        let digest = target
            .digest()
            .cloned()
            .context("resolved image without digest")?;
        let statement =
            gantry_sigstore::sign::image_statement(&target.name(), &digest, &annotations);
        let bundle = gantry_sigstore::sign::sign_statement(&identity, &http, &statement)
            .await
            .with_context(|| format!("signing {target}"))?;
        if let Some(dir) = &args.bundle_dir {
            let path = dir.join(format!("{}.sigstore.json", digest.hex()));
            std::fs::write(&path, bundle.to_json().context("serialising the bundle")?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let manifest =
            gantry_sigstore::sign::attach(&client, &target, &bundle, COSIGN_SIGN_PREDICATE)
                .await
                .with_context(|| format!("attaching the signature to {target}"))?;
        if args.legacy_sig {
            let payload = gantry_sigstore::legacy::payload(&target, &digest);
            let legacy = gantry_sigstore::sign::sign_message(&identity, &http, &payload)
                .await
                .with_context(|| format!("signing {target} for the legacy .sig"))?;
            let annotations = gantry_sigstore::legacy::annotations(&legacy)?;
            gantry_sigstore::legacy::attach(&client, &target, &payload, &annotations)
                .await
                .with_context(|| format!("writing the legacy .sig of {target}"))?;
        }
        let log_index = bundle
            .verification_material
            .tlog_entries
            .first()
            .map(|entry| u64::from(entry.log_index));
        signed.push(Signed {
            image: target,
            signature: manifest.digest,
            log_index,
        });
    }
    Ok(report(&identity, &signed, args.legacy_sig))
}

fn report(identity: &Identity, signed: &[Signed], legacy: bool) -> Outcome {
    let who = match identity {
        Identity::Keyless { services, .. } => format!("keyless (Fulcio {})", services.fulcio),
        Identity::Key { rekor: Some(_), .. } => "the given key".to_owned(),
        Identity::Key { rekor: None, .. } => {
            "the given key, not logged (verifiers must waive the log)".to_owned()
        }
    };
    let mut summary = format!(
        "## gantry sign-image\n\nSigned with {who}{}.\n\n| image | signature | log index |\n|---|---|---|\n",
        if legacy {
            "; a legacy `.sig` signature written as well"
        } else {
            ""
        }
    );
    for s in signed {
        let _ = writeln!(
            summary,
            "| `{}` | `{}` | {} |",
            s.image,
            s.signature,
            s.log_index.map(|i| i.to_string()).unwrap_or_default()
        );
    }
    let lines = |f: &dyn Fn(&Signed) -> String| signed.iter().map(f).collect::<Vec<_>>().join("\n");
    Outcome::success()
        .output(
            "digest",
            lines(&|s| {
                s.image
                    .digest()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            }),
        )
        .output("signature", lines(&|s| s.signature.to_string()))
        .output(
            "log-index",
            lines(&|s| s.log_index.map(|i| i.to_string()).unwrap_or_default()),
        )
        .summary(summary)
}
