//! Signing: gantry signs an image the way cosign v3 does (DSSE statement, bundle v0.3 as a
//! referrer) keyless against the mock Fulcio/Rekor/TSA, or with a key (PKCS#8 from openssl, with or
//! without the transparency log), and verifies its own signatures back from the registry.

use std::collections::BTreeMap;
use std::path::Path;

use gantry_oci::{Client, Reference};
use gantry_sigstore::oci::{ImageError, SignatureFormat, verify_image};
use gantry_sigstore::sign::{
    BUNDLE_V03, COSIGN_SIGN_PREDICATE, Identity, Services, SigningKey, attach, image_statement,
    sign_statement,
};
use gantry_sigstore::{Matcher, RootSource, Signer};
use gantry_testkit::component::require;
use gantry_testkit::peers::{MockSigstore, SIGNER_IDENTITY, SIGNER_ISSUER};
use gantry_testkit::{Auth, Backend, Registry};

mod common;
use common::{client, push_image};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("http")
}

async fn sign_and_attach(client: &Client, image: &Reference, identity: &Identity) {
    let digest = image.digest().expect("digest");
    let statement = image_statement(&image.name(), digest, &BTreeMap::new());
    let bundle = sign_statement(identity, &http(), &statement)
        .await
        .expect("sign");
    attach(client, image, &bundle, COSIGN_SIGN_PREDICATE)
        .await
        .expect("attach");
}

