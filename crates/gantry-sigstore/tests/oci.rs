//! Signatures found in a registry: bundles that sigstore-js signed and attached (`sigstore
//! attach`) verify through the referrers API and its fallback tag; an unsigned image and a
//! signature from someone else are refused with what was looked at and who signed.

use std::collections::BTreeMap;

use bytes::Bytes;
use gantry_oci::manifest::{EMPTY_CONFIG, OCI_MANIFEST};
use gantry_oci::{Client, Digest, Manifest, Reference};
use gantry_sigstore::oci::{ImageError, SignatureFormat, verify_image};
use gantry_sigstore::{Matcher, RootSource, Signer};
use gantry_testkit::peers::{
    SIGNER_IDENTITY, SIGNER_ISSUER, SignWhat, Signed, sigstore_attach, sigstore_js,
    sigstore_js_sign,
};
use gantry_testkit::{Auth, Backend, Registry};

mod common;
use common::{client, push_image};

fn signer(identity: &str) -> Signer {
    Signer::Identity {
        identity: Matcher::exact(identity),
        issuer: Matcher::exact(SIGNER_ISSUER),
        claims: Box::default(),
    }
}

fn sign(image: &Reference) -> Option<Signed> {
    let digest = image.digest().expect("digest");
    sigstore_js_sign(&SignWhat::Digest(digest.to_string()), SIGNER_IDENTITY, "{}")
}

