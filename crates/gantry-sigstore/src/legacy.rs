//! cosign's legacy signatures (before v3): a `sha256-<hex>.sig` tag whose layers are
//! simple-signing payloads, with the signature, certificate, chain and Rekor bundle in
//! annotations. Each layer is turned into the Sigstore bundle (v0.1, with the Rekor SET) it is
//! equivalent to, and verified like any other bundle over the payload; the payload must then name
//! the image digest.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::SigstoreError;

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The media type of a legacy attestation layer (`.att`).
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation holding the signing certificate (PEM).
pub const CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// The layer annotation holding the certificate chain (PEM).
pub const CHAIN: &str = "dev.sigstore.cosign/chain";
/// The layer annotation holding the Rekor bundle (SET and entry).
pub const REKOR_BUNDLE: &str = "dev.sigstore.cosign/bundle";

type Result<T> = std::result::Result<T, SigstoreError>;

fn invalid(what: &str, reason: impl Into<String>) -> SigstoreError {
    SigstoreError::Invalid {
        what: what.to_owned(),
        expected: "cosign legacy signature",
        reason: reason.into(),
    }
}

/// The DER certificates in a PEM text, in order.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>> {
    Ok(pem::parse_many(text)
        .map_err(|e| invalid("certificate PEM", e.to_string()))?
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect())
}

/// The Sigstore bundle equivalent to one legacy signature layer: `payload` with the layer's
/// `annotations`. Keyless layers carry a certificate (and chain); key-based layers carry none and
/// verify only with the key. The Rekor bundle annotation, when present, becomes the log entry
/// with its SET.
pub fn bundle_json(
    what: &str,
    payload: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<String> {
    let signature = annotations
        .get(SIGNATURE)
        .ok_or_else(|| invalid(what, format!("no {SIGNATURE} annotation")))?;
    let mut material = verification_material(what, annotations)?;
    material["tlogEntries"] = match annotations.get(REKOR_BUNDLE) {
        Some(text) => json!([tlog_entry(what, text)?]),
        None => json!([]),
    };
    let digest = {
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(payload))
    };
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": digest},
            "signature": signature,
        },
    });
    Ok(bundle.to_string())
}

/// The Sigstore bundle equivalent to one legacy attestation layer (a DSSE envelope with cosign's
/// annotations), and the predicate type of the statement inside the signed envelope.
pub fn attestation_bundle_json(
    what: &str,
    envelope: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<(String, Option<String>)> {
    let envelope: Value = serde_json::from_slice(envelope)
        .map_err(|e| invalid(what, format!("the layer is not a DSSE envelope: {e}")))?;
    let predicate_type = envelope["payload"]
        .as_str()
        .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
        .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
        .and_then(|statement| statement["predicateType"].as_str().map(str::to_owned));
    let mut material = verification_material(what, annotations)?;
    material["tlogEntries"] = match annotations.get(REKOR_BUNDLE) {
        Some(text) => json!([tlog_entry(what, text)?]),
        None => json!([]),
    };
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
        "dsseEnvelope": envelope,
    });
    Ok((bundle.to_string(), predicate_type))
}

/// The certificate chain of a keyless layer, or a key hint for a key-based one.
fn verification_material(
    what: &str,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<Value> {
    let Some(pem) = annotations.get(CERTIFICATE) else {
        // A key-based signature: the verifier holds the key; the hint only names it.
        return Ok(json!({"publicKey": {"hint": ""}}));
    };
    let mut certificates = pem_certificates(pem)?;
    if certificates.is_empty() {
        return Err(invalid(
            what,
            "the certificate annotation holds no certificate",
        ));
    }
    if let Some(chain) = annotations.get(CHAIN) {
        certificates.extend(pem_certificates(chain)?);
    }
    let encode =
        |der: &Vec<u8>| json!({"rawBytes": base64::engine::general_purpose::STANDARD.encode(der)});
    Ok(
        json!({"x509CertificateChain": {"certificates": certificates.iter().map(encode).collect::<Vec<_>>()}}),
    )
}

/// cosign's Rekor bundle annotation as a bundle's log entry.
fn tlog_entry(what: &str, text: &str) -> Result<Value> {
    let rekor: Value = serde_json::from_str(text)
        .map_err(|e| invalid(what, format!("the Rekor bundle is not JSON: {e}")))?;
    let entry = &rekor["Payload"];
    let body = entry["body"]
        .as_str()
        .ok_or_else(|| invalid(what, "the Rekor bundle has no Payload.body"))?;
    let decoded: Value = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid(what, "the Rekor entry body is not base64 JSON"))?;
    let log_id = hex_to_base64(entry["logID"].as_str().unwrap_or_default())
        .ok_or_else(|| invalid(what, "the Rekor bundle's logID is not hex"))?;
    let number = |v: &Value| v.as_i64().map(|n| n.to_string());
    Ok(json!({
        "logIndex": number(&entry["logIndex"]).ok_or_else(|| invalid(what, "no logIndex"))?,
        "logId": {"keyId": log_id},
        "kindVersion": {"kind": decoded["kind"], "version": decoded["apiVersion"]},
        "integratedTime": number(&entry["integratedTime"]).ok_or_else(|| invalid(what, "no integratedTime"))?,
        "inclusionPromise": {"signedEntryTimestamp": rekor["SignedEntryTimestamp"]},
        "canonicalizedBody": body,
    }))
}

