//! The library on sigstore-conformance's real bundles: policies, subjects and what failures say.

use std::path::{Path, PathBuf};

use gantry_sigstore::{ClaimPolicy, Matcher, RootSource, Signer, SigstoreError, Subject, Verified};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

fn check(case: &str, subject: Subject<'_>, signer: &Signer) -> Result<Verified, SigstoreError> {
    let dir = assets().join("bundle-verify").join(case);
    let root_file = dir.join("trusted_root.json");
    let root = gantry_sigstore::trusted_root(&RootSource::File(if root_file.exists() {
        root_file
    } else {
        assets().join("production-trusted_root.json")
    }))
    .expect("root");
    let json = std::fs::read_to_string(dir.join("bundle.sigstore.json")).expect("bundle");
    let bundle = gantry_sigstore::parse_bundle(case, &json)?;
    gantry_sigstore::verify(&bundle, subject, signer, &root)
}

fn a_txt() -> Vec<u8> {
    std::fs::read(assets().join("a.txt")).expect("a.txt")
}

fn identity(identity: Matcher, issuer: Matcher) -> Signer {
    Signer::Identity {
        identity,
        issuer,
        claims: Box::default(),
    }
}

#[test]
fn keyless_bundles_report_who_signed_and_when() {
    let artifact = a_txt();
    for case in ["happy-path-v0.1", "happy-path-v0.2", "happy-path-v0.3"] {
        let verified = check(
            case,
            Subject::Bytes(&artifact),
            &identity(Matcher::exact(IDENTITY), Matcher::exact(ISSUER)),
        )
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(verified.identity.as_deref(), Some(IDENTITY), "{case}");
        assert_eq!(
            verified.claims.repository.as_deref(),
            Some("sigstore-conformance/extremely-dangerous-public-oidc-beacon"),
            "{case}"
        );
        assert_eq!(verified.issuer.as_deref(), Some(ISSUER), "{case}");
        assert!(
            verified.integrated_time.is_some_and(|t| t > 1_600_000_000),
            "{case}"
        );
    }
}

#[test]
fn a_mismatched_identity_or_issuer_names_what_was_found() {
    let artifact = a_txt();
    let err = check(
        "happy-path-v0.3",
        Subject::Bytes(&artifact),
        &identity(
            Matcher::exact(
                "https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main",
            ),
            Matcher::exact(ISSUER),
        ),
    )
    .expect_err("wrong identity");
    assert_eq!(
        err.to_string(),
        format!(
            "the certificate's identity is {IDENTITY:?}, expected \"https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main\""
        )
    );
    let err = check(
        "happy-path-v0.3",
        Subject::Bytes(&artifact),
        &identity(
            Matcher::exact(IDENTITY),
            Matcher::regex("https://accounts\\.google\\.com").expect("regex"),
        ),
    )
    .expect_err("wrong issuer");
    assert_eq!(
        err.to_string(),
        format!(
            "the certificate's issuer is {ISSUER:?}, expected a match of /https://accounts\\.google\\.com/"
        )
    );
    let verified = check(
        "happy-path-v0.3",
        Subject::Bytes(&artifact),
        &identity(
            Matcher::regex("https://github\\.com/sigstore-conformance/.*@refs/heads/main")
                .expect("regex"),
            Matcher::regex("https://token\\.actions\\.githubusercontent\\.com").expect("regex"),
        ),
    )
    .expect("a regexp identity");
    assert_eq!(verified.identity.as_deref(), Some(IDENTITY));
}

#[test]
fn a_dsse_attestation_verifies_over_its_subject_digest_and_not_another() {
    let artifact = a_txt();
    let signer = identity(Matcher::exact(IDENTITY), Matcher::exact(ISSUER));
    let case = "happy-path-intoto-in-dsse-v3";
    let dir = assets().join("bundle-verify").join(case);
    let subject = std::fs::read(dir.join("artifact")).unwrap_or(artifact);
    let hex = sha256_hex(&subject);
    check(case, Subject::Sha256(&hex), &signer).expect("the subject's digest");
    check(case, Subject::Bytes(&subject), &signer).expect("the subject's bytes");
    let other = sha256_hex(b"another image");
    let err = check(case, Subject::Sha256(&other), &signer).expect_err("another digest");
    assert_eq!(
        err.to_string(),
        format!("the signature is for sha256:{hex}, not sha256:{other}")
    );
}

