//! `gantry demo` (the README's main job) with the static binary, and the image it builds, unpacked
//! by umoci and inspected by skopeo.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use gantry_testkit::peers::{Peers, run};

use crate::dist_binary;

fn demo(binary: &std::path::Path) -> String {
    let output = Command::new(binary)
        .arg("demo")
        .output()
        .expect("run gantry demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn built_digest(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("built    "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `built` line in:\n{stdout}"))
        .to_owned()
}

/// The digest that was built lands in the local GitOps repository by one commit with trailers.
fn gitops_committed(first: &str, digest: &str) {
    let gitops = first
        .lines()
        .find(|l| l.starts_with("gitops   → production"))
        .unwrap_or_else(|| panic!("no GitOps step in:\n{first}"));
    assert!(
        gitops.contains(digest) && gitops.contains("one commit"),
        "{gitops}"
    );
    assert!(
        first.contains(&format!("           Gantry-Digest: {digest}\n")),
        "the commit's trailers:\n{first}"
    );
}

/// The next build reaches canary the same way, fails there, and canary-watch rolls the canary back
/// to the digest that was built.
fn canary_rolled_back(first: &str, digest: &str) {
    let next = first
        .lines()
        .find_map(|l| {
            l.strip_prefix("build    → dev         ")
                .filter(|rest| rest.contains("the next build"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no next build in:\n{first}"));
    assert_ne!(next, digest);
    assert!(
        first
            .lines()
            .any(|l| l.starts_with("staging  → canary") && l.contains(next)),
        "the next build reached canary:\n{first}"
    );
    let rollback = first
        .lines()
        .find(|l| l.starts_with("rollback ← canary"))
        .unwrap_or_else(|| panic!("no rollback in:\n{first}"));
    assert!(
        rollback.contains(digest)
            && rollback.contains("3 failing ticks in a row")
            && rollback.contains("health: HTTP 503")
            && rollback.contains("rolled back to the digest before it")
            && rollback.contains("3 registry requests"),
        "{rollback}"
    );
}

/// The integration verdict, through dispatch-integration and a local GitHub, comes before
/// staging; a failing verdict keeps an image out of staging.
fn integration_gates(first: &str, digest: &str) {
    let lines: Vec<&str> = first.lines().collect();
    let dispatched = lines
        .iter()
        .position(|l| l.starts_with("dispatch → integration") && l.contains(digest))
        .unwrap_or_else(|| panic!("no integration dispatch:\n{first}"));
    assert!(
        lines[dispatched].contains("verdict passed")
            && lines[dispatched].contains("commit status success")
            && lines[dispatched].contains("deployment to integration success"),
        "{}",
        lines[dispatched]
    );
    let staged = lines
        .iter()
        .position(|l| l.starts_with("dev      → staging"))
        .unwrap_or_else(|| panic!("no staging promotion:\n{first}"));
    assert!(
        dispatched < staged,
        "the verdict comes before staging:\n{first}"
    );
    let broken = lines
        .iter()
        .find(|l| l.starts_with("broken   → integration"))
        .unwrap_or_else(|| panic!("no failing integration:\n{first}"));
    assert!(
        broken.contains("verdict FAILED") && broken.contains("commit status failure"),
        "{broken}"
    );
    assert!(
        first
            .lines()
            .any(|l| l.starts_with("broken   → staging     refused")
                && l.contains("test-result attestation says FAILED")),
        "{first}"
    );
}

#[test]
fn the_demo_signs_and_promotes_one_digest_to_production_refuses_the_unsigned_and_builds_reproducibly()
 {
    let Some(binary) = dist_binary() else { return };
    let first = demo(&binary);
    let digest = built_digest(&first);
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    for env in ["dev", "staging", "canary", "production"] {
        let line = first
            .lines()
            .find(|l| l.trim_start().starts_with(env) && l.contains('✓'))
            .unwrap_or_else(|| panic!("{env} does not point at the built digest:\n{first}"));
        assert!(line.contains(&digest), "{line}");
    }
    assert!(first.contains("dev      → production  refused"), "{first}");
    integration_gates(&first, &digest);
    for (from, to) in [
        ("dev", "staging"),
        ("staging", "canary"),
        ("canary", "production"),
    ] {
        let line = first
            .lines()
            .find(|l| l.starts_with(from) && l.contains(&format!("→ {to}")) && l.contains(&digest))
            .unwrap_or_else(|| panic!("no {from} → {to} promotion:\n{first}"));
        assert!(
            line.contains("signature by the demo key verified") && line.contains("promoted"),
            "each promotion says the signature was checked: {line}"
        );
        if to == "production" {
            assert!(line.contains("SBOM attestation too"), "{line}");
        }
    }
    // The SBOM: read from dev's layers (the binary's own dependencies, embedded by
    // cargo-auditable), attached and signed; the promotion carried it to production's repository.
    let sbom = first
        .lines()
        .find(|l| l.starts_with("sbom     → dev"))
        .unwrap_or_else(|| panic!("no SBOM line:\n{first}"));
    assert!(
        sbom.contains(&digest) && sbom.contains("signed attestation sha256:"),
        "{sbom}"
    );
    let packages: usize = sbom
        .split('(')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no package count: {sbom}"));
    assert!(
        packages > 100 && sbom.contains("\"cargo\":"),
        "the binary's crates: {sbom}"
    );
    assert!(
        first.lines().any(|l| l.starts_with("carried  → production")
            && l.contains("SBOM (1)")
            && l.contains("(3 bundles)")),
        "the SBOM travelled with the digest:\n{first}"
    );
    assert!(
        first.contains("not allowed by the demo's policy") && !first.contains("/tmp/"),
        "no temporary path the demo deletes on its way out:\n{first}"
    );
    // Signed at dev; every promotion verified it; the unsigned and the stranger's are refused.
    let signed = first
        .lines()
        .find(|l| l.starts_with("sign     → dev"))
        .unwrap_or_else(|| panic!("no signing line:\n{first}"));
    assert!(signed.contains(&digest), "{signed}");
    let refused = |name: &str, why: &str| {
        let line = first
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line:\n{first}"));
        assert!(
            line.contains("→ staging     refused (127.0.0.1:")
                && line.contains(&format!("/demo/{name}@sha256:"))
                && line.contains("dev -> staging requires a signature: "),
            "the refusal names the image it refused: {line}"
        );
        assert!(line.contains(why), "{line}");
    };
    refused("unsigned", "no signatures found for");
    refused("stranger", "none verified for the given key");
    assert!(
        first.contains("re-run: already there, nothing to do"),
        "{first}"
    );
    assert!(
        first.lines().any(|l| l.starts_with("verify   production")
            && l.contains(&digest)
            && l.contains("verify-image: signed by the demo key, SBOM attestation too")),
        "verify-image checks production:\n{first}"
    );
    canary_rolled_back(&first, &digest);
    gitops_committed(&first, &digest);
    assert!(first.contains("demo passed"), "{first}");
    // Another process, another registry, another moment: the same binary gives the same digest.
    assert_eq!(built_digest(&demo(&binary)), digest);
}

#[test]
fn umoci_unpacks_the_image_and_finds_the_binary_as_the_entrypoint() {
    let Some(binary) = dist_binary() else { return };
    let Some(peers) = Peers::find() else { return };
    let bytes = std::fs::read(&binary).expect("binary");
    let image = gantry::demo::scratch_image(bytes.clone().into()).expect("image");
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "test").expect("layout");
    let reference = format!("oci:{}:test", layout.display());
    let inspected: serde_json::Value =
        serde_json::from_slice(&run(&peers.skopeo, &["inspect", "--config", &reference]))
            .expect("config");
    assert_eq!(
        inspected["config"]["Entrypoint"],
        serde_json::json!(["/gantry"])
    );
    assert_eq!(inspected["os"], "linux");
    let bundle = dir.path().join("bundle");
    run(
        &peers.umoci,
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:test", layout.display()),
            bundle.to_str().expect("utf8"),
        ],
    );
    let unpacked = bundle.join("rootfs/gantry");
    assert_eq!(std::fs::read(&unpacked).expect("unpacked binary"), bytes);
    let mode = std::fs::metadata(&unpacked)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    // And it runs: the unpacked static binary answers --version.
    let version = Command::new(&unpacked)
        .arg("--version")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

/// The action image: the same binary gives the same digest (the release workflow also builds the
/// binary twice and compares), and it weighs at most 15 MB as pushed.
#[test]
fn the_action_image_is_reproducible_and_at_most_15_mb() {
    let Some(binary) = dist_binary() else {
        return;
    };
    let bytes = bytes::Bytes::from(std::fs::read(&binary).expect("the binary"));
    let first = gantry::demo::scratch_image(bytes.clone()).expect("image");
    let second = gantry::demo::scratch_image(bytes).expect("image");
    assert_eq!(first.digest(), second.digest());
    assert_eq!(first.layer, second.layer);
    let size = gantry::demo::pushed_size(&first);
    assert!(
        size <= gantry::demo::ACTION_IMAGE_LIMIT,
        "the action image weighs {size} bytes"
    );
    assert!(size > 1_000_000, "the binary is in it: {size} bytes");
}
