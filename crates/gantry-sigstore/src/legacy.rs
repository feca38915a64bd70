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
pub const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub const CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
pub const CHAIN: &str = "dev.sigstore.cosign/chain";
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
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let text = body.take().unwrap_or_default();
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| invalid("certificate PEM", e.to_string()))?,
            );
        } else if let Some(text) = body.as_mut() {
            text.push_str(line);
        }
    }
    Ok(out)
}

/// The Sigstore bundle equivalent to one legacy signature layer: `payload` with the layer's
/// `annotations`. Keyless signatures only (a certificate is required).
pub fn bundle_json(
    what: &str,
    payload: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<String> {
    let get = |key: &str| {
        annotations
            .get(key)
            .ok_or_else(|| invalid(what, format!("no {key} annotation")))
    };
    let signature = get(SIGNATURE)?;
    let mut certificates = pem_certificates(get(CERTIFICATE)?)?;
    if certificates.is_empty() {
        return Err(invalid(
            what,
            "the certificate annotation holds no certificate",
        ));
    }
    if let Some(chain) = annotations.get(CHAIN) {
        certificates.extend(pem_certificates(chain)?);
    }
    let rekor: Value = serde_json::from_str(get(REKOR_BUNDLE)?)
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
    let digest = {
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(payload))
    };
    let encode =
        |der: &Vec<u8>| json!({"rawBytes": base64::engine::general_purpose::STANDARD.encode(der)});
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": certificates.iter().map(encode).collect::<Vec<_>>()},
            "tlogEntries": [{
                "logIndex": number(&entry["logIndex"]).ok_or_else(|| invalid(what, "no logIndex"))?,
                "logId": {"keyId": log_id},
                "kindVersion": {"kind": decoded["kind"], "version": decoded["apiVersion"]},
                "integratedTime": number(&entry["integratedTime"]).ok_or_else(|| invalid(what, "no integratedTime"))?,
                "inclusionPromise": {"signedEntryTimestamp": rekor["SignedEntryTimestamp"]},
                "canonicalizedBody": body,
            }],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": digest},
            "signature": signature,
        },
    });
    Ok(bundle.to_string())
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

fn hex_to_base64(hex: &str) -> Option<String> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some(base64::engine::general_purpose::STANDARD.encode(bytes?))
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
