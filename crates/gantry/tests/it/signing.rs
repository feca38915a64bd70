//! sign-image and verify-image as a user runs them: gantry signs keyless against the mock
//! Fulcio/Rekor/TSA, verifies what it signed and refuses what it cannot prove, and third-party
//! verifiers (sigstore-python offline, sigstore-js) accept gantry's bundles; what sigstore-python
//! signs, attached as referrers by sigstore-js's CLI, verifies with gantry.

use std::path::Path;
use std::process::{Command, Output};

use bytes::Bytes;
use gantry_oci::{Client, ImageConfig, ImageFile, Reference, ScratchImage};
use gantry_testkit::component::require_python_module;
use gantry_testkit::peers::{
    MockSigstore, SIGNER_IDENTITY, SIGNER_ISSUER, cosign_key_pair, sigstore_attach, sigstore_js,
    sigstore_js_verify, sigstore_python_sign,
};
use gantry_testkit::{Auth, Fault, FaultyProxy, Registry};

use crate::{gantry, gantry_with, json};

/// Pushes a one-file image and returns its tag.
pub(crate) async fn push(registry: &Registry, name: &str) -> Reference {
    let client = Client::plain_http(&registry.host()).expect("client");
    push_with(&client, registry, name).await
}

/// Pushes a one-file image with `client` and returns its tag.
async fn push_with(client: &Client, registry: &Registry, name: &str) -> Reference {
    let image = ScratchImage::build(
        &[ImageFile {
            path: "/app".into(),
            mode: 0o755,
            bytes: Bytes::from(name.as_bytes().to_vec()),
        }],
        &ImageConfig {
            architecture: "amd64".into(),
            ..ImageConfig::default()
        },
    )
    .expect("image");
    let tag: Reference = format!("{}/acme/{name}:dev", registry.host())
        .parse()
        .expect("reference");
    image.push(client, &tag).await.expect("push");
    tag
}

pub(crate) fn sign(
    registry: &Registry,
    services: &MockSigstore,
    image: &Reference,
    bundles: &Path,
    extra: &[&str],
) -> Output {
    let (image, host) = (image.to_string(), registry.host());
    // The token from a file, as a CI job keeps it off the command line.
    let token = bundles.join("identity-token");
    std::fs::create_dir_all(bundles).expect("bundle dir");
    std::fs::write(&token, format!("{}\n", services.token)).expect("token file");
    let mut args = vec![
        "sign-image",
        "--image",
        &image,
        "--identity-token-file",
        token.to_str().expect("utf-8"),
        "--signing-config",
        services.signing_config.to_str().expect("utf-8"),
        "--bundle-dir",
        bundles.to_str().expect("utf-8"),
        "--insecure-registry",
        &host,
        "--json",
    ];
    args.extend_from_slice(extra);
    gantry(&args)
}

fn verify(
    registry: &Registry,
    services: &MockSigstore,
    images: &[&Reference],
    identity: &str,
) -> Output {
    verify_at(&[], &registry.host(), services, images, identity)
}

