//! verify-image, the real binary, against the real registry: signatures by a key, and the
//! vulnerability gate over Trivy and Grype reports with an ignore file and OpenVEX statements.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use bytes::Bytes;
use gantry_oci::manifest::OCI_LAYER_TAR;
use gantry_oci::{Client, Reference};
use gantry_sigstore::sign::{
    COSIGN_SIGN_PREDICATE, Identity, SigningKey, attach, image_statement, sign_statement,
};
use gantry_testkit::{Auth, Registry};

struct Env {
    registry: Registry,
    client: Client,
    key: PathBuf,
    dir: tempfile::TempDir,
    public: PathBuf,
    image: Reference,
    digest: String,
}

/// Pushes a one-layer image for `arch` as `acme/<name>` and returns it pinned to its digest.
async fn push(client: &Client, host: &str, name: &str, arch: &str) -> Reference {
    let tag: Reference = format!("{host}/acme/{name}").parse().expect("reference");
    let config = format!("{{\"architecture\":\"{arch}\",\"os\":\"linux\"}}");
    let manifest = client
        .push_image(
            &tag,
            &Bytes::from(config),
            &[(OCI_LAYER_TAR, &Bytes::from(format!("{name} {arch}")))],
        )
        .await
        .expect("push");
    tag.with_digest(manifest.digest)
}

/// A registry with one image signed offline by a fresh key.
async fn setup() -> Option<Env> {
    let registry = Registry::start(Auth::Anonymous)?;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::plain_http(&registry.host()).expect("client");
    let image = push(&client, &registry.host(), "billing:dev", "amd64").await;
    let key_path = dir.path().join("key.pem");
    std::fs::write(&key_path, SigningKey::generate_pem().expect("key").expose()).expect("write");
    let public = dir.path().join("key.pub");
    let key = SigningKey::from_file(&key_path, None).expect("key");
    std::fs::write(&public, key.public_pem().expect("pem")).expect("write");
    let env = Env {
        registry,
        client,
        key: key_path,
        dir,
        public,
        digest: image.digest().expect("digest").to_string(),
        image,
    };
    env.sign(&env.image).await;
    Some(env)
}

impl Env {
    /// The key, signing offline.
    fn identity(&self) -> Identity {
        Identity::Key {
            key: Box::new(SigningKey::from_file(&self.key, None).expect("key")),
            rekor: None,
        }
    }

    /// Signs `statement` with the key and attaches it to `image` as a referrer.
    async fn attach_signed(&self, image: &Reference, statement: &[u8], predicate_type: &str) {
        self.attach_signed_by(&self.identity(), image, statement, predicate_type)
            .await;
    }

    /// Signs `statement` as `identity` and attaches it to `image` as a referrer.
    async fn attach_signed_by(
        &self,
        identity: &Identity,
        image: &Reference,
        statement: &[u8],
        predicate_type: &str,
    ) {
        let bundle = sign_statement(identity, &reqwest::Client::new(), statement)
            .await
            .expect("sign");
        attach(&self.client, image, &bundle, predicate_type)
            .await
            .expect("attach");
    }

    /// Signs `image` (cosign v3 signature) with the key, offline.
    async fn sign(&self, image: &Reference) {
        let digest = image.digest().expect("digest");
        let statement = image_statement(&image.name(), digest, &BTreeMap::new());
        self.attach_signed(image, &statement, COSIGN_SIGN_PREDICATE)
            .await;
    }

