//! The run: resolve the image (each platform of an index), catalogue each manifest's layers as
//! they stream in, write the SBOM, attach it as a referrer, sign and attach the attestation —
//! unless the same SBOM and attestation are already there.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use gantry_actions::{Branding, Context, Outcome, Tool, ToolSpec};
use gantry_oci::manifest::Platform;
use gantry_oci::{Artifact, ArtifactLayer, Client, Digest, Manifest, Reference};
use gantry_sbom::{CYCLONEDX_JSON, ImageOptions, Inventory, Subject};
use gantry_sigstore::sign::Identity;

use crate::args::Args;
use crate::report::{self, Made};

/// The in-toto predicate type of a CycloneDX SBOM (cosign's `--type cyclonedx`).
pub const CYCLONEDX_PREDICATE: &str = "https://cyclonedx.org/bom";

const INDEX_LIMIT: u64 = 4 * 1024 * 1024;

/// The sbom-attach tool.
pub struct SbomAttach;

impl Tool for SbomAttach {
    type Args = Args;
    const SPEC: ToolSpec = ToolSpec {
        name: "sbom-attach",
        description: "Catalogue an image's packages into a CycloneDX 1.6 SBOM, read straight from the registry, and attach it as a referrer and a signed attestation.",
        branding: Branding {
            icon: "list",
            color: "purple",
        },
        outputs: report::Report::SPEC,
        secret_inputs: gantry_args::SIGNING_SECRET_INPUTS,
        action_defaults: gantry_args::ACTION_DEFAULTS,
        publish_action: true,
    };

    async fn run(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
        match &args.rootfs {
            Some(dir) => local(&args, dir),
            None => remote(&args, ctx).await,
        }
    }
}

