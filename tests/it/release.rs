//! gantry ships itself through gantry: its release workflow (`.github/workflows/release.yml`),
//! played with the static binary just built, against gantry's registry and the mock Sigstore.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use gantry_oci::{Client, Reference};
use serde_json::{Map, json};

use crate::flow::{Stage, failure_log, map};

/// gantry's own release workflow, played on this machine: the binary just built is packed, pushed
/// by digest, signed with the workflow's identity, given its SBOM and verified by itself before
/// the pin; from a fork (another repository) the verification fails and nothing is pinned.
#[test]
#[expect(clippy::too_many_lines, reason = "one release, told in order")]
fn the_release_workflow_signs_sboms_and_verifies_gantrys_own_image_before_pinning_it() {
    let repository = "gantry-dev/gantry";
    let identity =
        "https://github.com/gantry-dev/gantry/.github/workflows/release.yml@refs/heads/main";
    let Some(stage) = Stage::start(repository, identity) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workflow = root.join(".github/workflows/release.yml");
    let files = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&stage.sigstore.trusted_root, files.path().join("root.json")).expect("root");
    std::fs::copy(
        &stage.sigstore.signing_config,
        files.path().join("config.json"),
    )
    .expect("config");
    let image = format!("{}/{repository}", stage.host());
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    let pinned = Arc::new(Mutex::new(Vec::new()));
    let release = |as_repository: &str| {
        let mut runner = stage.runner(as_repository, "release.yml", &root);
        runner.github["event_name"] = json!("workflow_dispatch");
        runner.env_overrides = map(&[("IMAGE", &image)]);
        runner.env.extend([
            ("INPUT_INSECURE-REGISTRY".to_owned(), stage.host()),
            (
                "INPUT_SIGNING-CONFIG".to_owned(),
                files.path().join("config.json").display().to_string(),
            ),
            (
                "INPUT_TRUSTED-ROOT".to_owned(),
                files.path().join("root.json").display().to_string(),
            ),
        ]);
        let binary = stage.binary.clone();
        runner.play("build", move |step| {
            let bytes = std::fs::read(&binary).map_err(|e| e.to_string())?;
            let packed = gantry::demo::scratch_image(bytes.into()).map_err(|e| e.to_string())?;
            std::fs::copy(&binary, step.temp.join("gantry")).map_err(|e| e.to_string())?;
            Ok([("digest".to_owned(), packed.digest().to_string())].into())
        });
        runner.play("login", |_| Ok(BTreeMap::new()));
        let (binary, host) = (stage.binary.clone(), stage.host());
        runner.play("push", move |step| {
            let bytes = std::fs::read(&binary).map_err(|e| e.to_string())?;
            let packed = gantry::demo::scratch_image(bytes.into()).map_err(|e| e.to_string())?;
            let at: Reference = format!("{}:{}", step.env["IMAGE"], step.env["VERSION"])
                .parse()
                .map_err(|e| format!("{e}"))?;
            let client = Client::plain_http(&host).map_err(|e| e.to_string())?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(packed.push(&client, &at))
                .map_err(|e| e.to_string())?;
            if packed.digest().as_str() != step.env["DIGEST"] {
                return Err("pushed another digest than was built".to_owned());
            }
            Ok(BTreeMap::new())
        });
        let log = pinned.clone();
        runner.play("pin", move |step| {
            log.lock().expect("pins").push(step.env["DIGEST"].clone());
            Ok(BTreeMap::new())
        });
        runner.play("commit", |_| Ok(BTreeMap::new()));
        let outcome = runner
            .steps_job(
                &workflow,
                "release",
                &map(&[("version", &version)]),
                &Map::new(),
            )
            .expect("release.yml runs")
            .expect("the job runs");
        (outcome, runner)
    };

    let (outcome, runner) = release(repository);
    assert_eq!(outcome["result"], "success", "{}", failure_log(&runner));
    let tool = |name: &str| {
        runner
            .gantry_step(name)
            .unwrap_or_else(|| panic!("{name} ran"))
    };
    let verify = tool("verify-image");
    assert_eq!(verify.outcome, "success");
    let inputs = &verify.gantry.as_ref().expect("inputs").1;
    assert_eq!(inputs["INPUT_CERTIFICATE-IDENTITY"], identity);
    assert_eq!(inputs["INPUT_REQUIRE-ATTESTATION"], "cyclonedx");
    let sbom = tool("sbom-attach");
    let packages: u64 = sbom.outputs["packages"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .unwrap_or_default();
    assert!(
        packages > 100,
        "the SBOM lists the crates the binary carries: {:?}",
        sbom.outputs
    );
    let digest = tool("sign-image").outputs["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    assert_eq!(
        stage
            .resolve(&format!("{image}:{version}"))
            .map(|d| d.to_string()),
        Some(digest.clone())
    );
    assert_eq!(
        *pinned.lock().expect("pins"),
        [digest],
        "pinned after the verification"
    );

    // A fork's run: signed by its own identity, which is not the release workflow's here.
    let (outcome, runner) = release("someone/gantry");
    assert_eq!(outcome["result"], "failure");
    let verify = runner.gantry_step("verify-image").expect("verify ran");
    assert_eq!(verify.outcome, "failure");
    assert_eq!(pinned.lock().expect("pins").len(), 1, "nothing pinned");
}
