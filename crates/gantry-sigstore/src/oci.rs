//! Signatures of an image in its registry: cosign v3 bundles stored as referrers (through the
//! referrers API or its fallback tag), recognised by artifact type or, where a registry stores an
//! empty one (GHCR), by the layer's media type; and whether cosign's legacy `.sig` tag exists.
//! Every manifest and blob read is checked against its digest by gantry-oci.

use gantry_oci::{Client, Digest, Reference, ReferrersSource};
use sigstore_verify::trust_root::TrustedRoot;

use crate::{Signer, SigstoreError, Subject, Verified};

/// Media types of Sigstore bundles (`application/vnd.dev.sigstore.bundle+json;version=0.1`,
/// `….bundle.v0.3+json`) start with this.
pub const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// A bundle larger than this is refused unread. An attestation bundle carries its whole predicate
/// (a CycloneDX SBOM of a large image runs to tens of MiB), so the limit is generous.
pub const BUNDLE_LIMIT: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum ImageError {
    #[error("{image} has no digest; verify a digest, never a tag that can move")]
    NoDigest { image: String },
    #[error(transparent)]
    Registry(#[from] gantry_oci::OciError),
    #[error("no signatures found for {image} (looked in: {})", looked_in.join(", "))]
    Unsigned {
        image: String,
        looked_in: Vec<String>,
    },
    #[error("no attestation of type {predicate_type} for {image} (found types: {}; looked in: {})", if found.is_empty() { "none".to_owned() } else { found.join(", ") }, looked_in.join(", "))]
    NoAttestation {
        image: String,
        predicate_type: String,
        found: Vec<String>,
        looked_in: Vec<String>,
    },
    #[error("{} signature(s) for {image}, none verified for {wanted}: {}", reasons.len(), reasons.join("; "))]
    NoneVerified {
        image: String,
        wanted: String,
        reasons: Vec<String>,
    },
}

/// The in-toto test-result predicate (`dispatch-integration report --attest`).
pub const TEST_RESULT_PREDICATE: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// canary-watch's verdict on a digest it watched (`canary-watch --attest`): `outcome` passed or
/// failed, the checks, limits and window, `decided_at`.
pub const CANARY_PREDICATE: &str = "https://gantry.dev/attestations/canary/v1";

/// Predicate types by their usual short names (cosign's `--type`): `slsaprovenance`, `cyclonedx`,
/// `spdx`, `vuln`, `openvex`, `test-result` and `canary`; anything else is taken as a predicate type URI.
pub fn predicate_type(kind: &str) -> String {
    match kind {
        "test-result" => TEST_RESULT_PREDICATE,
        "canary" => CANARY_PREDICATE,
        "slsaprovenance" | "slsa" => "https://slsa.dev/provenance/v1",
        "cyclonedx" => "https://cyclonedx.org/bom",
        "spdx" | "spdxjson" => "https://spdx.dev/Document",
        "vuln" => "https://cosign.sigstore.dev/attestation/vuln/v1",
        "openvex" => "https://openvex.dev/ns",
        other => other,
    }
    .to_owned()
}

/// For predicates whose content is a verdict, whether the verified attestations say it passed:
/// a test-result attestation passes only with `result: PASSED` (`WARNED` and `FAILED` do not); a
/// canary verdict only when the newest one (by `decided_at`) says `passed` — a digest rolled back
/// after an earlier pass has failed. `Ok` for any other predicate type; `Err` names what the
/// attestations said.
pub fn passing(predicate_type: &str, found: &[AttestationVerified]) -> Result<(), String> {
    if predicate_type == CANARY_PREDICATE {
        return canary_passing(found);
    }
    if predicate_type != TEST_RESULT_PREDICATE {
        return Ok(());
    }
    let results: Vec<String> = found
        .iter()
        .map(|a| {
            a.statement["predicate"]["result"]
                .as_str()
                .unwrap_or("(no result)")
                .to_owned()
        })
        .collect();
    if results.iter().any(|r| r == "PASSED") {
        Ok(())
    } else {
        Err(format!(
            "the test-result attestation says {}, expected PASSED",
            results.join(", ")
        ))
    }
}

fn canary_passing(found: &[AttestationVerified]) -> Result<(), String> {
    let text = |a: &AttestationVerified, key: &str| {
        a.statement["predicate"][key]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // RFC 3339 in UTC (`…Z`), as canary-watch writes it, orders as text.
    let newest = found
        .iter()
        .max_by_key(|a| text(a, "decided_at"))
        .ok_or_else(|| "no canary verdict".to_owned())?;
    match text(newest, "outcome").as_str() {
        "passed" => Ok(()),
        other => Err(format!(
            "the newest canary verdict (decided {}) says {}, expected passed: {}",
            text(newest, "decided_at"),
            if other.is_empty() { "nothing" } else { other },
            text(newest, "reason")
        )),
    }
}

/// One bundle found for an image.
#[derive(Debug, Clone)]
pub struct FoundBundle {
    /// The referrer manifest that holds it.
    pub manifest: Digest,
    /// The bundle's JSON.
    pub json: String,
    /// The in-toto statement's `predicateType` for a DSSE bundle (read from the signed payload,
    /// never from the unsigned manifest annotation); `None` for a message signature or when the
    /// payload is not a statement.
    pub predicate_type: Option<String>,
}

impl FoundBundle {
    /// An image signature (cosign v3's sign predicate, or a message signature), not an
    /// attestation.
    pub fn is_signature(&self) -> bool {
        self.predicate_type
            .as_deref()
            .is_none_or(|t| t == crate::sign::COSIGN_SIGN_PREDICATE)
    }
}

/// The `predicateType` of the statement inside a DSSE bundle.
fn statement_predicate_type(json: &str) -> Option<String> {
    use base64::Engine as _;
    let bundle: serde_json::Value = serde_json::from_str(json).ok()?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(bundle.pointer("/dsseEnvelope/payload")?.as_str()?)
        .ok()?;
    let statement: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    statement["predicateType"].as_str().map(str::to_owned)
}

/// One layer of a legacy `.sig` manifest: a simple-signing payload and its annotations.
#[derive(Debug, Clone)]
pub struct LegacySignature {
    /// The `.sig` manifest and the layer in it.
    pub manifest: Digest,
    /// The layer's digest.
    pub layer: Digest,
    /// The signed payload.
    pub payload: Vec<u8>,
    /// The layer's annotations (signature, certificate, bundle).
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Where signatures were looked for and what was found.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// v3 bundles found as referrers.
    pub bundles: Vec<FoundBundle>,
    /// cosign's legacy signatures (before v3), from the `.sig` tag.
    pub legacy: Vec<LegacySignature>,
    /// cosign's legacy attestations, from the `.att` tag: each layer's blob is a DSSE envelope.
    /// Read only when asked for ([`add_legacy_attestations`]).
    pub legacy_attestations: Vec<LegacySignature>,
    /// Where discovery looked, for a message when nothing verifies.
    pub looked_in: Vec<String>,
    /// Referrers or layers that could not be read as signatures (too large, not matching their
    /// digest, not a manifest): each is a refusal with its reason, never a registry error.
    pub unusable: Vec<String>,
}

/// The digest `image` is pinned to: signatures are verified for a digest, never a tag that can move.
fn pinned_digest(image: &Reference) -> Result<Digest, ImageError> {
    image.digest().cloned().ok_or_else(|| ImageError::NoDigest {
        image: image.to_string(),
    })
}

/// `read`'s value; bad content noted in `unusable` (as `what: error`) and `None`; other errors
/// passed on.
fn usable<T>(
    read: gantry_oci::Result<T>,
    unusable: &mut Vec<String>,
    what: impl FnOnce() -> String,
) -> Result<Option<T>, ImageError> {
    match read {
        Ok(value) => Ok(Some(value)),
        Err(e) if is_bad_content(&e) => {
            unusable.push(format!("{}: {e}", what()));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Content a registry served that cannot be what it claims: the signer's (or an attacker's)
/// problem, so a refusal; a registry that cannot be reached or refuses us stays an error.
fn is_bad_content(error: &gantry_oci::OciError) -> bool {
    matches!(
        error,
        gantry_oci::OciError::TooLarge { .. }
            | gantry_oci::OciError::DigestMismatch { .. }
            | gantry_oci::OciError::InvalidManifest { .. }
    )
}

/// How the signature that verified was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// A Sigstore bundle as a referrer (cosign v3).
    Bundle,
    /// cosign's legacy `.sig` tag.
    LegacySig,
}

impl std::fmt::Display for SignatureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bundle => "bundle",
            Self::LegacySig => "legacy-sig",
        })
    }
}