fn tool() -> gantry_sbom::Tool {
    gantry_sbom::Tool {
        name: "gantry".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

fn platform(args: &Args) -> anyhow::Result<Option<Platform>> {
    args.platform
        .as_deref()
        .map(|p| {
            p.parse::<Platform>()
                .with_context(|| format!("--platform {p}"))
        })
        .transpose()
}

/// `FILE` for one SBOM; `FILE` with `-<os>-<arch>` before the extension for one of several.
fn output_path(output: &Path, platform: Option<&str>, several: bool) -> PathBuf {
    match platform.filter(|_| several) {
        Some(platform) => {
            let suffix = platform.replace('/', "-");
            let stem = output
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = match output.extension() {
                Some(ext) => format!("{stem}-{suffix}.{}", ext.to_string_lossy()),
                None => format!("{stem}-{suffix}"),
            };
            output.with_file_name(name)
        }
        None => output.to_path_buf(),
    }
}

fn write_output(path: &Path, sbom: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, sbom).with_context(|| format!("writing {}", path.display()))
}

/// An image's platform manifests to catalogue: the manifest itself, or the children of an index
/// (those with a real platform: buildx's `unknown/unknown` attestation manifests are not images).
async fn targets(
    client: &Client,
    image: &Reference,
    platform: Option<&Platform>,
) -> anyhow::Result<Vec<(Reference, Manifest, Option<String>)>> {
    let manifest = client
        .manifest(image)
        .await
        .with_context(|| format!("reading {image}"))?;
    if !manifest.is_index() {
        anyhow::ensure!(
            platform.is_none(),
            "--platform applies to an index; {image} is a single image ({})",
            manifest.digest
        );
        return Ok(vec![(
            image.with_digest(manifest.digest.clone()),
            manifest,
            None,
        )]);
    }
    let children = match platform {
        Some(p) => vec![manifest.select_platform(p)?],
        None => manifest
            .fields()?
            .manifests
            .into_iter()
            .filter(|d| {
                d.platform
                    .as_ref()
                    .and_then(|p| p.get("os")?.as_str())
                    .is_some_and(|os| os != "unknown")
            })
            .collect(),
    };
    anyhow::ensure!(
        !children.is_empty(),
        "index {} of {image} has no platform manifests",
        manifest.digest
    );
    let mut out = Vec::new();
    for child in children {
        let reference = image.with_digest(child.digest.clone());
        let name = child.platform.as_ref().map(|p| {
            let field = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            let variant = field("variant");
            if variant.is_empty() {
                format!("{}/{}", field("os"), field("architecture"))
            } else {
                format!("{}/{}/{variant}", field("os"), field("architecture"))
            }
        });
        let child_manifest = client
            .manifest(&reference)
            .await
            .with_context(|| format!("reading {reference}"))?;
        out.push((reference, child_manifest, name));
    }
    Ok(out)
}

/// The in-toto statement of the attestation: subject the image, predicate the SBOM.
fn statement(image: &Reference, digest: &Digest, sbom: &[u8]) -> anyhow::Result<Vec<u8>> {
    let predicate: serde_json::Value = serde_json::from_slice(sbom).context("the SBOM is JSON")?;
    Ok(gantry_sigstore::sign::statement(
        &image.name(),
        digest,
        CYCLONEDX_PREDICATE,
        &predicate,
    ))
}

/// Attaches the SBOM as a referrer of `target`; whether it was there already.
async fn attach_referrer(
    client: &Client,
    target: &Reference,
    manifest: &Manifest,
    sbom: &[u8],
) -> anyhow::Result<(Digest, bool)> {
    let before = client
        .referrers(target, Some(CYCLONEDX_JSON))
        .await
        .with_context(|| format!("listing the referrers of {target}"))?;
    let artifact = Artifact {
        artifact_type: CYCLONEDX_JSON.to_owned(),
        layers: vec![ArtifactLayer {
            media_type: CYCLONEDX_JSON.to_owned(),
            bytes: sbom.to_vec().into(),
            annotations: BTreeMap::new(),
        }],
        subject: Some(manifest.descriptor()),
        annotations: BTreeMap::new(),
    };
    let referrer = client.push_artifact(target, &artifact).await.with_context(|| {
        format!(
            "attaching the SBOM ({} bytes) to {target}\nhint: a registry that limits blob or manifest sizes names its limit above",
            sbom.len()
        )
    })?;
    let already = before
        .descriptors
        .iter()
        .any(|d| d.digest == referrer.digest);
    Ok((referrer.digest, already))
}

/// Signs the SBOM attestation and attaches it, unless the same statement is attached already;
/// the attestation's digest and whether it existed.
async fn attest(
    client: &Client,
    http: &reqwest::Client,
    identity: &Identity,
    target: &Reference,
    digest: &Digest,
    sbom: &[u8],
) -> anyhow::Result<(Digest, bool)> {
    let statement = statement(target, digest, sbom)?;
    gantry_sigstore::sign::attest(
        client,
        http,
        identity,
        target,
        &statement,
        CYCLONEDX_PREDICATE,
    )
    .await
    .with_context(|| format!("attaching the SBOM attestation to {target}"))
}

async fn remote(args: &Args, ctx: &Context) -> anyhow::Result<Outcome> {
    let image = args
        .image
        .as_ref()
        .context("--image or --rootfs is required")?;
    let platform = platform(args)?;
    // Who signs is settled before any work: a bad key or a missing token changes nothing.
    let identity: Option<Identity> = if args.attest {
        Some(args.signing.identity(|| ctx.id_token("sigstore")).await?)
    } else {
        None
    };
    let client = args
        .registry
        .client(&[image], args.github.token()?.as_ref())?;
    let http = args.registry.http_client()?;
    let targets = targets(&client, image, platform.as_ref()).await?;
    let options = ImageOptions {
        jobs: args.jobs.max(1),
        max_layer_size: args.max_layer_size,
    };
    let several = targets.len() > 1;
    let mut made = Vec::new();
    for (target, manifest, platform_name) in targets {
        let digest = manifest.digest.clone();
        let found = gantry_sbom::catalog_image(&client, &target, &manifest, options)
            .await
            .with_context(|| format!("cataloguing {target}"))?;
        let subject = Subject {
            kind: "container",
            name: target.name(),
            version: Some(digest.to_string()),
            purl: gantry_sbom::purl::image(&target.name(), digest.as_str()),
            created: found.created.clone(),
        };
        let sbom = gantry_sbom::write(&found.inventory, &subject, &tool());
        if let Some(output) = &args.output {
            write_output(
                &output_path(output, platform_name.as_deref(), several),
                &sbom,
            )?;
        }
        let (referrer, mut already) = attach_referrer(&client, &target, &manifest, &sbom).await?;
        let attestation = match &identity {
            Some(identity) => {
                let (attestation, existed) =
                    attest(&client, &http, identity, &target, &digest, &sbom).await?;
                already &= existed;
                Some(attestation)
            }
            None => None,
        };
        made.push(Made {
            subject: digest.to_string(),
            platform: platform_name,
            inventory: found.inventory,
            sbom_digest: Digest::sha256(&sbom).to_string(),
            referrer: Some(referrer.to_string()),
            attestation: attestation.map(|d| d.to_string()),
            already,
        });
    }
    Ok(report::outcome(&made))
}

/// `--rootfs`: a directory, or an OCI layout; nothing is attached.
fn local(args: &Args, dir: &Path) -> anyhow::Result<Outcome> {
    let output = args.output.as_ref().context("--rootfs needs --output")?;
    anyhow::ensure!(
        args.image.is_none(),
        "--rootfs and --image are two ways to say what to catalogue; give one"
    );
    let name = args.name.clone().unwrap_or_else(|| {
        dir.canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "rootfs".into())
    });
    let mut made = Vec::new();
    if dir.join("oci-layout").is_file() {
        let manifests = layout_manifests(dir, platform(args)?.as_ref())?;
        let several = manifests.len() > 1;
        for (digest, platform_name) in manifests {
            let inventory = layout_inventory(dir, &digest, args.max_layer_size)?;
            let subject = Subject {
                kind: "container",
                name: name.clone(),
                version: Some(digest.to_string()),
                purl: None,
                created: inventory.1,
            };
            let sbom = gantry_sbom::write(&inventory.0, &subject, &tool());
            write_output(
                &output_path(output, platform_name.as_deref(), several),
                &sbom,
            )?;
            made.push(made_locally(
                digest.to_string(),
                platform_name,
                inventory.0,
                &sbom,
            ));
        }
    } else {
        anyhow::ensure!(
            args.platform.is_none(),
            "--platform applies to images, not to a directory"
        );
        let inventory = gantry_sbom::catalog_rootfs(dir)
            .with_context(|| format!("cataloguing {}", dir.display()))?;
        let subject = Subject {
            kind: "file",
            name: name.clone(),
            version: None,
            purl: None,
            created: None,
        };
        let sbom = gantry_sbom::write(&inventory, &subject, &tool());
        write_output(output, &sbom)?;
        made.push(made_locally(name, None, inventory, &sbom));
    }
    Ok(report::outcome(&made))
}

