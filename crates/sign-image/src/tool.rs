//! The run: resolve every image first, then sign each digest, attach the bundle, optionally
//! write cosign's legacy `.sig`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use gantry_actions::{Branding, Context, Outcome, Tool, ToolSpec};
use gantry_sigstore::sign::{COSIGN_SIGN_PREDICATE, Identity, Services, SigningKey};

use crate::args::Args;
use crate::report::{self, Report};

/// Rekor v1 of the public-good instance, where key-based signatures are logged by default.
pub const PUBLIC_REKOR: &str = "https://rekor.sigstore.dev";

/// The sign-image tool.
pub struct SignImage;

impl Tool for SignImage {
    type Args = Args;
    const SPEC: ToolSpec = ToolSpec {
        name: "sign-image",
        description: "Sign images by digest with Sigstore, keyless or with a key, stored as cosign v3 does.",
        branding: Branding {
            icon: "edit-3",
            color: "purple",
        },
        outputs: Report::SPEC,
        secret_inputs: &[
            "github-token",
            "registry-password",
            "identity-token",
            "key-password",
        ],
        action_defaults: gantry_args::ACTION_DEFAULTS,
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
            ("--identity-token-file", args.identity_token_file.is_some()),
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
    let given = gantry_args::secret(
        args.identity_token.as_ref(),
        args.identity_token_file.as_deref(),
        "identity-token-file",
    )?;
    let token = match given {
        Some(token) => token,
        None => ctx
            .id_token("sigstore")
            .await
            .context("keyless signing needs an identity token")?,
    };
    Ok(Identity::Keyless { token, services })
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
        signed.push(report::Signed {
            image: target,
            signature: manifest.digest,
            log_index,
        });
    }
    Ok(report::outcome(&identity, &signed, args.legacy_sig))
}