#[test]
fn key_based_bundles_need_the_right_key() {
    let artifact = a_txt();
    let dir = assets().join("bundle-verify/managed-key-happy-path");
    let right = Signer::key_file(&dir.join("key.pub")).expect("key");
    let verified =
        check("managed-key-happy-path", Subject::Bytes(&artifact), &right).expect("the right key");
    assert_eq!(verified.identity, None);
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key pair");
    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(file.path(), other.public_key_pem()).expect("write");
    let wrong = Signer::key_file(file.path()).expect("a valid key");
    let err = check("managed-key-happy-path", Subject::Bytes(&artifact), &wrong)
        .expect_err("another key");
    assert!(matches!(err, SigstoreError::Verification(_)), "{err}");
}

#[test]
fn a_tampered_bundle_is_refused() {
    let dir = assets().join("bundle-verify/happy-path-v0.3");
    let json = std::fs::read_to_string(dir.join("bundle.sigstore.json")).expect("bundle");
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("json");
    let signature = value["messageSignature"]["signature"]
        .as_str()
        .expect("signature")
        .to_owned();
    let flipped = if signature.starts_with('M') {
        signature.replacen('M', "N", 1)
    } else {
        signature.replacen(|_| true, "M", 1)
    };
    value["messageSignature"]["signature"] = flipped.into();
    let bundle =
        gantry_sigstore::parse_bundle("tampered", &value.to_string()).expect("still a bundle");
    let root = gantry_sigstore::trusted_root(&RootSource::Production).expect("root");
    let artifact = a_txt();
    let err = gantry_sigstore::verify(
        &bundle,
        Subject::Bytes(&artifact),
        &identity(Matcher::exact(IDENTITY), Matcher::exact(ISSUER)),
        &root,
    )
    .expect_err("tampered");
    assert!(matches!(err, SigstoreError::Verification(_)), "{err}");
    let truncated =
        gantry_sigstore::parse_bundle("truncated", &json[..json.len() / 2]).expect_err("truncated");
    assert!(
        truncated
            .to_string()
            .starts_with("truncated is not a valid Sigstore bundle"),
        "{truncated}"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    gantry_oci::Digest::sha256(bytes).hex().to_owned()
}

#[test]
fn github_claims_are_checked_and_a_mismatch_names_the_claim() {
    let artifact = a_txt();
    let with = |claims: ClaimPolicy| Signer::Identity {
        identity: Matcher::exact(IDENTITY),
        issuer: Matcher::exact(ISSUER),
        claims: Box::new(claims),
    };
    let verified = check(
        "happy-path-v0.3",
        Subject::Bytes(&artifact),
        &with(ClaimPolicy {
            repository: Some(Matcher::exact(
                "sigstore-conformance/extremely-dangerous-public-oidc-beacon",
            )),
            git_ref: Some(Matcher::exact("refs/heads/main")),
            workflow: Some(
                Matcher::regex(
                    "sigstore-conformance/.*/extremely-dangerous-oidc-beacon\\.yml@refs/heads/main",
                )
                .expect("regex"),
            ),
            trigger: Some(Matcher::exact("workflow_dispatch")),
            sha: Some(Matcher::regex("[0-9a-f]{40}").expect("regex")),
            runner_environment: Some(Matcher::exact("github-hosted")),
        }),
    )
    .expect("every claim holds");
    assert_eq!(
        verified.claims.trigger.as_deref(),
        Some("workflow_dispatch")
    );
    let err = check(
        "happy-path-v0.3",
        Subject::Bytes(&artifact),
        &with(ClaimPolicy {
            trigger: Some(Matcher::exact("push")),
            ..ClaimPolicy::default()
        }),
    )
    .expect_err("another trigger");
    assert_eq!(
        err.to_string(),
        "the certificate's trigger is \"workflow_dispatch\", expected \"push\""
    );
}