fn made_locally(
    subject: String,
    platform: Option<String>,
    inventory: Inventory,
    sbom: &[u8],
) -> Made {
    Made {
        subject,
        platform,
        inventory,
        sbom_digest: Digest::sha256(sbom).to_string(),
        referrer: None,
        attestation: None,
        already: false,
    }
}

/// A blob of an OCI layout, read whole (manifests, configs, indexes) and checked.
fn layout_blob(dir: &Path, digest: &Digest, limit: u64) -> anyhow::Result<Vec<u8>> {
    let path = dir
        .join("blobs")
        .join(digest.algorithm())
        .join(digest.hex());
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= limit,
        "{} is larger than {limit} bytes",
        path.display()
    );
    let actual = digest.hash_like(&bytes);
    anyhow::ensure!(
        actual == *digest,
        "{}: expected digest {digest}, the content hashes to {actual}",
        path.display()
    );
    Ok(bytes)
}

/// The image manifests of an OCI layout: every manifest `index.json` names (through nested
/// indexes), narrowed to `platform`.
fn layout_manifests(
    dir: &Path,
    platform: Option<&Platform>,
) -> anyhow::Result<Vec<(Digest, Option<String>)>> {
    let index_path = dir.join("index.json");
    let index =
        std::fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?;
    anyhow::ensure!(
        index.len() as u64 <= INDEX_LIMIT,
        "{} is too large",
        index_path.display()
    );
    let mut pending: Vec<(serde_json::Value, Option<String>)> =
        serde_json::from_slice::<serde_json::Value>(&index)
            .with_context(|| format!("{} is not JSON", index_path.display()))?["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d, None))
            .collect();
    let mut out = Vec::new();
    while let Some((descriptor, inherited)) = pending.pop() {
        let digest: Digest = serde_json::from_value(descriptor["digest"].clone())
            .context("a descriptor without a digest")?;
        let platform_name = descriptor
            .get("platform")
            .map(|p| {
                format!(
                    "{}/{}",
                    p["os"].as_str().unwrap_or(""),
                    p["architecture"].as_str().unwrap_or("")
                )
            })
            .or(inherited);
        let bytes = layout_blob(dir, &digest, INDEX_LIMIT)?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&bytes).context("a manifest that is not JSON")?;
        if let Some(children) = manifest.get("manifests").and_then(|m| m.as_array()) {
            pending.extend(children.iter().cloned().map(|c| (c, None)));
            continue;
        }
        if platform_name
            .as_deref()
            .is_some_and(|p| p.starts_with("unknown/"))
        {
            continue;
        }
        if let (Some(wanted), Some(name)) = (platform, &platform_name)
            && wanted
                .to_string()
                .split('/')
                .take(2)
                .collect::<Vec<_>>()
                .join("/")
                != *name
        {
            continue;
        }
        if !out.iter().any(|(d, _)| *d == digest) {
            out.push((digest, platform_name));
        }
    }
    anyhow::ensure!(
        !out.is_empty(),
        "{} names no image manifest{}",
        index_path.display(),
        platform.map(|p| format!(" for {p}")).unwrap_or_default()
    );
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Catalogues one image manifest of an OCI layout: its layers read from the blob files, each
/// checked against its digest as it is read.
fn layout_inventory(
    dir: &Path,
    digest: &Digest,
    limit: u64,
) -> anyhow::Result<(Inventory, Option<String>)> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&layout_blob(dir, digest, INDEX_LIMIT)?)?;
    let created = match manifest["config"]["digest"].as_str() {
        Some(config) => {
            let config: Digest = serde_json::from_value(serde_json::json!(config))?;
            serde_json::from_slice::<serde_json::Value>(&layout_blob(dir, &config, INDEX_LIMIT)?)
                .ok()
                .and_then(|c| c["created"].as_str().map(str::to_owned))
        }
        None => None,
    };
    let mut filesystem = gantry_sbom::Filesystem::default();
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let layer_digest: Digest =
            serde_json::from_value(layer["digest"].clone()).context("a layer without a digest")?;
        let path = dir
            .join("blobs")
            .join(layer_digest.algorithm())
            .join(layer_digest.hex());
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut hashing = Hashing {
            inner: file,
            hasher: Some(layer_digest.hasher()),
        };
        let changes = gantry_sbom::read_layer(layer_digest.as_str(), &mut hashing, limit)?;
        std::io::copy(&mut hashing, &mut std::io::sink())?;
        let actual = hashing.hasher.take().context("hasher")?.finish();
        anyhow::ensure!(
            actual == layer_digest,
            "{}: expected digest {layer_digest}, the content hashes to {actual}",
            path.display()
        );
        filesystem.apply(changes);
    }
    Ok((gantry_sbom::catalog(&filesystem)?, created))
}

/// Hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Option<gantry_oci::digest::Hasher>,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}