fn identity_signer() -> Signer {
    Signer::Identity {
        identity: Matcher::exact(SIGNER_IDENTITY),
        issuer: Matcher::exact(SIGNER_ISSUER),
        claims: Box::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_signatures_are_cosign_v3_referrers_that_verify_on_both_registries() {
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, r#"{"repository":"acme/billing"}"#)
    else {
        return;
    };
    let root = gantry_sigstore::trusted_root(&RootSource::File(services.trusted_root.clone()))
        .expect("root");
    let identity = Identity::Keyless {
        token: gantry_secret::Secret::new(services.token.clone()),
        services: Services::from_signing_config(&services.signing_config).expect("config"),
    };
    for backend in [Backend::Distribution, Backend::Gantry] {
        let Some(registry) = Registry::start_on(backend, Auth::Basic) else {
            return;
        };
        let client = client(&registry);
        let image = push_image(&client, &registry, b"keyless").await;
        sign_and_attach(&client, &image, &identity).await;

        let referrers = client.referrers(&image, None).await.expect("referrers");
        assert_eq!(referrers.descriptors.len(), 1, "{backend:?}");
        let referrer = &referrers.descriptors[0];
        assert_eq!(referrer.artifact_type.as_deref(), Some(BUNDLE_V03));
        let manifest: serde_json::Value = serde_json::from_slice(
            &client
                .manifest(&image.with_digest(referrer.digest.clone()))
                .await
                .expect("referrer")
                .bytes,
        )
        .expect("json");
        assert_eq!(manifest["layers"][0]["mediaType"], BUNDLE_V03);
        assert_eq!(
            manifest["annotations"]["dev.sigstore.bundle.predicateType"],
            COSIGN_SIGN_PREDICATE
        );
        assert_eq!(
            manifest["subject"]["digest"],
            image.digest().expect("d").as_str()
        );

        let verified = verify_image(&client, &image, &identity_signer(), &root)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(verified.format, SignatureFormat::Bundle);
        assert_eq!(verified.verified.identity.as_deref(), Some(SIGNER_IDENTITY));
        assert_eq!(verified.verified.issuer.as_deref(), Some(SIGNER_ISSUER));
        assert!(verified.verified.integrated_time.is_some());
        assert_eq!(
            verified.verified.rfc3161_timestamps, 1,
            "the signing config names the mock TSA: its RFC 3161 timestamp is in the bundle"
        );
        assert_eq!(verified.signature, referrer.digest);

        // The same signature does not vouch for another image.
        let other = push_image(&client, &registry, b"another").await;
        let err = verify_image(&client, &other, &identity_signer(), &root)
            .await
            .expect_err("unsigned");
        assert!(matches!(err, ImageError::Unsigned { .. }), "{err}");
    }
}

/// A fresh PKCS#8 P-256 key from openssl, and its public key.
fn openssl_key(dir: &Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let openssl = require("openssl", "apt-get install openssl")?;
    let private = dir.join("key.pem");
    let public = dir.join("key.pub");
    let run = |args: &[&str]| {
        let status = std::process::Command::new(&openssl)
            .args(args)
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        private.to_str().expect("utf-8"),
    ]);
    run(&[
        "pkey",
        "-in",
        private.to_str().expect("utf-8"),
        "-pubout",
        "-out",
        public.to_str().expect("utf-8"),
    ]);
    Some((private, public))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_signatures_verify_with_the_public_key_and_the_log_is_required_unless_waived() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((private, public)) = openssl_key(dir.path()) else {
        return;
    };
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let root = gantry_sigstore::trusted_root(&RootSource::File(services.trusted_root.clone()))
        .expect("root");
    let Some(registry) = Registry::start_on(Backend::Gantry, Auth::Anonymous) else {
        return;
    };
    let client = client(&registry);
    let Signer::Key { key, .. } = Signer::key_file(&public).expect("public key") else {
        unreachable!("a key file is a key")
    };
    let with_log = Signer::Key {
        key: key.clone(),
        tlog: true,
    };
    let without_log = Signer::Key { key, tlog: false };

    // Offline: no log entry. Verifies only when the log is explicitly not required.
    let offline = push_image(&client, &registry, b"offline").await;
    let signing = SigningKey::from_file(&private, None).expect("key");
    assert!(!format!("{signing:?}").contains("PRIVATE"), "{signing:?}");
    let identity = Identity::Key {
        key: Box::new(signing),
        rekor: None,
    };
    sign_and_attach(&client, &offline, &identity).await;
    let verified = verify_image(&client, &offline, &without_log, &root)
        .await
        .expect("verifies without the log");
    assert_eq!(verified.verified.identity, None);
    let err = verify_image(&client, &offline, &with_log, &root)
        .await
        .expect_err("no log entry");
    assert!(
        err.to_string().contains("none verified for the given key:"),
        "{err}"
    );

    // Logged in the mock Rekor: verifies with the log required.
    let logged = push_image(&client, &registry, b"logged").await;
    let identity = Identity::Key {
        key: Box::new(SigningKey::from_file(&private, None).expect("key")),
        rekor: Some(services.url.clone()),
    };
    sign_and_attach(&client, &logged, &identity).await;
    let verified = verify_image(&client, &logged, &with_log, &root)
        .await
        .expect("verifies with the log");
    assert!(verified.verified.integrated_time.is_some());

    // Another key's signature is refused.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let (_, other_public) = openssl_key(other_dir.path()).expect("openssl");
    let Signer::Key { key: other, .. } = Signer::key_file(&other_public).expect("key") else {
        unreachable!("a key file is a key")
    };
    let err = verify_image(
        &client,
        &logged,
        &Signer::Key {
            key: other,
            tlog: true,
        },
        &root,
    )
    .await
    .expect_err("another key");
    assert!(matches!(err, ImageError::NoneVerified { .. }), "{err}");
}

#[test]
fn private_keys_that_cannot_be_used_say_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sec1 = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n";
    let err = SigningKey::from_pem("k.pem", sec1, None).expect_err("sec1");
    assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");
    let err = SigningKey::from_pem("k.pem", "hello", None).expect_err("not pem");
    assert!(err.to_string().contains("no PEM block"), "{err}");
    let encrypted = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\ne30=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
    let err = SigningKey::from_pem("k.pem", encrypted, None).expect_err("no password");
    assert!(err.to_string().contains("give its password"), "{err}");
    drop(dir);
}

