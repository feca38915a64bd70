//! The run: read the gate's inputs, pin every image, verify signatures and attestations, judge
//! the vulnerability reports, report every failure at once.

use anyhow::Context as _;
use gantry_actions::{Branding, Context, Outcome, Tool, ToolSpec};
use gantry_oci::{Client, Reference};
use gantry_sigstore::oci::{
    AttestationVerified, ImageError, ImageVerified, add_legacy_attestations, discover,
    verify_attestations, verify_signature,
};
use gantry_sigstore::{Signer, TrustedRoot};

use crate::args::Args;
use crate::gate::{self, Judged};
use crate::report::{self, Report};
use crate::vulns;

/// The verify-image tool.
pub struct VerifyImage;

impl Tool for VerifyImage {
    type Args = Args;
    const SPEC: ToolSpec = ToolSpec {
        name: "verify-image",
        description: "Verify that images carry Sigstore signatures from the expected identity or key, in either of cosign's formats.",
        branding: Branding {
            icon: "shield",
            color: "purple",
        },
        outputs: Report::SPEC,
        secret_inputs: gantry_args::SECRET_INPUTS,
        action_defaults: gantry_args::ACTION_DEFAULTS,
        publish_action: true,
    };

    async fn run(args: Args, _ctx: &Context) -> anyhow::Result<Outcome> {
        verify(args).await
    }
}

/// What verifying one image (or platform) found.
pub(crate) enum Checked {
    Proven(Reference, Box<ImageVerified>),
    /// Attestations of this predicate type verified (at least one).
    Attested(Reference, String, Vec<AttestationVerified>),
    Refused(Reference, String),
}

async fn verify(args: Args) -> anyhow::Result<Outcome> {
    let base = std::path::Path::new(".");
    anyhow::ensure!(
        args.require_signature || !args.require_attestations.is_empty(),
        "--require-signature false leaves nothing to verify: name the attestations with --require-attestation"
    );
    let policy = args.signature.policy();
    let signer = policy.signer(base)?;
    let gate = gate::inputs(&args.gate)?;
    let http = args.registry.http_client()?;
    let root = policy.root(base, &http).await?;
    let attestations: Vec<String> = args
        .require_attestations
        .iter()
        .map(|kind| gantry_sigstore::oci::predicate_type(kind))
        .collect();
    // The gate reads the attestations of the images named, not of each platform.
    let mut top_attestations = attestations.clone();
    if args.gate.vuln_attestation && !attestations.iter().any(|a| a == vulns::VULN_PREDICATE) {
        top_attestations.push(vulns::VULN_PREDICATE.to_owned());
    }
    let images = &args.images.images;
    let client = args
        .registry
        .client(&args.images.references(), args.github.token()?.as_ref())?;
    let mut checked = Vec::new();
    let mut tops = Vec::new();
    for image in images {
        let found = client
            .pinned(image, args.images.recursive)
            .await
            .with_context(|| format!("reading {image}"))?;
        tops.push(found[0].clone());
        for (i, target) in found.into_iter().enumerate() {
            let wanted = if i == 0 {
                &top_attestations
            } else {
                &attestations
            };
            checked.extend(
                check(
                    &client,
                    target,
                    &signer,
                    &root,
                    wanted,
                    args.require_signature,
                )
                .await?,
            );
        }
    }
    let judged: Vec<Judged> = match &gate {
        Some(gate) => gate::judge(gate, &tops, &checked),
        None => Vec::new(),
    };
    Ok(report::outcome(
        &signer,
        &checked,
        &judged,
        args.require_signature,
    ))
}

/// The signature (unless `signature` is false), then each required attestation. A refusal is a
/// result; a registry that cannot be read is an error (exit 2).
async fn check(
    client: &Client,
    image: Reference,
    signer: &Signer,
    root: &TrustedRoot,
    attestations: &[String],
    signature: bool,
) -> anyhow::Result<Vec<Checked>> {
    let found = match discover(client, &image).await {
        Ok(mut discovery) if !attestations.is_empty() => {
            add_legacy_attestations(client, &image, &mut discovery)
                .await
                .map(|()| discovery)
        }
        other => other,
    };
    let discovery = match found {
        Ok(discovery) => discovery,
        Err(ImageError::Registry(error)) => {
            return Err(
                anyhow::Error::new(error).context(format!("reading the signatures of {image}"))
            );
        }
        Err(refusal) => return Ok(vec![Checked::Refused(image, refusal.to_string())]),
    };
    let mut out = Vec::new();
    if signature {
        out.push(match verify_signature(&image, &discovery, signer, root) {
            Ok(verified) => Checked::Proven(image.clone(), Box::new(verified)),
            Err(refusal) => Checked::Refused(image.clone(), refusal.to_string()),
        });
    }
    for kind in attestations {
        out.push(
            match verify_attestations(&image, &discovery, kind, signer, root) {
                Ok(found) => match gantry_sigstore::oci::passing(kind, &found) {
                    Ok(()) => Checked::Attested(image.clone(), kind.clone(), found),
                    Err(refusal) => Checked::Refused(image.clone(), refusal),
                },
                Err(refusal) => Checked::Refused(image.clone(), refusal.to_string()),
            },
        );
    }
    Ok(out)
}
