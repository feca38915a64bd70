//! skopeo, umoci and sigstore-js's CLI as independent peers: they build, push, inspect and attach,
//! so gantry's results are checked by someone else's code.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::component::{Service, node_dir, require, require_node, spawn_announced};
use crate::registry::Registry;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Runs `program` and returns its stdout; panics with its stderr when it fails.
pub fn run(program: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new(program).args(args).output().expect("run peer");
    assert!(
        output.status.success(),
        "{} {}: {}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// skopeo and umoci.
pub struct Peers {
    /// The skopeo binary.
    pub skopeo: PathBuf,
    /// The umoci binary.
    pub umoci: PathBuf,
}

impl Peers {
    /// Both, or `None` after a loud skip (a failure with `CI=true`).
    pub fn find() -> Option<Self> {
        Some(Self {
            skopeo: require("skopeo", "apt-get install skopeo")?,
            umoci: require("umoci", "apt-get install umoci")?,
        })
    }

    /// An OCI layout at `dir/layout` with images `amd` and `arm` built by umoci, and an index
    /// `multi` over both written into the layout by hand. Returns the layout's path.
    pub fn build_layout(&self, dir: &Path) -> PathBuf {
        let layout = dir.join("layout");
        let layout_s = layout.to_str().expect("utf8");
        run(&self.umoci, &["init", "--layout", layout_s]);
        for (tag, content) in [("amd", "built for amd64\n"), ("arm", "built for arm64\n")] {
            let image = format!("{layout_s}:{tag}");
            run(&self.umoci, &["new", "--image", &image]);
            let bundle = dir.join(format!("bundle-{tag}"));
            let bundle_s = bundle.to_str().expect("utf8");
            run(
                &self.umoci,
                &["unpack", "--rootless", "--image", &image, bundle_s],
            );
            std::fs::write(bundle.join("rootfs/hello.txt"), content).expect("write file");
            run(&self.umoci, &["repack", "--image", &image, bundle_s]);
        }
        let mut top: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
                .expect("json");
        let mut children = Vec::new();
        for entry in top["manifests"].as_array().expect("manifests") {
            let name = entry["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap_or_default();
            let arch = if name == "amd" { "amd64" } else { "arm64" };
            children.push(json!({"mediaType": entry["mediaType"], "digest": entry["digest"], "size": entry["size"], "platform": {"os": "linux", "architecture": arch}}));
        }
        let index = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}),
        )
        .expect("json");
        let hex = sha256_hex(&index);
        std::fs::write(layout.join("blobs/sha256").join(&hex), &index).expect("write index blob");
        top["manifests"]
            .as_array_mut()
            .expect("manifests")
            .push(json!({
                "mediaType": OCI_INDEX, "digest": format!("sha256:{hex}"), "size": index.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"}
            }));
        std::fs::write(
            layout.join("index.json"),
            serde_json::to_vec(&top).expect("json"),
        )
        .expect("write index.json");
        layout
    }

    /// `skopeo inspect --raw` of `path` (`repo:tag` or `repo@digest`) on `registry`.
    pub fn inspect_raw(&self, registry: &Registry, path: &str) -> Vec<u8> {
        let mut args = vec![
            "inspect".to_owned(),
            "--raw".to_owned(),
            "--tls-verify=false".to_owned(),
        ];
        if let Some((user, pass)) = registry.credentials() {
            args.push(format!("--creds={user}:{pass}"));
        }
        args.push(format!("docker://{}/{path}", registry.host()));
        run(
            &self.skopeo,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    /// `skopeo copy` of `source` (any transport) to `path` on `registry`.
    pub fn push(&self, registry: &Registry, source: &str, path: &str, extra: &[&str]) {
        let mut args = vec![
            "copy".to_owned(),
            "--quiet".to_owned(),
            "--dest-tls-verify=false".to_owned(),
        ];
        if let Some((user, pass)) = registry.credentials() {
            args.push(format!("--dest-creds={user}:{pass}"));
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.push(source.to_owned());
        args.push(format!("docker://{}/{path}", registry.host()));
        run(
            &self.skopeo,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// A real Sigstore bundle (v0.3, DSSE with an in-toto statement) from the sigstore-conformance
/// cases vendored in gantry-sigstore (see their NOTICE), for peers that attach bundles.
pub fn conformance_bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gantry-sigstore/conformance/bundle-verify/happy-path-intoto-in-dsse-v3/bundle.sigstore.json")
}

/// sigstore-js's CLI (`@sigstore/cli`), or `None` after a loud skip (a failure with `CI=true`).
pub fn sigstore_js() -> Option<PathBuf> {
    require_node("node_modules/.bin/sigstore", "sigstore-js's CLI")
}

/// `sigstore attach --attestation <bundle> <image>` (sigstore-js): pushes the bundle as a
/// referrer of `image` (`host/repo@digest`), with the fallback index where there is no
/// referrers API.
pub fn sigstore_attach(cli: &Path, registry: &Registry, bundle: &Path, image: &str) {
    let mut args = vec![
        "attach".to_owned(),
        "--attestation".to_owned(),
        bundle.display().to_string(),
    ];
    if let Some((user, pass)) = registry.credentials() {
        args.extend([
            "-u".to_owned(),
            user.to_owned(),
            "-p".to_owned(),
            pass.to_owned(),
        ]);
    }
    args.push(image.to_owned());
    let home = tempfile::tempdir().expect("tempdir");
    let output = Command::new(cli)
        .args(&args)
        .env("HOME", home.path())
        .output()
        .expect("run sigstore attach");
    assert!(
        output.status.success(),
        "sigstore attach {image}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What sigstore-js signs.
#[derive(Debug, Clone)]
pub enum SignWhat {
    /// A DSSE in-toto statement with this subject digest (`sha256:<hex>`), as cosign v3 signs an
    /// image.
    Digest(String),
    /// A message signature over this file.
    Blob(PathBuf),
}

/// A bundle sigstore-js produced against the mock Sigstore services, and the trusted root that
/// verifies it (fresh keys every time).
pub struct Signed {
    /// The bundle file.
    pub bundle: PathBuf,
    /// The trusted root that verifies it.
    pub trusted_root: PathBuf,
    _dir: tempfile::TempDir,
}

/// The identity sigstore-js signs as unless told otherwise.
pub const SIGNER_IDENTITY: &str =
    "https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main";
/// GitHub Actions' OIDC issuer.
pub const SIGNER_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Signs with sigstore-js against @sigstore/mock's Fulcio and Rekor (`sigstore-sign.mjs`), as
/// `identity`, with extra token `claims` (JSON object); `None` after a loud skip when the node
/// packages are missing (a failure with `CI=true`).
pub fn sigstore_js_sign(what: &SignWhat, identity: &str, claims: &str) -> Option<Signed> {
    require_node(
        "node_modules/@sigstore/mock",
        "sigstore-js and @sigstore/mock",
    )?;
    let node = require("node", "apt-get install nodejs")?;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(node);
    command
        .current_dir(node_dir())
        .arg("sigstore-sign.mjs")
        .arg("--out")
        .arg(dir.path())
        .args(["--identity", identity, "--claims", claims]);
    match what {
        SignWhat::Digest(digest) => command.args(["--digest", digest]),
        SignWhat::Blob(path) => command.arg("--blob").arg(path),
    };
    let output = command.output().expect("run node");
    assert!(
        output.status.success(),
        "sigstore-sign.mjs: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(Signed {
        bundle: dir.path().join("bundle.json"),
        trusted_root: dir.path().join("trusted_root.json"),
        _dir: dir,
    })
}

/// @sigstore/mock's Fulcio, Rekor and TSA kept running (`sigstore-services.mjs`) for gantry to
/// sign against: their URL, a signing config v0.2 naming them, the trusted root that verifies
/// what they issue, and an identity token. Stopped on drop.
pub struct MockSigstore {
    /// The services' base URL (Fulcio, Rekor and the TSA share it).
    pub url: String,
    /// The trusted root that verifies what they issue.
    pub trusted_root: PathBuf,
    /// A signing config v0.2 naming them.
    pub signing_config: PathBuf,
    /// Both in a client trust config, the form sigstore-python takes (`--trust-config`).
    pub trust_config: PathBuf,
    /// An identity token (unsigned JWT) the mock Fulcio accepts.
    pub token: String,
    service: Service,
    _dir: tempfile::TempDir,
}

impl MockSigstore {
    /// Starts the services for `identity` with extra token `claims` (JSON object); `None` after a
    /// loud skip when the node packages are missing (a failure with `CI=true`).
    pub fn start(identity: &str, claims: &str) -> Option<Self> {
        require_node(
            "node_modules/@sigstore/mock",
            "sigstore-js and @sigstore/mock",
        )?;
        let node = require("node", "apt-get install nodejs")?;
        // Seen once in many runs: node stalls before listening, idle, with nothing on stderr.
        // A stalled start is retried; three in a row fail the test with what node said.
        let mut said = Vec::new();
        for _ in 0..3 {
            match Self::try_start(&node, identity, claims) {
                Ok(started) => return Some(started),
                Err(log) => said.push(log),
            }
        }
        panic!(
            "sigstore-services.mjs did not start in three attempts:\n{}",
            said.join("\n---\n")
        );
    }

    fn try_start(node: &Path, identity: &str, claims: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = Command::new(node);
        command
            .current_dir(node_dir())
            .arg("sigstore-services.mjs")
            .arg("--out")
            .arg(dir.path())
            .args(["--identity", identity, "--claims", claims]);
        let (service, line) = spawn_announced(command, &dir.path().join("services.log"))?;
        let read = |name: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).expect("read"))
                .expect("json")
        };
        let trust_config = dir.path().join("trust_config.json");
        let config = json!({
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": read("trusted_root.json"),
            "signingConfig": read("signing_config.json"),
        });
        std::fs::write(&trust_config, config.to_string()).expect("write");
        Ok(Self {
            url: line,
            trusted_root: dir.path().join("trusted_root.json"),
            signing_config: dir.path().join("signing_config.json"),
            trust_config,
            token: std::fs::read_to_string(dir.path().join("token")).expect("token"),
            service,
            _dir: dir,
        })
    }
}

impl MockSigstore {
    /// Stops the services and keeps their files (trusted root, signing config): what was signed
    /// must now verify without them.
    pub fn stop(&mut self) {
        self.service.stop();
    }
}

/// sigstore-python (`python -m sigstore`, with `python` from
/// [`require_python_module`](crate::component::require_python_module)) signing `file` against
/// the mock services: a message signature, or with `predicate` (its type and file) a DSSE
/// attestation whose subject is the file's SHA-256. Writes the bundle to `bundle`.
pub fn sigstore_python_sign(
    python: &Path,
    services: &MockSigstore,
    file: &Path,
    predicate: Option<(&str, &Path)>,
    bundle: &Path,
) {
    let mut command = Command::new(python);
    command
        .args(["-m", "sigstore", "--trust-config"])
        .arg(&services.trust_config);
    match predicate {
        Some((kind, path)) => command
            .args(["attest", "--predicate-type", kind, "--predicate"])
            .arg(path),
        None => command.arg("sign"),
    };
    let output = command
        .args(["--identity-token", &services.token, "--bundle"])
        .arg(bundle)
        .arg(file)
        .output()
        .expect("run sigstore-python");
    assert!(
        output.status.success(),
        "sigstore-python: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Verifies `bundle` with sigstore-js (`sigstore-verify.mjs`, @sigstore/verify offline against
/// `trusted_root`) for `identity` from `issuer` over the image `digest`; the process's output,
/// or `None` after a loud skip when the node packages are missing (a failure with `CI=true`).
pub fn sigstore_js_verify(
    bundle: &Path,
    trusted_root: &Path,
    identity: &str,
    issuer: &str,
    digest: &str,
) -> Option<std::process::Output> {
    require_node("node_modules/@sigstore/verify", "@sigstore/verify")?;
    let node = require("node", "apt-get install nodejs")?;
    Some(
        Command::new(node)
            .current_dir(node_dir())
            .arg("sigstore-verify.mjs")
            .arg("--bundle")
            .arg(bundle)
            .arg("--trusted-root")
            .arg(trusted_root)
            .args([
                "--identity",
                identity,
                "--issuer",
                issuer,
                "--digest",
                digest,
            ])
            .output()
            .expect("run node"),
    )
}

/// A key pair in cosign's format written by `cosign-key.mjs` (node's crypto and tweetnacl, not
/// gantry's code): `(cosign.key encrypted under password, cosign.pub)` in `dir`, or `None` after a
/// loud skip when the node packages are missing (a failure with `CI=true`).
pub fn cosign_key_pair(dir: &Path, password: &str) -> Option<(PathBuf, PathBuf)> {
    require_node("node_modules/tweetnacl", "tweetnacl")?;
    let node = require("node", "apt-get install nodejs")?;
    let output = Command::new(node)
        .current_dir(node_dir())
        .arg("cosign-key.mjs")
        .arg("--out")
        .arg(dir)
        .args(["--password", password])
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "cosign-key.mjs: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some((dir.join("cosign.key"), dir.join("cosign.pub")))
}

/// Checks `sbom` against the official CycloneDX 1.6 JSON schema, strict (cyclonedx-python-lib);
/// `false` after a loud skip when the validator is missing outside CI. Panics with the
/// validator's message when the SBOM does not validate.
pub fn validate_cyclonedx(sbom: &[u8]) -> bool {
    let Some(python) = crate::component::require_python_module(
        "cyclonedx.validation.json",
        "pip install 'cyclonedx-python-lib[json-validation]==11.12.0'",
    ) else {
        return false;
    };
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), sbom).expect("writing the sbom");
    let output = Command::new(python)
        .args([
            "-c",
            "import sys\nfrom cyclonedx.schema import SchemaVersion\nfrom cyclonedx.validation.json import JsonStrictValidator\nerror = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nif error:\n    print(error)\n    sys.exit(1)\n",
        ])
        .arg(file.path())
        .output()
        .expect("running the validator");
    assert!(
        output.status.success(),
        "the SBOM does not validate against CycloneDX 1.6 (strict): {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    true
}