    /// Signs an in-toto statement of `predicate_type` for `image` with the key and attaches it.
    async fn attest(&self, image: &Reference, predicate_type: &str) {
        let digest = image.digest().expect("digest");
        let statement = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": image.name(), "digest": {"sha256": digest.hex()}}],
            "predicateType": predicate_type,
            "predicate": {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []},
        });
        self.attach_signed(image, statement.to_string().as_bytes(), predicate_type)
            .await;
    }

    /// cosign's vulnerability attestation for `image`, as `trivy --format cosign-vuln` writes it
    /// around the Trivy `report`, for a scan that finished `hours_ago`.
    fn vuln_statement(image: &Reference, report: &Path, hours_ago: i64) -> Vec<u8> {
        let result: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(report).expect("report")).expect("json");
        let finished = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours_ago);
        let started = finished - jiff::SignedDuration::from_secs(40);
        serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": image.name(), "digest": {"sha256": image.digest().expect("digest").hex()}}],
            "predicateType": VULN,
            "predicate": {
                "invocation": {"parameters": null, "uri": "", "event_id": "", "builder.id": ""},
                "scanner": {
                    "uri": "pkg:github/aquasecurity/trivy@v0.58.1",
                    "version": "0.58.1",
                    "db": {"uri": "", "version": ""},
                    "result": result,
                },
                "metadata": {"scanStartedOn": started.to_string(), "scanFinishedOn": finished.to_string()},
            },
        })
        .to_string()
        .into_bytes()
    }

    /// A fixture with `DIGEST` replaced by `digest`, written beside the key.
    fn fixture(&self, name: &str, digest: &str) -> PathBuf {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .expect("fixture")
        .replace("DIGEST", digest);
        let path = self.dir.path().join(format!("{}-{name}", &digest[7..15]));
        std::fs::write(&path, text).expect("write");
        path
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn verify(&self, extra: &[&Path], flags: &[&str]) -> (Output, serde_json::Value) {
        self.verify_image(&self.image, extra, flags)
    }

    /// verify-image for `image` with the key (log waived); `flags` that take a path take the
    /// next of `extra`.
    fn verify_image(
        &self,
        image: &Reference,
        extra: &[&Path],
        flags: &[&str],
    ) -> (Output, serde_json::Value) {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_verify-image"));
        command
            .args(["--image", &image.to_string(), "--key"])
            .arg(&self.public)
            .args([
                "--insecure-ignore-tlog",
                "--insecure-registry",
                &self.registry.host(),
                "--json",
            ]);
        let mut paths = extra.iter();
        for flag in flags {
            command.arg(flag);
            if matches!(*flag, "--vuln-report" | "--vex" | "--ignore-file") {
                command.arg(paths.next().expect("a path for each path flag"));
            }
        }
        let output = command.output().expect("verify-image");
        let json = gantry_testkit::stdout_json(&output);
        (output, json)
    }
}

