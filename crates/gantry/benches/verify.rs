//! `cargo xtask bench verify`: gantry verifying signed images, and gantry's bundle verification
//! against sigstore-python's, in one run.
//!
//! 50 images on the embedded registry, each signed keyless by gantry against the mock
//! Fulcio/Rekor (the testkit's `MockSigstore`). Timed by criterion (process wall time):
//! - `images/gantry verify-image`: one `gantry verify-image` process over the 50 images;
//! - `bundle/gantry` and `bundle/sigstore-python`: one bundle verified offline against the same
//!   trusted root by `gantry verify-bundle` and by `python -m sigstore verify identity --offline`.
//!
//! Requests per image are counted in-process by gantry-oci's client over the same 50 images.
//! Everything goes to `<target>/criterion/verify-report.json` for `cargo xtask bench verify`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use gantry_oci::manifest::OCI_LAYER_TAR;
use gantry_oci::{Client, Reference};
use gantry_sigstore::sign::{
    COSIGN_SIGN_PREDICATE, Identity, Services, attach, image_statement, sign_statement,
};
use gantry_sigstore::{Matcher, RootSource, Signer};
use gantry_testkit::component::require_python_module;
use gantry_testkit::peers::{MockSigstore, SIGNER_IDENTITY, SIGNER_ISSUER};

const IMAGES: usize = 50;

struct Bench {
    host: String,
    images: Vec<Reference>,
    services: MockSigstore,
    bundle: PathBuf,
    digest: String,
    python: PathBuf,
    requests_per_image: f64,
    _registry: gantry_registry::Running,
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

fn client(host: &str) -> Client {
    Client::plain_http(host).expect("client")
}

impl Bench {
    fn start() -> Option<Self> {
        let python = require_python_module("sigstore", "pip install sigstore==4.5.1")?;
        let services = MockSigstore::start(SIGNER_IDENTITY, "{}")?;
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = runtime
            .block_on(gantry_registry::start(gantry_registry::Config::default()))
            .expect("embedded registry");
        let host = registry.host();
        let identity = Identity::Keyless {
            token: gantry_secret::Secret::new(services.token.clone()),
            services: Services::from_signing_config(&services.signing_config).expect("config"),
        };
        let (images, first_bundle) = runtime.block_on(async {
            let client = client(&host);
            let http = reqwest::Client::new();
            let mut images = Vec::new();
            let mut first = None;
            for n in 0..IMAGES {
                let tag: Reference = format!("{host}/bench/app-{n}:dev").parse().expect("ref");
                let layer = Bytes::from(format!("image {n}"));
                let manifest = client
                    .push_image(
                        &tag,
                        &Bytes::from_static(b"{\"architecture\":\"amd64\",\"os\":\"linux\"}"),
                        &[(OCI_LAYER_TAR, &layer)],
                    )
                    .await
                    .expect("push");
                let image = tag.with_digest(manifest.digest.clone());
                let statement = image_statement(&image.name(), &manifest.digest, &BTreeMap::new());
                let bundle = sign_statement(&identity, &http, &statement)
                    .await
                    .expect("sign");
                attach(&client, &image, &bundle, COSIGN_SIGN_PREDICATE)
                    .await
                    .expect("attach");
                first.get_or_insert_with(|| bundle.to_json().expect("json"));
                images.push(image);
            }
            (images, first.expect("one image"))
        });
        let bundle = dir.path().join("bundle.json");
        std::fs::write(&bundle, first_bundle).expect("write");
        let digest = images[0].digest().expect("digest").to_string();
        let mut bench = Self {
            host,
            images,
            services,
            bundle,
            digest,
            python,
            requests_per_image: 0.0,
            _registry: registry,
            _dir: dir,
            runtime,
        };
        bench.requests_per_image = bench.count_requests();
        Some(bench)
    }

    /// Requests gantry-oci's client makes per image, verifying all of them in-process.
    fn count_requests(&self) -> f64 {
        let root =
            gantry_sigstore::trusted_root(&RootSource::File(self.services.trusted_root.clone()))
                .expect("root");
        let signer = Signer::Identity {
            identity: Matcher::exact(SIGNER_IDENTITY),
            issuer: Matcher::exact(SIGNER_ISSUER),
            claims: Box::default(),
        };
        self.runtime.block_on(async {
            let client = client(&self.host);
            for image in &self.images {
                gantry_sigstore::oci::verify_image(&client, image, &signer, &root)
                    .await
                    .expect("verified");
            }
            #[expect(clippy::cast_precision_loss, reason = "small counts")]
            let per_image = client.counts().requests as f64 / IMAGES as f64;
            per_image
        })
    }

    fn verify_images(&self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
        command.arg("verify-image");
        for image in &self.images {
            command.args(["--image", &image.to_string()]);
        }
        command
            .args(["--certificate-identity", SIGNER_IDENTITY, "--trusted-root"])
            .arg(&self.services.trusted_root)
            .args(["--insecure-registry", &self.host, "--json"]);
        check(&command.output().expect("gantry"), "gantry verify-image");
    }

    fn gantry_bundle(&self) {
        let output = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(["verify-bundle", "--bundle"])
            .arg(&self.bundle)
            .args([
                "--certificate-identity",
                SIGNER_IDENTITY,
                "--certificate-oidc-issuer",
                SIGNER_ISSUER,
                "--trusted-root",
            ])
            .arg(&self.services.trusted_root)
            .arg(&self.digest)
            .output()
            .expect("gantry");
        check(&output, "gantry verify-bundle");
    }

    fn python_bundle(&self) {
        let output = Command::new(&self.python)
            .args(["-m", "sigstore", "--trust-config"])
            .arg(&self.services.trust_config)
            .args(["verify", "identity", "--offline", "--bundle"])
            .arg(&self.bundle)
            .args([
                "--cert-identity",
                SIGNER_IDENTITY,
                "--cert-oidc-issuer",
                SIGNER_ISSUER,
                &self.digest,
            ])
            .output()
            .expect("sigstore-python");
        check(&output, "sigstore-python");
    }
}

fn check(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn main() {
    let Some(bench) = Bench::start() else { return };
    let out = gantry_testkit::criterion_dir();
    let mut criterion = gantry_testkit::criterion(Duration::from_secs(10));
    {
        let mut group = criterion.benchmark_group("images");
        group.sampling_mode(criterion::SamplingMode::Flat);
        group.bench_function("gantry verify-image", |b| b.iter(|| bench.verify_images()));
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("bundle");
        group.sampling_mode(criterion::SamplingMode::Flat);
        group.bench_function("gantry", |b| b.iter(|| bench.gantry_bundle()));
        group.bench_function("sigstore-python", |b| b.iter(|| bench.python_bundle()));
        group.finish();
    }
    criterion.final_summary();
    let version = Command::new(&bench.python)
        .args(["-m", "sigstore", "--version"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let report = serde_json::json!({
        "images": IMAGES,
        "requests_per_image": bench.requests_per_image,
        "machine": {
            "cores": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            "sigstore_python": version,
        },
    });
    std::fs::create_dir_all(&out).expect("criterion dir");
    std::fs::write(out.join("verify-report.json"), report.to_string()).expect("report");
}
