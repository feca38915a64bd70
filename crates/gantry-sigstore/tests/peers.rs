//! Bundles sigstore-js produces (against the mock Fulcio, Rekor and TSA) verify with gantry, and
//! every tampering with them fails with its own message.

use gantry_sigstore::{ClaimPolicy, Matcher, RootSource, Signer, SigstoreError, Subject, Verified};
use gantry_testkit::peers::{SIGNER_IDENTITY, SIGNER_ISSUER, SignWhat, Signed, sigstore_js_sign};
use serde_json::Value;

const DIGEST_HEX: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

fn signer() -> Signer {
    Signer::Identity {
        identity: Matcher::exact(SIGNER_IDENTITY),
        issuer: Matcher::exact(SIGNER_ISSUER),
        claims: Box::default(),
    }
}

fn verify_json(
    json: &str,
    signed: &Signed,
    subject: Subject<'_>,
    who: &Signer,
) -> Result<Verified, SigstoreError> {
    let root = gantry_sigstore::trusted_root(&RootSource::File(signed.trusted_root.clone()))
        .expect("root");
    let bundle = gantry_sigstore::parse_bundle("bundle", json)?;
    gantry_sigstore::verify(&bundle, subject, who, &root)
}

fn sign_digest(claims: &str) -> Option<(Signed, String)> {
    let signed = sigstore_js_sign(
        &SignWhat::Digest(format!("sha256:{DIGEST_HEX}")),
        SIGNER_IDENTITY,
        claims,
    )?;
    let json = std::fs::read_to_string(&signed.bundle).expect("bundle");
    Some((signed, json))
}

