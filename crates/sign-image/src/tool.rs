//! The run: resolve every image first, then sign each digest, attach the bundle, optionally
//! write cosign's legacy `.sig`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use gantry_actions::{Branding, Context, Outcome, Tool, ToolSpec};
use gantry_sigstore::sign::COSIGN_SIGN_PREDICATE;

use crate::args::Args;
use crate::report::{self, Report};

pub use gantry_args::PUBLIC_REKOR;

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
        secret_inputs: gantry_args::SIGNING_SECRET_INPUTS,
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

async fn sign(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
    let annotations = annotations(&args)?;
    let images = &args.images.images;
    if let Some(dir) = &args.bundle_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let identity = args.signing.identity(|| ctx.id_token("sigstore")).await?;
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
