//! sbom-attach as a user runs it: the SBOM attached as a referrer and as a signed attestation
//! (keyless against the mock Fulcio/Rekor/TSA, or with a key), verified by gantry's verify-image,
//! sigstore-js and sigstore-python; idempotent; one SBOM per platform of an index; `--rootfs` and
//! OCI layouts attach nothing; the action contract.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use bytes::Bytes;
use gantry_oci::{Client, ImageConfig, ImageFile, Reference, ScratchImage};
use gantry_testkit::component::require_python_module;
use gantry_testkit::peers::{
    MockSigstore, Peers, SIGNER_IDENTITY, SIGNER_ISSUER, sigstore_js_verify,
};
use gantry_testkit::{Auth, Backend, Registry};

use crate::signing::text;
use crate::{gantry, json};

const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
const STATUS: &str = "Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u8\nArchitecture: amd64\n\nPackage: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u9\nArchitecture: amd64\nSource: glibc\nDepends: base-files\n\nPackage: procps\nStatus: deinstall ok config-files\nVersion: 2:4.0.2-3\nArchitecture: amd64\n";

/// An image with a dpkg database, an os-release and an npm package.
async fn push_app(registry: &Registry, name: &str) -> Reference {
    let client = Client::plain_http(&registry.host()).expect("client");
    let file = |path: &str, text: &str| ImageFile {
        path: path.into(),
        mode: 0o644,
        bytes: Bytes::from(text.to_owned()),
    };
    let image = ScratchImage::build(
        &[
            file("/var/lib/dpkg/status", STATUS),
            file(
                "/etc/os-release",
                "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
            ),
            file(
                "/app/node_modules/left-pad/package.json",
                r#"{"name":"left-pad","version":"1.3.0","license":"WTFPL"}"#,
            ),
        ],
        &ImageConfig {
            architecture: "amd64".into(),
            ..ImageConfig::default()
        },
    )
    .expect("image");
    let tag: Reference = format!("{}/acme/{name}:v1", registry.host())
        .parse()
        .expect("reference");
    image.push(&client, &tag).await.expect("push");
    tag
}

async fn referrers(
    registry: &Registry,
    image: &Reference,
    digest: &str,
) -> Vec<gantry_oci::Descriptor> {
    let client = Client::plain_http(&registry.host()).expect("client");
    let pinned = image.with_digest(digest.parse().expect("digest"));
    client
        .referrers(&pinned, None)
        .await
        .expect("referrers")
        .descriptors
}

/// The bundle JSON inside the attestation referrer `attestation` of `digest`.
async fn bundle_of(registry: &Registry, image: &Reference, attestation: &str) -> Vec<u8> {
    let client = Client::plain_http(&registry.host()).expect("client");
    let at = image.with_digest(attestation.parse().expect("digest"));
    let manifest = client.manifest(&at).await.expect("manifest");
    let layer = manifest.fields().expect("fields").layers.remove(0);
    client
        .blob(&at, &layer.digest, 64 << 20)
        .await
        .expect("bundle")
        .to_vec()
}