fn root(signed: &Signed) -> sigstore_verify::trust_root::TrustedRoot {
    gantry_sigstore::trusted_root(&RootSource::File(signed.trusted_root.clone())).expect("root")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_attached_by_sigstore_js_verify_through_the_api_and_the_fallback_tag() {
    let Some(cli) = sigstore_js() else { return };
    for (backend, expected_source) in [
        (Backend::Distribution, "fallback tag"),
        (Backend::Gantry, "referrers API"),
    ] {
        let Some(registry) = Registry::start_on(backend, Auth::Basic) else {
            return;
        };
        let client = client(&registry);
        let image = push_image(&client, &registry, b"signed").await;
        let Some(signed) = sign(&image) else { return };
        sigstore_attach(&cli, &registry, &signed.bundle, &image.to_string());
        let verified = verify_image(&client, &image, &signer(SIGNER_IDENTITY), &root(&signed))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(verified.verified.identity.as_deref(), Some(SIGNER_IDENTITY));
        assert_eq!(&verified.digest, image.digest().expect("digest"));
        assert!(
            verified.looked_in[0].starts_with(expected_source),
            "{backend:?}: {:?}",
            verified.looked_in
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_image_or_a_stranger_s_signature_is_refused_saying_why() {
    let Some(cli) = sigstore_js() else { return };
    let Some(registry) = Registry::start_on(Backend::Distribution, Auth::Basic) else {
        return;
    };
    let client = client(&registry);
    let image = push_image(&client, &registry, b"unsigned").await;
    let Some(signed) = sign(&image) else { return };
    let digest = image.digest().expect("digest").clone();
    let err = verify_image(&client, &image, &signer(SIGNER_IDENTITY), &root(&signed))
        .await
        .expect_err("unsigned");
    assert!(matches!(err, ImageError::Unsigned { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "no signatures found for {image} (looked in: fallback tag {}, .sig tag sha256-{}.sig)",
            digest.fallback_tag(),
            digest.hex()
        )
    );

    sigstore_attach(&cli, &registry, &signed.bundle, &image.to_string());
    let wanted = "https://github.com/acme/billing/.github/workflows/deploy.yml@refs/heads/main";
    let err = verify_image(&client, &image, &signer(wanted), &root(&signed))
        .await
        .expect_err("someone else");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "1 signature(s) for {image}, none verified for identity \"{wanted}\""
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("is signed by \"{SIGNER_IDENTITY}\"")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_stored_with_an_empty_artifact_type_is_found_by_its_layer() {
    let Some(registry) = Registry::start_on(Backend::Gantry, Auth::Anonymous) else {
        return;
    };
    let client = client(&registry);
    let image = push_image(&client, &registry, b"ghcr style").await;
    let Some(signed) = sign(&image) else { return };
    let bundle = Bytes::from(std::fs::read(&signed.bundle).expect("bundle"));
    let bundle_digest = Digest::sha256(&bundle);
    let empty = Bytes::from_static(b"{}");
    let subject = client
        .head_manifest(&image)
        .await
        .expect("head")
        .expect("image");
    // As GHCR stores cosign v3's bundles: no artifactType, an empty config, the bundle a layer.
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": EMPTY_CONFIG, "digest": Digest::sha256(&empty), "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "digest": bundle_digest, "size": bundle.len()}],
        "subject": subject,
        "annotations": BTreeMap::from([("dev.sigstore.bundle.predicateType", "https://sigstore.dev/cosign/sign/v1")]),
    });
    let manifest = Manifest::from_json(&body, OCI_MANIFEST);
    client
        .push_blobs_then_manifest(&image, &[&empty, &bundle], &manifest)
        .await
        .expect("referrer");
    let verified = verify_image(&client, &image, &signer(SIGNER_IDENTITY), &root(&signed))
        .await
        .expect("found by its layer");
    assert_eq!(verified.signature, manifest.digest);
}

/// A cosign-before-v3 `.sig` signature made from a sigstore-js signing of the simple-signing
/// payload: the same certificate, signature and Rekor entry, in cosign's annotations.
async fn push_legacy_signature(
    client: &Client,
    image: &Reference,
    claimed_digest: &str,
) -> Option<Signed> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": image.name()},
            "image": {"docker-manifest-digest": claimed_digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let payload_file = dir.path().join("payload.json");
    std::fs::write(&payload_file, &payload).expect("payload");
    let signed = sigstore_js_sign(&SignWhat::Blob(payload_file), SIGNER_IDENTITY, "{}")?;
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&signed.bundle).expect("bundle")).expect("json");
    let material = &bundle["verificationMaterial"];
    let entry = &material["tlogEntries"][0];
    // v0.3 bundles carry one certificate, v0.1/v0.2 a chain whose first is the leaf.
    let der = material["certificate"]["rawBytes"]
        .as_str()
        .or_else(|| material["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str())
        .expect("certificate");
    let wrapped: Vec<String> = der
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        wrapped.join("\n")
    );
    let log_id = hex::encode(
        b64.decode(entry["logId"]["keyId"].as_str().expect("log id"))
            .expect("base64"),
    );
    let rekor = serde_json::json!({
        "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
        "Payload": {
            "body": entry["canonicalizedBody"],
            "integratedTime": entry["integratedTime"].as_str().and_then(|t| t.parse::<i64>().ok()),
            "logIndex": entry["logIndex"].as_str().and_then(|t| t.parse::<i64>().ok()),
            "logID": log_id,
        },
    });
    let payload = Bytes::from(payload);
    let config = Bytes::from_static(
        b"{\"architecture\":\"\",\"os\":\"\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
    );
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::sha256(&config), "size": config.len()},
        "layers": [{
            "mediaType": gantry_sigstore::legacy::SIMPLE_SIGNING,
            "digest": Digest::sha256(&payload),
            "size": payload.len(),
            "annotations": {
                gantry_sigstore::legacy::SIGNATURE: bundle["messageSignature"]["signature"],
                gantry_sigstore::legacy::CERTIFICATE: pem,
                gantry_sigstore::legacy::REKOR_BUNDLE: rekor.to_string(),
            },
        }],
    });
    let manifest = Manifest::from_json(&body, OCI_MANIFEST);
    let digest = image.digest().expect("digest");
    let tag = image
        .with_tag(&format!("sha256-{}.sig", digest.hex()))
        .expect("tag");
    client
        .push_blobs_then_manifest(&tag, &[&config, &payload], &manifest)
        .await
        .expect("sig manifest");
    Some(signed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_sig_signature_verifies_and_must_name_the_image() {
    let Some(registry) = Registry::start_on(Backend::Distribution, Auth::Anonymous) else {
        return;
    };
    let client = client(&registry);
    let image = push_image(&client, &registry, b"legacy").await;
    let digest = image.digest().expect("digest").clone();
    let Some(signed) = push_legacy_signature(&client, &image, digest.as_str()).await else {
        return;
    };
    let verified = verify_image(&client, &image, &signer(SIGNER_IDENTITY), &root(&signed))
        .await
        .expect("the legacy signature verifies");
    assert_eq!(verified.format, SignatureFormat::LegacySig);
    assert_eq!(verified.verified.identity.as_deref(), Some(SIGNER_IDENTITY));

    // A validly signed payload that vouches for another image.
    let other = push_image(&client, &registry, b"another").await;
    let Some(signed) = push_legacy_signature(&client, &other, digest.as_str()).await else {
        return;
    };
    let err = verify_image(&client, &other, &signer(SIGNER_IDENTITY), &root(&signed))
        .await
        .expect_err("for another image");
    let text = err.to_string();
    let other_hex = other.digest().expect("digest").hex().to_owned();
    assert!(
        text.contains(&format!(
            "the signature is for {digest}, not sha256:{other_hex}"
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_bundle_is_refused_unread_not_an_infrastructure_error() {
    let Some(registry) = Registry::start_on(Backend::Gantry, Auth::Anonymous) else {
        return;
    };
    let client = client(&registry);
    let image = push_image(&client, &registry, b"oversized").await;
    let Some(signed) = sign(&image) else { return };
    let subject = client.resolve(&image).await.expect("resolve");
    let artifact = gantry_oci::Artifact {
        artifact_type: "application/vnd.dev.sigstore.bundle.v0.3+json".to_owned(),
        layers: vec![gantry_oci::ArtifactLayer {
            media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".to_owned(),
            bytes: Bytes::from(vec![b' '; 65 * 1024 * 1024]),
            annotations: BTreeMap::new(),
        }],
        subject: Some(subject),
        annotations: BTreeMap::new(),
    };
    let pushed = client.push_artifact(&image, &artifact).await.expect("push");
    let err = verify_image(&client, &image, &signer(SIGNER_IDENTITY), &root(&signed))
        .await
        .expect_err("oversized");
    assert!(matches!(err, ImageError::NoneVerified { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{} (bundle): ", pushed.digest))
            && text.contains("larger than the limit of 67108864 bytes"),
        "{text}"
    );
}