#[test]
fn an_image_signature_from_sigstore_js_verifies_with_its_claims() {
    let claims = r#"{"repository":"acme/billing","ref":"refs/heads/main","sha":"0123456789abcdef0123456789abcdef01234567","event_name":"push","workflow_ref":"acme/billing/.github/workflows/release.yml@refs/heads/main","runner_environment":"github-hosted"}"#;
    let Some((signed, json)) = sign_digest(claims) else {
        return;
    };
    let verified =
        verify_json(&json, &signed, Subject::Sha256(DIGEST_HEX), &signer()).expect("verifies");
    assert_eq!(verified.identity.as_deref(), Some(SIGNER_IDENTITY));
    let logged = verified.integrated_time.expect("logged");
    // The TSA's RFC 3161 timestamp verified too, and it is the signing's time.
    assert_eq!(verified.rfc3161_timestamps, 1, "{verified:?}");
    assert_eq!(verified.timestamps.len(), 2, "{verified:?}");
    assert!(
        verified.timestamps.iter().all(|t| (t - logged).abs() < 60),
        "{verified:?}"
    );
    let claims = &verified.claims;
    assert_eq!(claims.repository.as_deref(), Some("acme/billing"));
    assert_eq!(claims.git_ref.as_deref(), Some("refs/heads/main"));
    assert_eq!(claims.trigger.as_deref(), Some("push"));
    assert_eq!(
        claims.sha.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(claims.runner_environment.as_deref(), Some("github-hosted"));
    // Claims the mock Fulcio copied from the token are read and checked.
    let with_claims = Signer::Identity {
        identity: Matcher::exact(SIGNER_IDENTITY),
        issuer: Matcher::exact(SIGNER_ISSUER),
        claims: Box::new(ClaimPolicy {
            trigger: Some(Matcher::exact("pull_request_target")),
            ..ClaimPolicy::default()
        }),
    };
    let err = verify_json(&json, &signed, Subject::Sha256(DIGEST_HEX), &with_claims)
        .expect_err("trigger");
    assert!(
        matches!(
            err,
            SigstoreError::ClaimMismatch {
                claim: "trigger",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_blob_signature_from_sigstore_js_verifies_and_not_over_other_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blob = dir.path().join("release.tar");
    std::fs::write(&blob, b"release contents").expect("blob");
    let Some(signed) = sigstore_js_sign(&SignWhat::Blob(blob), SIGNER_IDENTITY, "{}") else {
        return;
    };
    let json = std::fs::read_to_string(&signed.bundle).expect("bundle");
    let verified = verify_json(
        &json,
        &signed,
        Subject::Bytes(b"release contents"),
        &signer(),
    )
    .expect("verifies");
    assert_eq!(verified.rfc3161_timestamps, 1, "{verified:?}");
    let err = verify_json(&json, &signed, Subject::Bytes(b"other contents"), &signer())
        .expect_err("other bytes");
    assert!(matches!(err, SigstoreError::Verification(_)), "{err}");
}

/// Applies `tamper` to the bundle and expects verification to fail with a message containing
/// `expected`.
fn refused(
    signed: &Signed,
    json: &str,
    what: &str,
    tamper: impl FnOnce(&mut Value),
    expected: &str,
) -> String {
    let mut value: Value = serde_json::from_str(json).expect("json");
    tamper(&mut value);
    let err = verify_json(
        &value.to_string(),
        signed,
        Subject::Sha256(DIGEST_HEX),
        &signer(),
    )
    .expect_err(what);
    let text = err.to_string();
    assert!(text.contains(expected), "{what}: {text}");
    text
}

/// Each change to the bundle itself, refused with its message.
fn tampered(signed: &Signed, json: &str, other_value: &Value) -> Vec<String> {
    vec![
        refused(
            signed,
            json,
            "payload changed",
            |v| {
                let payload = v["dsseEnvelope"]["payload"]
                    .as_str()
                    .expect("payload")
                    .to_owned();
                let mut bytes = base64_decode(&payload);
                let last = bytes.len() - 2;
                bytes[last] ^= 1;
                v["dsseEnvelope"]["payload"] = base64_encode(&bytes).into();
            },
            "verification failed",
        ),
        refused(
            signed,
            json,
            "certificate swapped",
            |v| {
                v["verificationMaterial"]["certificate"] =
                    other_value["verificationMaterial"]["certificate"].clone();
            },
            "verification failed",
        ),
        refused(
            signed,
            json,
            "broken inclusion proof",
            |v| {
                let hashes =
                    &mut v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["rootHash"];
                let root = base64_decode(hashes.as_str().expect("root hash"));
                let mut flipped = root.clone();
                flipped[0] ^= 1;
                *hashes = base64_encode(&flipped).into();
            },
            "verification failed",
        ),
        refused(
            signed,
            json,
            "timestamp from another TSA",
            |v| {
                v["verificationMaterial"]["timestampVerificationData"] =
                    other_value["verificationMaterial"]["timestampVerificationData"].clone();
            },
            "timestamp",
        ),
        refused(
            signed,
            json,
            "timestamp's time altered",
            |v| {
                let token = &mut v["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
                    [0]["signedTimestamp"];
                let mut bytes = base64_decode(token.as_str().expect("timestamp"));
                // genTime: GeneralizedTime (tag 0x18), 15 bytes, YYYYMMDDhhmmssZ; a year later.
                let at = bytes
                    .windows(2)
                    .position(|w| w == [0x18, 15])
                    .expect("genTime");
                bytes[at + 5] = if bytes[at + 5] == b'9' {
                    b'0'
                } else {
                    bytes[at + 5] + 1
                };
                *token = base64_encode(&bytes).into();
            },
            "timestamp",
        ),
        refused(
            signed,
            json,
            // Without its SET the entry's time is unproven; the TSA's timestamp would vouch
            // for the time instead (as with Rekor v2), so it goes too.
            "missing SET, no timestamp",
            |v| {
                let material = v["verificationMaterial"].as_object_mut().expect("material");
                material.remove("timestampVerificationData");
                material["tlogEntries"][0]
                    .as_object_mut()
                    .expect("entry")
                    .remove("inclusionPromise");
            },
            "verification failed",
        ),
    ]
}

#[test]
fn every_tampering_fails_with_its_own_message() {
    let Some((signed, json)) = sign_digest("{}") else {
        return;
    };
    let Some((other, other_json)) = sign_digest("{}") else {
        return;
    };
    let other_value: Value = serde_json::from_str(&other_json).expect("json");
    let mut messages = tampered(&signed, &json, &other_value);
    // The other digest: the untouched bundle over a different subject.
    let other_digest = "00".repeat(32);
    let err = verify_json(&json, &signed, Subject::Sha256(&other_digest), &signer())
        .expect_err("other digest");
    assert_eq!(
        err.to_string(),
        format!("the signature is for sha256:{DIGEST_HEX}, not sha256:{other_digest}")
    );
    messages.push(err.to_string());
    // An untrusted root: the other signing's (fresh CA and logs).
    let root =
        gantry_sigstore::trusted_root(&RootSource::File(other.trusted_root.clone())).expect("root");
    let bundle = gantry_sigstore::parse_bundle("bundle", &json).expect("bundle");
    let err = gantry_sigstore::verify(&bundle, Subject::Sha256(DIGEST_HEX), &signer(), &root)
        .expect_err("untrusted root");
    messages.push(err.to_string());
    // A wrong identity, a wrong issuer.
    let wrong_identity = Signer::Identity {
        identity: Matcher::exact(
            "https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main",
        ),
        issuer: Matcher::exact(SIGNER_ISSUER),
        claims: Box::default(),
    };
    messages.push(
        verify_json(&json, &signed, Subject::Sha256(DIGEST_HEX), &wrong_identity)
            .expect_err("identity")
            .to_string(),
    );
    let wrong_issuer = Signer::Identity {
        identity: Matcher::exact(SIGNER_IDENTITY),
        issuer: Matcher::exact("https://accounts.google.com"),
        claims: Box::default(),
    };
    messages.push(
        verify_json(&json, &signed, Subject::Sha256(DIGEST_HEX), &wrong_issuer)
            .expect_err("issuer")
            .to_string(),
    );
    // A truncated bundle.
    messages.push(
        gantry_sigstore::parse_bundle("bundle", &json[..json.len() / 3])
            .expect_err("truncated")
            .to_string(),
    );
    let distinct: std::collections::BTreeSet<&String> = messages.iter().collect();
    assert_eq!(
        distinct.len(),
        messages.len(),
        "each failure says its own thing:\n{}",
        messages.join("\n")
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