/// Finds the Sigstore bundles that refer to `image` (which must carry a digest).
pub async fn discover(client: &Client, image: &Reference) -> Result<Discovery, ImageError> {
    let digest = pinned_digest(image)?;
    let referrers = client.referrers(image, None).await?;
    let mut discovery = Discovery {
        looked_in: vec![match referrers.source {
            ReferrersSource::Api => "referrers API".to_owned(),
            ReferrersSource::FallbackTag => format!("fallback tag {}", digest.fallback_tag()),
        }],
        ..Discovery::default()
    };
    for descriptor in &referrers.descriptors {
        let declared = descriptor.artifact_type.as_deref().unwrap_or_default();
        let maybe_bundle = declared.starts_with(BUNDLE_MEDIA_TYPE_PREFIX)
            || declared.is_empty()
            || declared == gantry_oci::manifest::EMPTY_CONFIG;
        if !maybe_bundle {
            continue;
        }
        let at = image.with_digest(descriptor.digest.clone());
        let read = client.manifest(&at).await.and_then(|m| m.fields());
        let Some(fields) = usable(read, &mut discovery.unusable, || {
            format!("{} (referrer)", descriptor.digest)
        })?
        else {
            continue;
        };
        for layer in &fields.layers {
            if !layer.media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX) {
                continue;
            }
            // The blob read refuses more than the limit, by Content-Length or while reading.
            let read = client.blob(&at, &layer.digest, BUNDLE_LIMIT).await;
            let Some(bytes) = usable(read, &mut discovery.unusable, || {
                format!("{} (bundle)", descriptor.digest)
            })?
            else {
                continue;
            };
            let json = String::from_utf8_lossy(&bytes).into_owned();
            discovery.bundles.push(FoundBundle {
                manifest: descriptor.digest.clone(),
                predicate_type: statement_predicate_type(&json),
                json,
            });
        }
    }
    discovery.legacy = read_legacy_tag(
        client,
        image,
        &digest,
        "sig",
        crate::legacy::SIMPLE_SIGNING,
        &mut discovery,
    )
    .await?;
    Ok(discovery)
}