#[track_caller]
fn contains(json: &serde_json::Value, key: &str, expected: &str) {
    let text = json[key].as_str().unwrap_or_default();
    assert!(
        text.contains(expected),
        "expected {key} to contain {expected:?}: {json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_fails_on_critical_and_high_and_lists_every_finding() {
    let Some(env) = setup().await else { return };
    let trivy = env.fixture("trivy.json", &env.digest);
    let (output, json) = env.verify(&[&trivy], &["--vuln-report"]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(
        &json,
        "failure",
        &format!("3 finding(s) at CRITICAL,HIGH in {}", env.digest),
    );
    for finding in [
        "CVE-2024-0001 (CRITICAL, openssl 3.0.11-1, fixed in 3.0.13-1)",
        "CVE-2024-0002 (HIGH, zlib1g 1:1.2.13, no fix)",
        "CVE-2024-0003 (HIGH, libc6 2.36-9, fixed in 2.36-10)",
    ] {
        contains(&json, "failure", finding);
    }
    let outputs = &json["outputs"];
    assert_eq!(
        [
            &outputs["critical"],
            &outputs["high"],
            &outputs["medium"],
            &outputs["low"]
        ],
        ["1", "2", "1", "1"],
        "{json}"
    );
    assert_eq!(outputs["verified"], "false");
    assert_eq!(
        outputs["signature-format"], "bundle",
        "the signature itself verified"
    );

    // Only CRITICAL fails: the HIGH findings are counted, not blocking.
    let (output, json) = env.verify(&[&trivy], &["--vuln-report", "--severity", "critical"]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(&json, "failure", "1 finding(s) at CRITICAL in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vex_and_an_ignore_file_set_findings_aside_until_they_expire() {
    let Some(env) = setup().await else { return };
    let trivy = env.fixture("trivy.json", &env.digest);
    let vex = env.fixture("openvex.json", &env.digest);
    // CVE-2024-0002: not_affected for this image. CVE-2024-0003: its VEX is for another product,
    // but the ignore file covers it until 2999. CVE-2024-0001: under investigation, and its
    // ignore entry expired.
    let ignore = env.write(
        "trivyignore",
        "# accepted risks\nCVE-2024-0003 exp:2999-12-31\nCVE-2024-0001 exp:2000-01-01  # lapsed\n",
    );
    let (output, json) = env.verify(
        &[&trivy, &vex, &ignore],
        &["--vuln-report", "--vex", "--ignore-file"],
    );
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(&json, "failure", "1 finding(s) at CRITICAL,HIGH");
    contains(&json, "failure", "CVE-2024-0001");
    contains(
        &json,
        "summary",
        "CVE-2024-0002: OpenVEX not_affected (vulnerable_code_not_in_execute_path)",
    );
    contains(
        &json,
        "summary",
        "CVE-2024-0003: ignore file line 2, until 2999-12-31",
    );
    contains(
        &json,
        "summary",
        "CVE-2024-0001 (expired 2000-01-01, line 3)",
    );
    assert_eq!(json["outputs"]["high"], "0", "{json}");

    let ignore_all = env.write("trivyignore-all", "CVE-2024-0001\nCVE-2024-0003\n");
    let (output, json) = env.verify(
        &[&trivy, &vex, &ignore_all],
        &["--vuln-report", "--vex", "--ignore-file"],
    );
    assert_eq!(output.status.code(), Some(0), "{json}");
    assert_eq!(json["outputs"]["verified"], "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grype_reports_and_unfixed_findings() {
    let Some(env) = setup().await else { return };
    let grype = env.fixture("grype.json", &env.digest);
    let ignore = env.write("ignore", "CVE-2024-0001\n");
    let (output, json) = env.verify(&[&grype, &ignore], &["--vuln-report", "--ignore-file"]);
    assert_eq!(output.status.code(), Some(0), "{json}");
    let outputs = &json["outputs"];
    assert_eq!(
        [
            &outputs["critical"],
            &outputs["medium"],
            &outputs["low"],
            &outputs["negligible"]
        ],
        ["0", "1", "0", "1"],
        "Grype's Negligible is counted as NEGLIGIBLE, below LOW: {json}"
    );
    let (output, json) = env.verify(
        &[&grype, &ignore],
        &["--vuln-report", "--ignore-file", "--ignore-unfixed"],
    );
    assert_eq!(output.status.code(), Some(0), "{json}");
    assert_eq!(
        [&json["outputs"]["medium"], &json["outputs"]["low"]],
        ["0", "0"],
        "{json}"
    );
    contains(
        &json,
        "summary",
        "CVE-2024-0005: no fix yet (ignore-unfixed)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_for_another_image_or_gate_options_without_a_report_are_refused() {
    let Some(env) = setup().await else { return };
    let zeros = format!("sha256:{}", "0".repeat(64));
    let other = env.fixture("trivy.json", &zeros);
    let (output, json) = env.verify(&[&other], &["--vuln-report"]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(
        &json,
        "failure",
        &format!(
            "is for {zeros}, not for any image verified ({})",
            env.digest
        ),
    );
    contains(
        &json,
        "failure",
        &format!("no vulnerability report is for {}", env.digest),
    );

    let ignore = env.write("ignore", "CVE-2024-0001\n");
    let (output, json) = env.verify(&[&ignore], &["--ignore-file"]);
    assert_eq!(output.status.code(), Some(2), "{json}");
    contains(
        &json,
        "error",
        "give what to gate on with --vuln-report or --vuln-attestation",
    );

    let bad = env.write("bad-ignore", "CVE-2024-0001 until:tomorrow\n");
    let trivy = env.fixture("trivy.json", &env.digest);
    let (output, json) = env.verify(&[&trivy, &bad], &["--vuln-report", "--ignore-file"]);
    assert_eq!(output.status.code(), Some(2), "{json}");
    contains(
        &json,
        "error",
        "bad-ignore:1: unexpected \"until:tomorrow\"",
    );
}

const VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_vulnerability_attestation_feeds_the_gate_and_the_newest_scan_counts() {
    let Some(env) = setup().await else { return };
    let (output, json) = env.verify(&[], &["--vuln-attestation"]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(
        &json,
        "failure",
        &format!("no attestation of type {VULN} for"),
    );

    // Three days ago, a scan with findings.
    let trivy = env.fixture("trivy.json", &env.digest);
    let old = Env::vuln_statement(&env.image, &trivy, 72);
    env.attach_signed(&env.image, &old, VULN).await;
    let (output, json) = env.verify(&[], &["--vuln-attestation"]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(
        &json,
        "failure",
        &format!("3 finding(s) at CRITICAL,HIGH in {}", env.digest),
    );
    contains(&json, "summary", &format!("✅ attestation {VULN}"));
    let outputs = &json["outputs"];
    assert_eq!(
        [&outputs["critical"], &outputs["high"], &outputs["medium"]],
        ["1", "2", "1"],
        "{json}"
    );
    let (output, json) = env.verify(&[], &["--vuln-attestation", "--vuln-max-age", "1d"]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(&json, "failure", "3d old; the most allowed is 1d");

    // An hour ago, a clean scan: the newest counts, and it is fresh.
    let clean = env.write(
        "clean.json",
        &format!(
            r#"{{"SchemaVersion": 2, "Metadata": {{"RepoDigests": ["r/acme/billing@{}"]}}}}"#,
            env.digest
        ),
    );
    let new = Env::vuln_statement(&env.image, &clean, 1);
    env.attach_signed(&env.image, &new, VULN).await;
    let (output, json) = env.verify(&[], &["--vuln-attestation", "--vuln-max-age", "1d"]);
    assert_eq!(output.status.code(), Some(0), "{json}");
    assert_eq!(json["outputs"]["critical"], "0", "{json}");

    // A newer scan signed by someone else does not count, findings or not.
    let stranger = Identity::Key {
        key: Box::new(
            SigningKey::from_pem(
                "the stranger's key",
                SigningKey::generate_pem().expect("key").expose(),
                None,
            )
            .expect("key"),
        ),
        rekor: None,
    };
    let forged = Env::vuln_statement(&env.image, &trivy, 0);
    env.attach_signed_by(&stranger, &env.image, &forged, VULN)
        .await;
    let (output, json) = env.verify(&[], &["--vuln-attestation"]);
    assert_eq!(output.status.code(), Some(0), "{json}");

    // An image whose only vulnerability attestation is the stranger's has none.
    let other = push(&env.client, &env.registry.host(), "ledger:dev", "amd64").await;
    env.sign(&other).await;
    env.attach_signed_by(
        &stranger,
        &other,
        &Env::vuln_statement(&other, &clean, 0),
        VULN,
    )
    .await;
    let (output, json) = env.verify_image(&other, &[], &["--vuln-attestation"]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(&json, "failure", &format!("(attestations of type {VULN})"));
    contains(&json, "failure", "no vulnerability report is for");

    // A scan age that is not one.
    let (output, json) = env.verify(&[], &["--vuln-attestation", "--vuln-max-age", "soon"]);
    assert_eq!(output.status.code(), Some(2), "{json}");
    contains(&json, "error", "--vuln-max-age \"soon\" is not a number");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_file_without_a_scan_time_fails_a_max_age() {
    let Some(env) = setup().await else { return };
    let trivy = env.fixture("trivy.json", &env.digest);
    let (output, json) = env.verify(&[&trivy], &["--vuln-report", "--vuln-max-age", "30d"]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(&json, "failure", "does not say when the scan ran");
    let dated = env.write(
        "dated.json",
        &std::fs::read_to_string(&trivy).expect("report").replacen(
            "\"SchemaVersion\": 2,",
            &format!(
                "\"SchemaVersion\": 2, \"CreatedAt\": \"{}\",",
                jiff::Timestamp::now()
            ),
            1,
        ),
    );
    let (output, json) = env.verify(
        &[&dated],
        &[
            "--vuln-report",
            "--vuln-max-age",
            "30d",
            "--severity",
            "LOW",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(&json, "failure", "1 finding(s) at LOW");
    let said = json["failure"].as_str().unwrap_or_default();
    assert!(
        !said.contains("scan"),
        "a fresh report is not stale: {said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_attestations_are_found_by_predicate_type_and_are_not_signatures() {
    let Some(env) = setup().await else { return };
    env.attest(&env.image, "https://cyclonedx.org/bom").await;
    let (output, json) = env.verify(&[], &["--require-attestation", "cyclonedx"]);
    assert_eq!(output.status.code(), Some(0), "{json}");
    contains(&json, "summary", "✅ attestation https://cyclonedx.org/bom");

    let (output, json) = env.verify(&[], &["--require-attestation", "slsaprovenance"]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(
        &json,
        "failure",
        "no attestation of type https://slsa.dev/provenance/v1 for",
    );
    contains(&json, "failure", "(found types: https://cyclonedx.org/bom;");

    // An image that carries only an attestation is not signed.
    let attested_only = push(&env.client, &env.registry.host(), "ledger:dev", "amd64").await;
    env.attest(&attested_only, "https://cyclonedx.org/bom")
        .await;
    let (output, json) = env.verify_image(&attested_only, &[], &[]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(&json, "failure", "no signatures found for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestations_alone_verify_when_only_attestations_are_asked_for() {
    let Some(env) = setup().await else { return };
    // an image that carries an SBOM attestation and no signature, as sbom-attach leaves it
    let attested_only = push(&env.client, &env.registry.host(), "ledger:dev", "amd64").await;
    env.attest(&attested_only, "https://cyclonedx.org/bom")
        .await;
    let flags = [
        "--require-attestation",
        "cyclonedx",
        "--require-signature",
        "false",
    ];
    let (output, json) = env.verify_image(&attested_only, &[], &flags);
    assert_eq!(output.status.code(), Some(0), "{json}");
    contains(&json, "summary", "✅ attestation https://cyclonedx.org/bom");
    assert_eq!(
        json["outputs"]["digest"],
        attested_only.digest().expect("digest").to_string()
    );
    assert_eq!(json["outputs"]["signature-format"], "attestation");
    // the attestation is still checked: another type is missing, and fails
    let (output, json) = env.verify_image(
        &attested_only,
        &[],
        &[
            "--require-attestation",
            "slsaprovenance",
            "--require-signature",
            "false",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{json}");
    contains(
        &json,
        "failure",
        "no attestation of type https://slsa.dev/provenance/v1",
    );
    // by someone else's key: refused
    let stranger = SigningKey::generate_pem().expect("key");
    let stranger_path = env.write("stranger.pem", stranger.expose());
    let identity = Identity::Key {
        key: Box::new(SigningKey::from_file(&stranger_path, None).expect("key")),
        rekor: None,
    };
    let other = push(&env.client, &env.registry.host(), "other:dev", "amd64").await;
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": other.name(), "digest": {"sha256": other.digest().expect("digest").hex()}}],
        "predicateType": "https://cyclonedx.org/bom",
        "predicate": {"bomFormat": "CycloneDX", "specVersion": "1.6"},
    });
    env.attach_signed_by(
        &identity,
        &other,
        statement.to_string().as_bytes(),
        "https://cyclonedx.org/bom",
    )
    .await;
    let (output, json) = env.verify_image(&other, &[], &flags);
    assert_eq!(output.status.code(), Some(1), "{json}");
    // nothing to verify at all is a usage error
    let (output, json) = env.verify_image(&attested_only, &[], &["--require-signature", "false"]);
    assert_eq!(output.status.code(), Some(2), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_verification_requires_every_platform_signed() {
    let Some(env) = setup().await else { return };
    let mut platforms = Vec::new();
    for arch in ["amd64", "arm64"] {
        let image = push(
            &env.client,
            &env.registry.host(),
            &format!("multi:{arch}"),
            arch,
        )
        .await;
        let manifest = env.client.manifest(&image).await.expect("manifest");
        platforms.push((arch, manifest));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": platforms.iter().map(|(arch, m)| serde_json::json!({
            "mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len(),
            "platform": {"architecture": arch, "os": "linux"},
        })).collect::<Vec<_>>(),
    });
    let index = gantry_oci::Manifest::from_json(&index, "application/vnd.oci.image.index.v1+json");
    let tag: Reference = format!("{}/acme/multi:dev", env.registry.host())
        .parse()
        .expect("ref");
    env.client.put_manifest(&tag, &index).await.expect("index");
    let pinned = tag.with_digest(index.digest.clone());
    env.sign(&pinned).await;

    let run = |recursive: bool| {
        let flags: &[&str] = if recursive { &["--recursive"] } else { &[] };
        let (output, json) = env.verify_image(&tag, &[], flags);
        (output.status.code(), json)
    };
    let (code, json) = run(false);
    assert_eq!(code, Some(0), "the index alone is signed: {json}");
    assert_eq!(json["outputs"]["digest"], index.digest.as_str());
    let (code, json) = run(true);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["outputs"]["failed"], "2", "{json}");
    for (_, manifest) in &platforms {
        contains(
            &json,
            "failure",
            &format!(
                "no signatures found for {}",
                tag.with_digest(manifest.digest.clone())
            ),
        );
    }

    for (_, manifest) in &platforms {
        env.sign(&tag.with_digest(manifest.digest.clone())).await;
    }
    let (code, json) = run(true);
    assert_eq!(code, Some(0), "{json}");
    let digests = json["outputs"]["digest"].as_str().unwrap_or_default();
    assert_eq!(digests.lines().count(), 3, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_att_attestations_count_when_their_signed_statement_matches() {
    let Some(env) = setup().await else { return };
    let digest = env.image.digest().expect("digest");
    let statement = |hex: &str| {
        serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": env.image.name(), "digest": {"sha256": hex}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {"buildType": "https://example.com/build/v1"}},
        })
        .to_string()
    };
    let identity = env.identity();
    // A legacy attestation for another digest first: refused for what it names.
    for hex in ["0".repeat(64), digest.hex().to_owned()] {
        let bundle = sign_statement(
            &identity,
            &reqwest::Client::new(),
            statement(&hex).as_bytes(),
        )
        .await
        .expect("sign");
        let annotations = gantry_sigstore::legacy::annotations(&bundle).expect("annotations");
        let sigstore_verify::types::SignatureContent::DsseEnvelope(envelope) = &bundle.content
        else {
            unreachable!("an attestation is DSSE")
        };
        let envelope = serde_json::to_vec(envelope).expect("envelope");
        gantry_sigstore::legacy::attach_attestation(
            &env.client,
            &env.image,
            &envelope,
            &annotations,
        )
        .await
        .expect("attach");
        let (output, json) = env.verify(&[], &["--require-attestation", "slsaprovenance"]);
        if hex == digest.hex() {
            assert_eq!(output.status.code(), Some(0), "{json}");
            contains(
                &json,
                "summary",
                "✅ attestation https://slsa.dev/provenance/v1",
            );
        } else {
            assert_eq!(output.status.code(), Some(1), "{json}");
            contains(
                &json,
                "failure",
                "(legacy-att): the signature is for sha256:0000",
            );
        }
    }
}