/// [`verify`] against the registry (or proxy) at `host`, with extra environment variables.
fn verify_at(
    env: &[(&str, &Path)],
    host: &str,
    services: &MockSigstore,
    images: &[&Reference],
    identity: &str,
) -> Output {
    let mut args = vec!["verify-image".to_owned()];
    for image in images {
        args.extend(["--image".to_owned(), image.to_string()]);
    }
    args.extend(
        [
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            SIGNER_ISSUER,
            "--trusted-root",
            services.trusted_root.to_str().expect("utf-8"),
            "--insecure-registry",
            host,
            "--json",
        ]
        .map(str::to_owned),
    );
    gantry_with(env, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gantry_signs_keyless_and_verifies_and_refuses_with_reasons() {
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let bundles = tempfile::tempdir().expect("tempdir");
    let signed = push(&registry, "billing").await;
    let unsigned = push(&registry, "ledger").await;

    let output = sign(
        &registry,
        &services,
        &signed,
        bundles.path(),
        &["--legacy-sig"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let outputs = json(&output)["outputs"].clone();
    let digest = outputs["digest"].as_str().expect("digest").to_owned();
    assert!(digest.starts_with("sha256:"), "{outputs}");
    assert!(
        outputs["log-index"]
            .as_str()
            .expect("log index")
            .parse::<u64>()
            .is_ok(),
        "{outputs}"
    );
    let hex = digest.trim_start_matches("sha256:");
    assert!(
        bundles
            .path()
            .join(format!("{hex}.sigstore.json"))
            .is_file()
    );

    let output = verify(&registry, &services, &[&signed], SIGNER_IDENTITY);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let outputs = json(&output)["outputs"].clone();
    assert_eq!(outputs["verified"], "true");
    assert_eq!(outputs["digest"], digest.as_str());
    assert_eq!(outputs["identity"], SIGNER_IDENTITY);
    assert_eq!(outputs["issuer"], SIGNER_ISSUER);
    assert_eq!(outputs["signature-format"], "bundle");
    assert_eq!(outputs["failed"], "0");

    // Someone else's identity: refused, naming who did sign.
    let wanted = "https://github.com/acme/billing/.github/workflows/deploy.yml@refs/heads/main";
    let output = verify(&registry, &services, &[&signed], wanted);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains(&format!("none verified for identity \"{wanted}\"")),
        "{said}"
    );
    assert!(
        said.contains(&format!("is signed by \"{SIGNER_IDENTITY}\"")),
        "{said}"
    );

    // Two images, one unsigned: both reported, one failure counted.
    let output = verify(&registry, &services, &[&signed, &unsigned], SIGNER_IDENTITY);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report = json(&output);
    assert_eq!(report["outputs"]["failed"], "1", "{report}");
    assert_eq!(report["outputs"]["verified"], "false", "{report}");
    let said = text(&output);
    assert!(said.contains("no signatures found for"), "{said}");
    assert!(said.contains("(looked in: fallback tag sha256-"), "{said}");
    assert!(said.contains(".sig tag sha256-"), "{said}");
    assert!(
        said.contains(&format!("✅ signed by {SIGNER_IDENTITY}")),
        "{said}"
    );
}

/// An image signed both ways (a cosign v3 bundle and a legacy `.sig`): its digest and the
/// referrer that holds the bundle.
async fn signed_both_ways(
    registry: &Registry,
    services: &MockSigstore,
    name: &str,
) -> (String, String) {
    let bundles = tempfile::tempdir().expect("tempdir");
    let image = push(registry, name).await;
    let output = sign(
        registry,
        services,
        &image,
        bundles.path(),
        &["--legacy-sig"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let outputs = json(&output)["outputs"].clone();
    let digest = outputs["digest"].as_str().expect("digest").to_owned();
    let referrer = outputs["signature"].as_str().expect("referrer").to_owned();
    (digest, referrer)
}

/// A registry that serves a signature manifest larger than any registry accepts at push
/// (staged by a proxy: distribution and gantry's registry refuse one at push) gets that signature
/// refused, named, as a failed check (exit 1), not an infrastructure error; a signature beside it
/// that verifies still counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_signature_manifest_is_refused_unread_and_named() {
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let (digest, referrer) = signed_both_ways(&registry, &services, "oversized").await;
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));

    let proxy = FaultyProxy::start(&registry.host()).expect("proxy");
    let through: Reference = format!("{}/acme/oversized@{digest}", proxy.host())
        .parse()
        .expect("reference");
    let output = verify_at(&[], &proxy.host(), &services, &[&through], SIGNER_IDENTITY);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the proxy alone: {}",
        text(&output)
    );

    let over = usize::try_from(gantry_oci::manifest::MANIFEST_LIMIT).expect("usize") + 1;
    let referrer_path = format!("/manifests/{referrer}");
    let sig_path = format!("/manifests/{sig_tag}");
    // The referrer streamed without a length (counted while read), the `.sig` with one (refused
    // before a byte of the body is read).
    let streamed = Fault::Inflate {
        to: over,
        declared: false,
    };
    proxy.inject("GET", &referrer_path, streamed, 1);
    proxy.inject(
        "GET",
        &sig_path,
        Fault::Inflate {
            to: over,
            declared: true,
        },
        1,
    );
    let output = verify_at(&[], &proxy.host(), &services, &[&through], SIGNER_IDENTITY);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert_eq!(json(&output)["outputs"]["verified"], "false", "{said}");
    for named in [
        format!(
            "{referrer} (referrer): manifest {}/acme/oversized@{referrer} is larger than the limit of 4194304 bytes",
            proxy.host()
        ),
        format!(
            "{sig_tag} (legacy-sig): manifest {}/acme/oversized:{sig_tag} is larger than the limit of 4194304 bytes",
            proxy.host()
        ),
    ] {
        assert!(said.contains(&named), "{named} not in:\n{said}");
    }
    let log = proxy.log();
    assert_eq!(
        log.iter().filter(|line| line.contains("(Inflate")).count(),
        2,
        "{log:?}"
    );

    // Only the referrer oversized: the legacy signature beside it verifies.
    proxy.inject("GET", &referrer_path, streamed, 1);
    let output = verify_at(&[], &proxy.host(), &services, &[&through], SIGNER_IDENTITY);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(json(&output)["outputs"]["signature-format"], "legacy-sig");
}

/// "Offline" means offline: against a trusted root file, verify-image reaches the registry and
/// nothing else, for both storage formats. The Sigstore services that signed are stopped first,
/// every other host is sent to a proxy that counts who knocks, and the proxy in front of the
/// registry sees reads only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifying_against_a_trusted_root_file_reaches_only_the_registry_and_writes_nothing() {
    let Some(mut services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let (digest, referrer) = signed_both_ways(&registry, &services, "sealed").await;
    services.stop();

    let knocks = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let elsewhere = format!("http://{}", knocks.local_addr().expect("addr"));
    knocks.set_nonblocking(true).expect("nonblocking");
    let registry_proxy = FaultyProxy::start(&registry.host()).expect("proxy");
    let through: Reference = format!("{}/acme/sealed@{digest}", registry_proxy.host())
        .parse()
        .expect("reference");
    let verify_sealed = || {
        let elsewhere = Path::new(&elsewhere);
        let env = [
            ("HTTPS_PROXY", elsewhere),
            ("HTTP_PROXY", elsewhere),
            ("ALL_PROXY", elsewhere),
            ("NO_PROXY", Path::new("127.0.0.1")),
        ];
        let host = registry_proxy.host();
        verify_at(&env, &host, &services, &[&through], SIGNER_IDENTITY)
    };
    let output = verify_sealed();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(json(&output)["outputs"]["signature-format"], "bundle");
    // The referrer's body broken in transit: the legacy `.sig` verifies, offline too.
    registry_proxy.inject(
        "GET",
        &format!("/manifests/{referrer}"),
        Fault::CorruptBody,
        1,
    );
    let output = verify_sealed();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(json(&output)["outputs"]["signature-format"], "legacy-sig");

    assert!(
        matches!(knocks.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "verify-image reached for a host other than the registry"
    );
    let log = registry_proxy.log();
    assert!(
        log.iter()
            .all(|line| line.starts_with("GET /v2/") || line.starts_with("HEAD /v2/")),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gantry_s_bundles_verify_with_sigstore_js_and_sigstore_python_offline() {
    let Some(python) = require_python_module("sigstore", "pip install sigstore==4.5.1") else {
        return;
    };
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let image = push(&registry, "payments").await;
    let output = sign(&registry, &services, &image, dir.path(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let digest = json(&output)["outputs"]["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    let bundle = dir.path().join(format!(
        "{}.sigstore.json",
        digest.trim_start_matches("sha256:")
    ));
    // The mock's signing config names its TSA: the peers check gantry's RFC 3161 timestamp too.
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).expect("bundle")).expect("json");
    let stamps = &written["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"];
    assert_eq!(stamps.as_array().map(Vec::len), Some(1), "{written}");
    // sigstore-js, offline against the same root.
    let Some(output) = sigstore_js_verify(
        &bundle,
        &services.trusted_root,
        SIGNER_IDENTITY,
        SIGNER_ISSUER,
        &digest,
    ) else {
        return;
    };
    assert!(output.status.success(), "sigstore-js: {}", text(&output));
    let other = format!("sha256:{}", "1".repeat(64));
    let output = sigstore_js_verify(
        &bundle,
        &services.trusted_root,
        SIGNER_IDENTITY,
        SIGNER_ISSUER,
        &other,
    )
    .expect("node");
    assert!(
        !output.status.success(),
        "sigstore-js accepted another digest: {}",
        text(&output)
    );
    let output = sigstore_js_verify(
        &bundle,
        &services.trusted_root,
        "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main",
        SIGNER_ISSUER,
        &digest,
    )
    .expect("node");
    assert!(
        !output.status.success(),
        "sigstore-js accepted another identity: {}",
        text(&output)
    );

    let python_verify = |identity: &str, subject: &str| {
        Command::new(&python)
            .args(["-m", "sigstore", "--trust-config"])
            .arg(&services.trust_config)
            .args(["verify", "identity", "--offline", "--bundle"])
            .arg(&bundle)
            .args([
                "--cert-identity",
                identity,
                "--cert-oidc-issuer",
                SIGNER_ISSUER,
                subject,
            ])
            .output()
            .expect("sigstore-python")
    };
    let output = python_verify(SIGNER_IDENTITY, &digest);
    assert!(
        output.status.success(),
        "sigstore-python: {}",
        text(&output)
    );
    let output = python_verify(
        "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main",
        &digest,
    );
    assert!(
        !output.status.success(),
        "sigstore-python accepted another identity: {}",
        text(&output)
    );
    let other = format!("sha256:{}", "0".repeat(64));
    let output = python_verify(SIGNER_IDENTITY, &other);
    assert!(
        !output.status.success(),
        "sigstore-python accepted another digest: {}",
        text(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign_encrypted_keys_sign_offline_or_logged_and_verify_with_the_public_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((key, public)) = cosign_key_pair(dir.path(), "correct horse") else {
        return;
    };
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let host = registry.host();
    let sign_with = |image: &Reference, password: &str, log: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
        command
            .args(["sign-image", "--image", &image.to_string(), "--key"])
            .arg(&key)
            .args(["--insecure-registry", &host, "--json"])
            .args(log)
            .env("COSIGN_PASSWORD", password);
        command.output().expect("gantry")
    };
    let verify_with = |image: &Reference, extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
        command
            .args(["verify-image", "--image", &image.to_string(), "--key"])
            .arg(&public)
            .arg("--trusted-root")
            .arg(&services.trusted_root)
            .args(["--insecure-registry", &host, "--json"])
            .args(extra);
        command.output().expect("gantry")
    };

    // Offline: verifies only with the log waived.
    let offline = push(&registry, "offline").await;
    let output = sign_with(&offline, "wrong horse", &["--tlog-upload", "false"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("does not decrypt with the password given"),
        "{}",
        text(&output)
    );
    let output = sign_with(&offline, "correct horse", &["--tlog-upload", "false"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = verify_with(&offline, &["--insecure-ignore-tlog"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(json(&output)["outputs"]["log-index"], "");
    let output = verify_with(&offline, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("verify with --insecure-ignore-tlog"),
        "the refusal names the way out: {}",
        text(&output)
    );

    // A Rekor that cannot be reached: the cause, and the flag for signing without one.
    let unreachable = push(&registry, "unreachable").await;
    let output = sign_with(
        &unreachable,
        "correct horse",
        &["--rekor-url", "http://127.0.0.1:1"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("onnection refused")
            && text(&output).contains("--tlog-upload false"),
        "{}",
        text(&output)
    );

    // Logged in the mock Rekor: verifies with the log required, and names its index.
    let logged = push(&registry, "logged").await;
    let output = sign_with(&logged, "correct horse", &["--rekor-url", &services.url]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let index = json(&output)["outputs"]["log-index"]
        .as_str()
        .expect("index")
        .to_owned();
    assert!(index.parse::<u64>().is_ok(), "{index:?}");
    let output = verify_with(&logged, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(json(&output)["outputs"]["log-index"], index.as_str());
}

/// GitHub Actions' OIDC token endpoint, for one request: answers `{"value": token}` when asked
/// with the runner's bearer token for audience `sigstore`, 403 otherwise.
fn oidc_endpoint(token: String) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/_apis/token?api-version=2.0",
        listener.local_addr().expect("addr")
    );
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read");
            if line.trim().is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let lower = head.to_ascii_lowercase();
        let good = lower.contains("audience=sigstore")
            && lower.contains("authorization: bearer runner-request-token");
        let (status, body) = if good {
            ("200 OK", serde_json::json!({"value": token}).to_string())
        } else {
            ("403 Forbidden", "{}".to_owned())
        };
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        head
    });
    (url, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_an_action_sign_image_signs_with_the_job_s_oidc_identity_and_masks_it() {
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let image = push(&registry, "from-actions").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let output_file = dir.path().join("github_output");
    std::fs::write(&output_file, "").expect("output file");
    let (url, endpoint) = oidc_endpoint(services.token.clone());
    let output = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["sign-image", "--action"])
        .env("INPUT_IMAGE", image.to_string())
        .env("INPUT_SIGNING-CONFIG", &services.signing_config)
        .env("INPUT_INSECURE-REGISTRY", registry.host())
        .env("INPUT_IDENTITY-TOKEN", "")
        .env("INPUT_KEY", "")
        .env("INPUT_GITHUB-TOKEN", "")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", dir.path().join("summary"))
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", &url)
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-request-token")
        .env("DOCKER_CONFIG", dir.path())
        .output()
        .expect("run the action");
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    let head = endpoint.join().expect("endpoint");
    assert!(
        head.starts_with("GET /_apis/token?api-version=2.0&audience=sigstore "),
        "{head}"
    );
    assert!(
        said.contains(&format!("::add-mask::{}", services.token)),
        "the OIDC token is masked: {said}"
    );
    let outputs = gantry_actions::files::parse_outputs(
        &std::fs::read_to_string(&output_file).expect("outputs"),
    )
    .expect("well-formed outputs");
    let digest = outputs["digest"].clone();
    assert!(digest.starts_with("sha256:"), "{outputs:?}");

    // What the job signed verifies for the job's identity.
    let signed = image.with_digest(digest.parse().expect("digest"));
    let output = verify(&registry, &services, &[&signed], SIGNER_IDENTITY);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstore_python_s_signature_and_provenance_verify_as_referrers() {
    let Some(python) = require_python_module("sigstore", "pip install sigstore==4.5.1") else {
        return;
    };
    let Some(cli) = sigstore_js() else { return };
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    // sigstore-js's CLI pushes with credentials only: a registry that asks for them, and a
    // Docker config that gives them to gantry.
    let Some(registry) = Registry::start(Auth::Basic) else {
        return;
    };
    let (user, pass) = registry.credentials().expect("credentials");
    let config = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        config.path().join("config.json"),
        serde_json::json!({"auths": {registry.host(): {"username": user, "password": pass}}})
            .to_string(),
    )
    .expect("docker config");
    let client = Client::new(
        gantry_oci::ClientOptions {
            plain_http: vec![registry.host()],
            ..gantry_oci::ClientOptions::default()
        },
        gantry_oci::Credentials::anonymous()
            .with_docker_config(Some(config.path().to_owned()))
            .expect("credentials"),
    )
    .expect("client");
    let tag = push_with(&client, &registry, "orders").await;
    let manifest = client.manifest(&tag).await.expect("manifest");
    let image = tag.with_digest(manifest.digest.clone());
    // sigstore-python signs the manifest's bytes (its SHA-256 is the image digest) and attests
    // SLSA provenance for them; sigstore-js's CLI attaches both bundles as referrers.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("manifest.json");
    std::fs::write(&file, &manifest.bytes).expect("write");
    let predicate = dir.path().join("provenance.json");
    std::fs::write(
        &predicate,
        r#"{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://github.com/acme/billing"}}}"#,
    )
    .expect("write");
    let signature = dir.path().join("signature.json");
    let provenance = dir.path().join("provenance.sigstore.json");
    sigstore_python_sign(&python, &services, &file, None, &signature);
    sigstore_python_sign(
        &python,
        &services,
        &file,
        Some(("https://slsa.dev/provenance/v1", &predicate)),
        &provenance,
    );
    for bundle in [&signature, &provenance] {
        sigstore_attach(&cli, &registry, bundle, &image.to_string());
    }

    let (image_arg, host, root) = (
        image.to_string(),
        registry.host(),
        services.trusted_root.display().to_string(),
    );
    let verify = |identity: &str| {
        gantry_with(
            &[("DOCKER_CONFIG", config.path())],
            &[
                "verify-image",
                "--image",
                &image_arg,
                "--certificate-identity",
                identity,
                "--require-attestation",
                "slsaprovenance",
                "--trusted-root",
                &root,
                "--insecure-registry",
                &host,
                "--json",
            ],
        )
    };
    let output = verify(SIGNER_IDENTITY);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = json(&output);
    assert_eq!(report["outputs"]["identity"], SIGNER_IDENTITY, "{report}");
    assert!(
        report["summary"]
            .as_str()
            .is_some_and(|s| s.contains("✅ attestation https://slsa.dev/provenance/v1")),
        "{report}"
    );
    let output =
        verify("https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
}
