//! sigstore-conformance's bundle-verification cases (v0.0.29, vendored in
//! `crates/gantry-sigstore/conformance`), run against the real binary through the conformance CLI
//! protocol: every case without `_fail` must verify, every `_fail` case must not.

use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../gantry-sigstore/conformance")
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Runs one case; `Err` describes a case whose outcome is not the expected one.
fn run_case(case: &Path) -> Result<(), String> {
    let name = case
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let should_fail = name.ends_with("_fail");
    let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
    command
        .arg("verify-bundle")
        .arg("--bundle")
        .arg(case.join("bundle.sigstore.json"));
    if case.join("key.pub").exists() {
        command.arg("--key").arg(case.join("key.pub"));
    } else {
        command
            .arg("--certificate-identity")
            .arg(
                read_trimmed(&case.join("identity")).unwrap_or_else(|| DEFAULT_IDENTITY.to_owned()),
            )
            .arg("--certificate-oidc-issuer")
            .arg(read_trimmed(&case.join("issuer")).unwrap_or_else(|| DEFAULT_ISSUER.to_owned()));
    }
    let root = case.join("trusted_root.json");
    command.arg("--trusted-root").arg(if root.exists() {
        root
    } else {
        assets().join("production-trusted_root.json")
    });
    let artifact = case.join("artifact");
    command.arg(if artifact.exists() {
        artifact
    } else {
        assets().join("a.txt")
    });
    let output = command.output().map_err(|e| format!("{name}: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    match (should_fail, output.status.code()) {
        (false, Some(0)) => Ok(()),
        (true, Some(1)) if stderr.contains("error: verify-bundle:") => Ok(()),
        (true, code) => Err(format!(
            "{name}: must fail with exit 1, got {code:?}: {stderr}"
        )),
        (false, code) => Err(format!("{name}: must verify, got {code:?}: {stderr}")),
    }
}

#[test]
fn every_bundle_verification_case_passes() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(assets().join("bundle-verify"))
        .expect("vendored cases")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("bundle.sigstore.json").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 70,
        "all the vendored cases are found: {}",
        cases.len()
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| run_case(case).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} conformance cases went wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// `--json` as every other command takes it, and a file error that keeps its cause.
#[test]
fn verify_bundle_speaks_json_and_names_what_it_could_not_read() {
    let case = assets().join("bundle-verify/happy-path-v0.3");
    let run = |extra: &[&str], bundle: &Path| {
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("verify-bundle")
            .arg("--bundle")
            .arg(bundle)
            .args(["--certificate-identity", DEFAULT_IDENTITY])
            .args(["--certificate-oidc-issuer", DEFAULT_ISSUER])
            .arg("--trusted-root")
            .arg(assets().join("production-trusted_root.json"))
            .arg(assets().join("a.txt"))
            .args(extra)
            .output()
            .expect("run")
    };
    let ok = run(&["--json"], &case.join("bundle.sigstore.json"));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let body = gantry_testkit::stdout_json(&ok);
    assert_eq!(body["status"], "success");
    assert_eq!(body["identity"], DEFAULT_IDENTITY);

    let missing = run(&["--json"], &case.join("no-such-bundle.json"));
    assert_eq!(missing.status.code(), Some(2));
    let body = gantry_testkit::stdout_json(&missing);
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("no-such-bundle.json") && error.contains("No such file"),
        "the cause is kept: {error}"
    );
}