/// Signs `image` the legacy way only (a `.sig` layer, no bundle referrer).
async fn sign_legacy(client: &Client, image: &Reference, identity: &Identity) {
    let digest = image.digest().expect("digest");
    let payload = gantry_sigstore::legacy::payload(image, digest);
    let bundle = gantry_sigstore::sign::sign_message(identity, &http(), &payload)
        .await
        .expect("sign");
    let annotations = gantry_sigstore::legacy::annotations(&bundle).expect("annotations");
    gantry_sigstore::legacy::attach(client, image, &payload, &annotations)
        .await
        .expect("attach");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sig_signatures_gantry_writes_verify_keyless_and_with_a_key() {
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let root = gantry_sigstore::trusted_root(&RootSource::File(services.trusted_root.clone()))
        .expect("root");
    let Some(registry) = Registry::start_on(Backend::Distribution, Auth::Anonymous) else {
        return;
    };
    let client = client(&registry);

    // Keyless: certificate, signature and Rekor bundle in cosign's annotations.
    let image = push_image(&client, &registry, b"legacy keyless").await;
    let keyless = Identity::Keyless {
        token: gantry_secret::Secret::new(services.token.clone()),
        services: Services::from_signing_config(&services.signing_config).expect("config"),
    };
    sign_legacy(&client, &image, &keyless).await;
    let verified = verify_image(&client, &image, &identity_signer(), &root)
        .await
        .expect("keyless legacy");
    assert_eq!(verified.format, SignatureFormat::LegacySig);
    assert_eq!(verified.verified.identity.as_deref(), Some(SIGNER_IDENTITY));
    assert!(verified.verified.log_index.is_some());

    // A second signature is added to the same .sig manifest, not replacing the first.
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((private, public)) = openssl_key(dir.path()) else {
        return;
    };
    let key = Identity::Key {
        key: Box::new(SigningKey::from_file(&private, None).expect("key")),
        rekor: Some(services.url.clone()),
    };
    sign_legacy(&client, &image, &key).await;
    let digest = image.digest().expect("digest");
    let sig = image
        .with_tag(&format!("sha256-{}.sig", digest.hex()))
        .expect("tag");
    let manifest: serde_json::Value =
        serde_json::from_slice(&client.manifest(&sig).await.expect(".sig").bytes).expect("json");
    assert_eq!(
        manifest["layers"].as_array().map(Vec::len),
        Some(2),
        "{manifest}"
    );
    let Signer::Key {
        key: public_key, ..
    } = Signer::key_file(&public).expect("public")
    else {
        unreachable!("a key file is a key")
    };
    let with_key = Signer::Key {
        key: public_key.clone(),
        tlog: true,
    };
    let verified = verify_image(&client, &image, &with_key, &root)
        .await
        .expect("key legacy, logged");
    assert_eq!(verified.format, SignatureFormat::LegacySig);
    assert!(verified.verified.log_index.is_some());

    // Offline key signature: only with the log waived.
    let offline = push_image(&client, &registry, b"legacy offline").await;
    let key = Identity::Key {
        key: Box::new(SigningKey::from_file(&private, None).expect("key")),
        rekor: None,
    };
    sign_legacy(&client, &offline, &key).await;
    verify_image(&client, &offline, &with_key, &root)
        .await
        .expect_err("no log entry");
    verify_image(
        &client,
        &offline,
        &Signer::Key {
            key: public_key,
            tlog: false,
        },
        &root,
    )
    .await
    .expect("waived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timestamp_authority_is_asked_when_configured_and_its_root_must_be_trusted() {
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let root_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&services.trusted_root).expect("root"))
            .expect("json");
    let root = gantry_sigstore::TrustedRoot::from_json(&root_json.to_string()).expect("root");
    let configured = Services::from_signing_config(&services.signing_config).expect("config");
    assert!(
        configured.tsa.is_some(),
        "the mock's signing config names its TSA"
    );
    let digest = "ab".repeat(32);
    let statement = image_statement(
        "registry.example/acme/billing",
        &format!("sha256:{digest}").parse().expect("digest"),
        &BTreeMap::new(),
    );
    let sign = |with: Services| {
        let statement = statement.clone();
        let token = gantry_secret::Secret::new(services.token.clone());
        async move {
            let identity = Identity::Keyless {
                token,
                services: with,
            };
            sign_statement(&identity, &http(), &statement)
                .await
                .expect("sign")
        }
    };

    // With the TSA: an RFC 3161 timestamp in the bundle, verified.
    let stamped = sign(configured.clone()).await;
    let verified = gantry_sigstore::verify(
        &stamped,
        gantry_sigstore::Subject::Sha256(&digest),
        &identity_signer(),
        &root,
    )
    .expect("verifies");
    assert_eq!(verified.rfc3161_timestamps, 1, "{verified:?}");

    // Without one (Rekor v1 does not need it): the log's SET dates the signature alone.
    let unstamped = sign(Services {
        tsa: None,
        ..configured
    })
    .await;
    let verified = gantry_sigstore::verify(
        &unstamped,
        gantry_sigstore::Subject::Sha256(&digest),
        &identity_signer(),
        &root,
    )
    .expect("verifies");
    assert_eq!(verified.rfc3161_timestamps, 0, "{verified:?}");

    // A root that does not trust the TSA refuses the timestamped bundle, not only ignores it.
    let mut without_tsa = root_json.clone();
    without_tsa
        .as_object_mut()
        .expect("object")
        .remove("timestampAuthorities");
    let untrusting =
        gantry_sigstore::TrustedRoot::from_json(&without_tsa.to_string()).expect("root");
    let error = gantry_sigstore::verify(
        &stamped,
        gantry_sigstore::Subject::Sha256(&digest),
        &identity_signer(),
        &untrusting,
    )
    .expect_err("untrusted TSA");
    assert!(error.to_string().contains("RFC 3161 timestamp"), "{error}");
}