/// The simple-signing payload cosign signs for `image` at `digest`.
pub fn payload(image: &gantry_oci::Reference, digest: &gantry_oci::Digest) -> Vec<u8> {
    json!({
        "critical": {
            "identity": {"docker-reference": image.name()},
            "image": {"docker-manifest-digest": digest.as_str()},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// Adds a legacy signature layer (`payload` with `annotations`) to `image`'s `.sig` tag, keeping
/// the layers already there, as cosign does.
pub async fn attach(
    client: &gantry_oci::Client,
    image: &gantry_oci::Reference,
    payload: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> std::result::Result<gantry_oci::Manifest, gantry_oci::OciError> {
    attach_layer(client, image, "sig", SIMPLE_SIGNING, payload, annotations).await
}

/// Adds a legacy attestation layer (a DSSE envelope's JSON with `annotations`) to `image`'s
/// `.att` tag, keeping the layers already there.
pub async fn attach_attestation(
    client: &gantry_oci::Client,
    image: &gantry_oci::Reference,
    envelope: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> std::result::Result<gantry_oci::Manifest, gantry_oci::OciError> {
    attach_layer(client, image, "att", DSSE_ENVELOPE, envelope, annotations).await
}

async fn attach_layer(
    client: &gantry_oci::Client,
    image: &gantry_oci::Reference,
    suffix: &str,
    media_type: &str,
    payload: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> std::result::Result<gantry_oci::Manifest, gantry_oci::OciError> {
    use gantry_oci::manifest::OCI_MANIFEST;
    let digest = image
        .digest()
        .cloned()
        .ok_or_else(|| gantry_oci::OciError::Protocol(format!("{image} has no digest")))?;
    let tag = image
        .with_tag(&format!("{}-{}.{suffix}", digest.algorithm(), digest.hex()))
        .map_err(|e| gantry_oci::OciError::Protocol(e.to_string()))?;
    let payload = bytes::Bytes::copy_from_slice(payload);
    let payload_digest = gantry_oci::Digest::sha256(&payload);
    let mut layers: Vec<Value> = match client.manifest(&tag).await {
        Ok(existing) => serde_json::from_slice::<Value>(&existing.bytes)
            .ok()
            .and_then(|m| m["layers"].as_array().cloned())
            .unwrap_or_default(),
        Err(gantry_oci::OciError::NotFound { .. }) => Vec::new(),
        Err(other) => return Err(other),
    };
    let layer = json!({
        "mediaType": media_type,
        "digest": payload_digest,
        "size": payload.len(),
        "annotations": annotations,
    });
    if !layers.contains(&layer) {
        layers.push(layer);
    }
    let diff_ids: Vec<Value> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = bytes::Bytes::from(
        json!({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}})
            .to_string(),
    );
    let manifest = gantry_oci::Manifest::from_json(
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": gantry_oci::Digest::sha256(&config), "size": config.len()},
            "layers": layers,
        }),
        OCI_MANIFEST,
    );
    client
        .push_blobs_then_manifest(&tag, &[&config, &payload], &manifest)
        .await?;
    Ok(manifest)
}

/// The layer annotations equivalent to a bundle: a message signature over a `.sig` payload (the
/// inverse of [`bundle_json`]), or a DSSE attestation for an `.att` layer (whose blob is the
/// envelope).
pub fn annotations(
    bundle: &sigstore_verify::types::Bundle,
) -> Result<std::collections::BTreeMap<String, String>> {
    use sigstore_verify::types::SignatureContent;
    use sigstore_verify::types::bundle::VerificationMaterialContent;
    let b64 = base64::engine::general_purpose::STANDARD;
    let what = "the bundle";
    let mut out = std::collections::BTreeMap::new();
    match &bundle.content {
        SignatureContent::MessageSignature(message) => {
            out.insert(
                SIGNATURE.to_owned(),
                b64.encode(message.signature.as_bytes()),
            );
        }
        // An attestation layer: the signature is inside the envelope (the layer's blob).
        SignatureContent::DsseEnvelope(envelope) => {
            out.insert(SIGNATURE.to_owned(), String::new());
            if let Some(kind) = serde_json::from_slice::<Value>(envelope.payload.as_bytes())
                .ok()
                .and_then(|s| s["predicateType"].as_str().map(str::to_owned))
            {
                out.insert("predicateType".to_owned(), kind);
            }
        }
        _ => {
            return Err(invalid(
                what,
                "neither a message signature nor a DSSE envelope",
            ));
        }
    }
    match &bundle.verification_material.content {
        VerificationMaterialContent::Certificate(certificate) => {
            out.insert(CERTIFICATE.to_owned(), certificate.raw_bytes.to_pem());
        }
        VerificationMaterialContent::X509CertificateChain { certificates } => {
            let pems: Vec<String> = certificates.iter().map(|c| c.raw_bytes.to_pem()).collect();
            if let Some((leaf, chain)) = pems.split_first() {
                out.insert(CERTIFICATE.to_owned(), leaf.clone());
                if !chain.is_empty() {
                    out.insert(CHAIN.to_owned(), chain.concat());
                }
            }
        }
        _ => {}
    }
    if let Some(entry) = bundle.verification_material.tlog_entries.first() {
        let value = serde_json::to_value(entry)
            .map_err(|e| invalid(what, format!("its log entry: {e}")))?;
        let set = value
            .pointer("/inclusionPromise/signedEntryTimestamp")
            .cloned()
            .ok_or_else(|| invalid(what, "its log entry has no SET, which old verifiers need"))?;
        let log_id = b64
            .decode(
                value
                    .pointer("/logId/keyId")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
            .map_err(|e| invalid(what, format!("its log ID: {e}")))?;
        let number = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(|v| {
                    v.as_str()
                        .and_then(|s| s.parse::<i64>().ok())
                        .or_else(|| v.as_i64())
                })
                .ok_or_else(|| invalid(what, format!("its log entry has no {pointer}")))
        };
        let rekor = json!({
            "SignedEntryTimestamp": set,
            "Payload": {
                "body": value["canonicalizedBody"],
                "integratedTime": number("/integratedTime")?,
                "logIndex": number("/logIndex")?,
                "logID": hex::encode(&log_id),
            },
        });
        out.insert(REKOR_BUNDLE.to_owned(), rekor.to_string());
    }
    Ok(out)
}

/// The image digest a simple-signing payload vouches for.
pub fn payload_digest(what: &str, payload: &[u8]) -> Result<String> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| invalid(what, format!("the payload is not JSON: {e}")))?;
    value["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| {
            invalid(
                what,
                "the payload names no critical.image.docker-manifest-digest",
            )
        })
}

fn hex_to_base64(text: &str) -> Option<String> {
    let bytes = hex::decode(text).ok().filter(|b| !b.is_empty())?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_annotations_are_named() {
        let err = bundle_json("layer 0", b"{}", &std::collections::BTreeMap::new())
            .expect_err("no annotations");
        assert!(
            err.to_string()
                .contains("no dev.cosignproject.cosign/signature annotation"),
            "{err}"
        );
    }

    #[test]
    fn the_payload_names_the_digest() {
        let payload = br#"{"critical":{"identity":{"docker-reference":"r/a"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}"#;
        assert_eq!(payload_digest("p", payload).expect("digest"), "sha256:ab");
        assert!(payload_digest("p", b"{}").is_err());
        assert_eq!(hex_to_base64("00ff").as_deref(), Some("AP8="));
        assert_eq!(hex_to_base64("0g"), None);
    }
}