/// Adds cosign's legacy attestations (the `.att` tag) to `discovery`: one more request, made only
/// when attestations are asked for.
pub async fn add_legacy_attestations(
    client: &Client,
    image: &Reference,
    discovery: &mut Discovery,
) -> Result<(), ImageError> {
    let digest = pinned_digest(image)?;
    discovery.legacy_attestations = read_legacy_tag(
        client,
        image,
        &digest,
        "att",
        crate::legacy::DSSE_ENVELOPE,
        discovery,
    )
    .await?;
    Ok(())
}

/// The layers of `media_type` in cosign's `sha256-<hex>.<suffix>` tag, read in one GET of the
/// manifest (a missing tag is the usual case, not an error) and one per layer. A manifest or layer
/// that cannot be what it claims (too large, not its digest, not a manifest) is noted in
/// `discovery.unusable`, as a referrer's is: a refusal, not an infrastructure error.
async fn read_legacy_tag(
    client: &Client,
    image: &Reference,
    digest: &Digest,
    suffix: &str,
    media_type: &str,
    discovery: &mut Discovery,
) -> Result<Vec<LegacySignature>, ImageError> {
    let tag = format!("{}-{}.{suffix}", digest.algorithm(), digest.hex());
    discovery.looked_in.push(format!(".{suffix} tag {tag}"));
    let at = image
        .with_tag(&tag)
        .map_err(|e| gantry_oci::OciError::Protocol(e.to_string()))?;
    let read = match client.manifest(&at).await {
        Err(gantry_oci::OciError::NotFound { .. }) => return Ok(Vec::new()),
        read => read.and_then(|m| Ok((m.fields()?, m.digest))),
    };
    let Some((fields, manifest)) = usable(read, &mut discovery.unusable, || {
        format!("{tag} (legacy-{suffix})")
    })?
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for layer in fields.layers {
        if layer.media_type != media_type {
            continue;
        }
        let read = client.blob(&at, &layer.digest, BUNDLE_LIMIT).await;
        let Some(payload) = usable(read, &mut discovery.unusable, || {
            format!("{manifest} (legacy-{suffix})")
        })?
        else {
            continue;
        };
        out.push(LegacySignature {
            manifest: manifest.clone(),
            layer: layer.digest.clone(),
            payload: payload.to_vec(),
            annotations: layer.annotations.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// What verifying an image proved.
#[derive(Debug, Clone)]
pub struct ImageVerified {
    /// The digest verified.
    pub digest: Digest,
    /// The referrer whose bundle verified, or the `.sig` manifest.
    pub signature: Digest,
    /// How the signature was stored.
    pub format: SignatureFormat,
    /// What verified.
    pub verified: Verified,
    /// Where discovery looked.
    pub looked_in: Vec<String>,
}

/// Verifies that `image` (by digest) carries a bundle from `signer`: the first bundle that
/// verifies wins; when none does, the error lists each bundle's reason (for a wrong signer, who
/// signed instead).
pub async fn verify_image(
    client: &Client,
    image: &Reference,
    signer: &Signer,
    root: &TrustedRoot,
) -> Result<ImageVerified, ImageError> {
    let discovery = discover(client, image).await?;
    verify_signature(image, &discovery, signer, root)
}

/// [`verify_image`] on signatures already discovered (attestations among them are left out).
pub fn verify_signature(
    image: &Reference,
    discovery: &Discovery,
    signer: &Signer,
    root: &TrustedRoot,
) -> Result<ImageVerified, ImageError> {
    let digest = pinned_digest(image)?;
    let signatures: Vec<&FoundBundle> = discovery
        .bundles
        .iter()
        .filter(|b| b.is_signature())
        .collect();
    if signatures.is_empty() && discovery.legacy.is_empty() && discovery.unusable.is_empty() {
        return Err(ImageError::Unsigned {
            image: image.to_string(),
            looked_in: discovery.looked_in.clone(),
        });
    }
    let mut reasons = discovery.unusable.clone();
    let found_bundles = signatures.iter().map(|found| {
        let outcome = crate::parse_bundle(&format!("bundle in {}", found.manifest), &found.json)
            .and_then(|bundle| crate::verify(&bundle, Subject::Sha256(digest.hex()), signer, root));
        (found.manifest.clone(), SignatureFormat::Bundle, outcome)
    });
    let found_legacy = discovery.legacy.iter().map(|legacy| {
        (
            legacy.manifest.clone(),
            SignatureFormat::LegacySig,
            verify_legacy(legacy, &digest, signer, root),
        )
    });
    // Lazily: verification stops at the first signature that holds.
    for (manifest, format, outcome) in found_bundles.chain(found_legacy) {
        match outcome {
            Ok(verified) => {
                return Ok(ImageVerified {
                    digest: digest.clone(),
                    signature: manifest,
                    format,
                    verified,
                    looked_in: discovery.looked_in.clone(),
                });
            }
            Err(error) => reasons.push(reason(&manifest, &format.to_string(), error)),
        }
    }
    Err(ImageError::NoneVerified {
        image: image.to_string(),
        wanted: describe(signer),
        reasons,
    })
}

fn reason(manifest: &Digest, format: &str, error: SigstoreError) -> String {
    match error {
        SigstoreError::IdentityMismatch { found: who, .. } => {
            format!("{manifest} ({format}) is signed by {who:?}")
        }
        other => format!("{manifest} ({format}): {other}"),
    }
}

/// An attestation that verified.
#[derive(Debug, Clone)]
pub struct AttestationVerified {
    /// The predicate type of the signed statement.
    pub predicate_type: String,
    /// The referrer that holds it.
    pub manifest: Digest,
    /// What verified.
    pub verified: Verified,
    /// The in-toto statement (its predicate is what a policy may read next).
    pub statement: serde_json::Value,
}

/// Every attestation of `predicate_type` for `image` signed by `signer` (at least one), in the
/// order discovered, among the bundles discovered (cosign v3 attestations stored as referrers,
/// and legacy `.att` layers); an error when none verifies, with each candidate's reason.
pub fn verify_attestations(
    image: &Reference,
    discovery: &Discovery,
    predicate_type: &str,
    signer: &Signer,
    root: &TrustedRoot,
) -> Result<Vec<AttestationVerified>, ImageError> {
    let digest = pinned_digest(image)?;
    let mut candidates: Vec<(Digest, &'static str, String)> = discovery
        .bundles
        .iter()
        .filter(|b| b.predicate_type.as_deref() == Some(predicate_type))
        .map(|b| (b.manifest.clone(), "attestation", b.json.clone()))
        .collect();
    let mut reasons = Vec::new();
    for legacy in &discovery.legacy_attestations {
        let what = format!("layer {} of {}", legacy.layer, legacy.manifest);
        match crate::legacy::attestation_bundle_json(&what, &legacy.payload, &legacy.annotations) {
            Ok((json, kind)) if kind.as_deref() == Some(predicate_type) => {
                candidates.push((legacy.manifest.clone(), "legacy-att", json));
            }
            Ok(_) => {}
            Err(error) => reasons.push(reason(&legacy.manifest, "legacy-att", error)),
        }
    }
    if candidates.is_empty() && reasons.is_empty() {
        let mut found: Vec<String> = discovery
            .bundles
            .iter()
            .filter(|b| !b.is_signature())
            .filter_map(|b| b.predicate_type.clone())
            .collect();
        found.sort();
        found.dedup();
        return Err(ImageError::NoAttestation {
            image: image.to_string(),
            predicate_type: predicate_type.to_owned(),
            found,
            looked_in: discovery.looked_in.clone(),
        });
    }
    let mut proven = Vec::new();
    for (manifest, format, json) in candidates {
        let outcome =
            crate::parse_bundle(&format!("bundle in {manifest}"), &json).and_then(|bundle| {
                crate::verify(&bundle, Subject::Sha256(digest.hex()), signer, root)
                    .map(|v| (bundle, v))
            });
        match outcome {
            Ok((bundle, verified)) => {
                let statement = match &bundle.content {
                    sigstore_verify::types::SignatureContent::DsseEnvelope(envelope) => {
                        serde_json::from_slice(envelope.payload.as_bytes()).unwrap_or_default()
                    }
                    _ => serde_json::Value::Null,
                };
                proven.push(AttestationVerified {
                    predicate_type: predicate_type.to_owned(),
                    manifest,
                    verified,
                    statement,
                });
            }
            Err(error) => reasons.push(reason(&manifest, format, error)),
        }
    }
    if !proven.is_empty() {
        return Ok(proven);
    }
    Err(ImageError::NoneVerified {
        image: format!("{image} (attestations of type {predicate_type})"),
        wanted: describe(signer),
        reasons,
    })
}

/// A legacy layer: its equivalent bundle over the payload, then the payload's digest claim.
fn verify_legacy(
    legacy: &LegacySignature,
    digest: &Digest,
    signer: &Signer,
    root: &TrustedRoot,
) -> Result<Verified, SigstoreError> {
    let what = format!("layer {} of {}", legacy.layer, legacy.manifest);
    let json = crate::legacy::bundle_json(&what, &legacy.payload, &legacy.annotations)?;
    let bundle = crate::parse_bundle(&what, &json)?;
    let verified = crate::verify(&bundle, Subject::Bytes(&legacy.payload), signer, root)?;
    let claimed = crate::legacy::payload_digest(&what, &legacy.payload)?;
    if claimed != digest.as_str() {
        return Err(SigstoreError::SubjectMismatch {
            expected: digest.hex().to_owned(),
            found: claimed,
        });
    }
    Ok(verified)
}

/// Who `signer` requires, as failures and summaries name it.
pub fn describe(signer: &Signer) -> String {
    match signer {
        Signer::Identity {
            identity, issuer, ..
        } => format!("identity {identity} from issuer {issuer}"),
        Signer::Key { tlog: true, .. } => "the given key".to_owned(),
        Signer::Key { tlog: false, .. } => {
            "the given key (transparency log not required)".to_owned()
        }
    }
}