fn attach_keyless(
    registry: &Registry,
    services: &MockSigstore,
    image: &Reference,
    dir: &Path,
    output: &Path,
) -> Output {
    let token = dir.join("identity-token");
    std::fs::write(&token, &services.token).expect("token");
    gantry(&[
        "sbom-attach",
        "--image",
        &image.to_string(),
        "--identity-token-file",
        token.to_str().expect("utf8"),
        "--signing-config",
        services.signing_config.to_str().expect("utf8"),
        "--insecure-registry",
        &registry.host(),
        "--output",
        output.to_str().expect("utf8"),
        "--json",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_sbom_attestation_verifies_with_gantry_sigstore_js_and_sigstore_python_and_rerunning_adds_nothing()
 {
    let Some(python) = require_python_module("sigstore", "pip install sigstore==4.5.1") else {
        return;
    };
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    // distribution: no referrers API, the fallback tag
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let image = push_app(&registry, "billing").await;
    let sbom_file = dir.path().join("sbom.json");
    let output = attach_keyless(&registry, &services, &image, dir.path(), &sbom_file);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let outputs = json(&output)["outputs"].clone();
    let digest = outputs["digest"].as_str().expect("digest").to_owned();
    let sbom = std::fs::read(&sbom_file).expect("sbom written");
    gantry_testkit::peers::validate_cyclonedx(&sbom);
    assert_eq!(
        outputs["sbom-digest"],
        gantry_oci::Digest::sha256(&sbom).to_string()
    );
    assert_eq!(
        outputs["counts"], r#"{"deb":2,"npm":1}"#,
        "procps is removed, not installed"
    );
    assert_eq!(outputs["os"], "Debian GNU/Linux 12 (bookworm)");
    let found = sbom_referrer_holds(&registry, &image, &digest, &outputs, &sbom).await;
    let attestation = outputs["attestation-digest"]
        .as_str()
        .expect("attestation")
        .to_owned();
    let bundle = bundle_of(&registry, &image, &attestation).await;
    statement_carries_the_sbom(&bundle, &sbom, &digest);
    // gantry verify-image: the attestation alone, as cosign verify-attestation checks it
    let pinned = format!("{}@{digest}", image.name());
    let verify = |identity: &str| {
        gantry(&[
            "verify-image",
            "--image",
            &pinned,
            "--require-attestation",
            "cyclonedx",
            "--require-signature",
            "false",
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            SIGNER_ISSUER,
            "--trusted-root",
            services.trusted_root.to_str().expect("utf8"),
            "--insecure-registry",
            &registry.host(),
            "--json",
        ])
    };
    let output = verify(SIGNER_IDENTITY);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = verify("https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    peers_verify(&python, &services, dir.path(), &bundle, &digest);
    // again: nothing new is attached, the same digests come back
    let before: BTreeSet<String> = found.iter().map(|d| d.digest.to_string()).collect();
    let again = attach_keyless(&registry, &services, &image, dir.path(), &sbom_file);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let again_outputs = json(&again)["outputs"].clone();
    for key in ["sbom-digest", "referrer-digest", "attestation-digest"] {
        assert_eq!(again_outputs[key], outputs[key], "{key}");
    }
    assert!(
        json(&again)["summary"]
            .as_str()
            .unwrap_or("")
            .contains("already attached")
    );
    let after: BTreeSet<String> = referrers(&registry, &image, &digest)
        .await
        .iter()
        .map(|d| d.digest.to_string())
        .collect();
    assert_eq!(after, before, "a rerun adds no referrer");
    assert_eq!(
        std::fs::read(&sbom_file).expect("sbom"),
        sbom,
        "byte-identical"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_gets_one_sbom_per_platform_signed_with_a_key() {
    let Some(peers) = Peers::find() else { return };
    let Some(registry) = Registry::start_on(Backend::Gantry, Auth::Anonymous) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = peers.build_layout(dir.path());
    peers.push(
        &registry,
        &format!("oci:{}:multi", layout.display()),
        "acme/multi:v1",
        &["--all"],
    );
    let (key, public) = key_pair(dir.path());
    let image = format!("{}/acme/multi:v1", registry.host());
    let attach = |extra: &[&str]| {
        let mut args = vec![
            "sbom-attach",
            "--image",
            &image,
            "--key",
            key.to_str().expect("utf8"),
            "--tlog-upload",
            "false",
            "--insecure-registry",
        ];
        let host = registry.host();
        args.push(&host);
        args.extend_from_slice(extra);
        args.push("--json");
        gantry(&args)
    };
    let out = dir.path().join("sbom.json");
    let output = attach(&["--output", out.to_str().expect("utf8")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let outputs = json(&output)["outputs"].clone();
    let digests: Vec<&str> = outputs["digest"]
        .as_str()
        .expect("digest")
        .lines()
        .collect();
    assert_eq!(digests.len(), 2, "{outputs}");
    for platform in ["linux-amd64", "linux-arm64"] {
        assert!(
            dir.path().join(format!("sbom-{platform}.json")).is_file(),
            "{platform}"
        );
    }
    // each platform manifest carries its own SBOM referrer and attestation
    let reference: Reference = image.parse().expect("reference");
    for digest in &digests {
        let found = referrers(&registry, &reference, digest).await;
        assert!(
            found
                .iter()
                .any(|d| d.artifact_type.as_deref() == Some(CYCLONEDX)),
            "{digest}"
        );
        assert!(
            found.iter().any(|d| d.artifact_type.as_deref()
                == Some("application/vnd.dev.sigstore.bundle.v0.3+json")),
            "{digest}"
        );
    }
    // each platform's SBOM attestation verifies (the index itself has no filesystem, no SBOM)
    for digest in &digests {
        let pinned = format!("{}@{digest}", reference.name());
        let verified = gantry(&[
            "verify-image",
            "--image",
            &pinned,
            "--key",
            public.to_str().expect("utf8"),
            "--insecure-ignore-tlog",
            "--require-attestation",
            "cyclonedx",
            "--require-signature",
            "false",
            "--insecure-registry",
            &registry.host(),
            "--json",
        ]);
        assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    }
    // --platform narrows to one; a platform the index lacks is an error naming what it has
    let one = attach(&["--platform", "linux/arm64", "--attest", "false"]);
    assert_eq!(one.status.code(), Some(0), "{}", text(&one));
    assert_eq!(
        json(&one)["outputs"]["digest"]
            .as_str()
            .expect("digest")
            .lines()
            .count(),
        1
    );
    let none = attach(&["--platform", "linux/s390x", "--attest", "false"]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    assert!(text(&none).contains("linux/amd64"), "{}", text(&none));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_refuses_the_sbom_s_size_gets_an_error_naming_it_and_nothing_half_done() {
    // gantry-registry accepting blobs of at most 1 KiB: the image fits, its SBOM does not
    let registry = gantry_registry::start(gantry_registry::Config {
        limits: gantry_registry::Limits {
            max_blob_size: 1024,
            ..gantry_registry::Limits::default()
        },
        ..gantry_registry::Config::default()
    })
    .await
    .expect("registry");
    let host = registry.host();
    let client = Client::plain_http(&host).expect("client");
    let file = |path: &str, text: &str| ImageFile {
        path: path.into(),
        mode: 0o644,
        bytes: Bytes::from(text.to_owned()),
    };
    let image = ScratchImage::build(
        &[file("/var/lib/dpkg/status", STATUS)],
        &ImageConfig::default(),
    )
    .expect("image");
    let tag: Reference = format!("{host}/acme/small:v1").parse().expect("reference");
    image.push(&client, &tag).await.expect("push");
    let output = gantry(&[
        "sbom-attach",
        "--image",
        &tag.to_string(),
        "--attest",
        "false",
        "--insecure-registry",
        &host,
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let error = json(&output)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("attaching the SBOM (") && error.contains(" bytes) to "),
        "{error}"
    );
    // nothing was attached
    let pinned = tag.with_digest(image.digest().clone());
    assert!(
        client
            .referrers(&pinned, None)
            .await
            .expect("referrers")
            .descriptors
            .is_empty()
    );
    registry.stop().await;
}

#[test]
fn a_rootfs_or_an_oci_layout_is_catalogued_and_nothing_is_attached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("mkdir");
    std::fs::write(root.join("var/lib/dpkg/status"), STATUS).expect("status");
    let out = dir.path().join("sbom.json");
    let output = gantry(&[
        "sbom-attach",
        "--rootfs",
        root.to_str().expect("utf8"),
        "--output",
        out.to_str().expect("utf8"),
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let outputs = json(&output)["outputs"].clone();
    assert_eq!(outputs["counts"], r#"{"deb":2}"#);
    assert_eq!(outputs["referrer-digest"], "");
    assert_eq!(outputs["attestation-digest"], "");
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("sbom")).expect("json");
    assert_eq!(sbom["specVersion"], "1.6");
    assert_eq!(sbom["metadata"]["component"]["name"], "rootfs");
    // without --output there is nowhere for the SBOM to go: a usage error
    let output = gantry(&["sbom-attach", "--rootfs", root.to_str().expect("utf8")]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    // an OCI layout (umoci's): the image's layers, by digest
    let Some(peers) = Peers::find() else { return };
    let layout = peers.build_layout(dir.path());
    let out = dir.path().join("layout.json");
    let output = gantry(&[
        "sbom-attach",
        "--rootfs",
        layout.to_str().expect("utf8"),
        "--platform",
        "linux/arm64",
        "--output",
        out.to_str().expect("utf8"),
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("sbom")).expect("json");
    assert!(
        sbom["metadata"]["component"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("sha256:"))
    );
}

#[test]
fn as_a_container_action_the_outputs_and_summary_are_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("mkdir");
    std::fs::write(root.join("var/lib/dpkg/status"), STATUS).expect("status");
    let output_file = dir.path().join("github_output");
    let summary_file = dir.path().join("step_summary");
    std::fs::write(&output_file, "").expect("output file");
    let out = dir.path().join("sbom.json");
    let output = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["sbom-attach", "--action"])
        .env("INPUT_ROOTFS", &root)
        .env("INPUT_OUTPUT", &out)
        .env("INPUT_IMAGE", "")
        .env("INPUT_PLATFORM", "")
        .env("INPUT_ATTEST", "true")
        .env("INPUT_JOBS", "3")
        .env("INPUT_GITHUB-TOKEN", "ghs_not_needed")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .output()
        .expect("run the action");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let outputs = gantry_actions::files::parse_outputs(
        &std::fs::read_to_string(&output_file).expect("outputs"),
    )
    .expect("outputs");
    assert_eq!(outputs["packages"], "2");
    assert_eq!(outputs["counts"], r#"{"deb":2}"#);
    let summary = std::fs::read_to_string(&summary_file).expect("summary");
    assert!(summary.contains("| deb | 2 |"), "{summary}");
    assert!(out.is_file());
}

/// sigstore-js and sigstore-python, offline, accept the attestation bundle for `digest`.
fn peers_verify(python: &Path, services: &MockSigstore, dir: &Path, bundle: &[u8], digest: &str) {
    // sigstore-js and sigstore-python, offline
    let bundle_file = dir.join("attestation.sigstore.json");
    std::fs::write(&bundle_file, bundle).expect("bundle file");
    let Some(js) = sigstore_js_verify(
        &bundle_file,
        &services.trusted_root,
        SIGNER_IDENTITY,
        SIGNER_ISSUER,
        digest,
    ) else {
        return;
    };
    assert!(js.status.success(), "sigstore-js: {}", text(&js));
    let py = Command::new(python)
        .args(["-m", "sigstore", "--trust-config"])
        .arg(&services.trust_config)
        .args(["verify", "identity", "--offline", "--bundle"])
        .arg(&bundle_file)
        .args([
            "--cert-identity",
            SIGNER_IDENTITY,
            "--cert-oidc-issuer",
            SIGNER_ISSUER,
            digest,
        ])
        .output()
        .expect("sigstore-python");
    assert!(py.status.success(), "sigstore-python: {}", text(&py));
}

/// The bundle is DSSE over an in-toto statement for `digest` whose predicate is the SBOM.
fn statement_carries_the_sbom(bundle: &[u8], sbom: &[u8], digest: &str) {
    let parsed: serde_json::Value = serde_json::from_slice(bundle).expect("bundle json");
    let payload = base64::engine::general_purpose::STANDARD
        .decode(parsed["dsseEnvelope"]["payload"].as_str().expect("payload"))
        .expect("base64");
    let statement: serde_json::Value = serde_json::from_slice(&payload).expect("statement");
    assert_eq!(statement["predicateType"], "https://cyclonedx.org/bom");
    assert_eq!(
        statement["predicate"],
        serde_json::from_slice::<serde_json::Value>(sbom).expect("sbom json")
    );
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
}

/// A fresh key pair: (private, public) PEM files in `dir`.
pub fn key_pair(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join("key.pem");
    std::fs::write(
        &key,
        gantry_sigstore::sign::SigningKey::generate_pem()
            .expect("key")
            .expose(),
    )
    .expect("key");
    let public = dir.join("key.pub");
    std::fs::write(
        &public,
        gantry_sigstore::sign::SigningKey::from_file(&key, None)
            .expect("key")
            .public_pem()
            .expect("pem"),
    )
    .expect("pub");
    (key, public)
}

/// The SBOM referrer of `digest` is the one the outputs name and holds exactly `sbom`; every
/// referrer of `digest`.
async fn sbom_referrer_holds(
    registry: &Registry,
    image: &Reference,
    digest: &str,
    outputs: &serde_json::Value,
    sbom: &[u8],
) -> Vec<gantry_oci::Descriptor> {
    // the referrer holds exactly the SBOM
    let found = referrers(registry, image, digest).await;
    let sbom_referrer = found
        .iter()
        .find(|d| d.artifact_type.as_deref() == Some(CYCLONEDX))
        .expect("an SBOM referrer");
    assert_eq!(outputs["referrer-digest"], sbom_referrer.digest.to_string());
    let client = Client::plain_http(&registry.host()).expect("client");
    let at = image.with_digest(sbom_referrer.digest.clone());
    let layer = client
        .manifest(&at)
        .await
        .expect("manifest")
        .fields()
        .expect("fields")
        .layers
        .remove(0);
    assert_eq!(layer.media_type, CYCLONEDX);
    assert_eq!(
        client
            .blob(&at, &layer.digest, 64 << 20)
            .await
            .expect("blob")
            .to_vec(),
        sbom
    );
    found
}
