use std::process::Command;

use crate::{SECRET, binary, text};

#[test]
fn json_output_carries_outputs_status_and_exit_code() {
    let output = Command::new(binary())
        .args([
            "fixture",
            "--image",
            "reg/app:1",
            "--tags",
            "a",
            "--tags",
            "b",
            "--json",
        ])
        .args(["--registry-password", SECRET])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(body["tool"], "fixture");
    assert_eq!(body["status"], "success");
    assert_eq!(body["exit-code"], 0);
    assert_eq!(body["outputs"]["tags"], "a\nb");
    assert_eq!(body["outputs"]["password-set"], "true");
    assert!(!text(&output.stdout).contains(SECRET) && !text(&output.stderr).contains(SECRET));
}

#[test]
fn json_reports_failures_and_errors_with_their_exit_codes() {
    let failed = Command::new(binary())
        .args(["fixture", "--image", "x", "--ending", "fail", "--json"])
        .output()
        .expect("run");
    assert_eq!(failed.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&failed.stdout).expect("json");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["failure"], "expected a pass, found ending=fail for x");

    let errored = Command::new(binary())
        .args(["fixture", "--image", "x", "--ending", "error", "--json"])
        .output()
        .expect("run");
    assert_eq!(errored.status.code(), Some(2));
    let body: serde_json::Value = serde_json::from_slice(&errored.stdout).expect("json");
    assert_eq!(body["status"], "error");
    assert_eq!(
        body["error"],
        "resolving the fixture image: the registry at x did not answer"
    );
}

#[test]
fn plain_output_lists_outputs_and_no_workflow_commands() {
    let output = Command::new(binary())
        .args(["fixture", "--image", "x", "--message", "hello"])
        .env_remove("GITHUB_OUTPUT")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("image: x\n") && stdout.contains("message: hello\n"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("::"),
        "no workflow commands outside action mode: {stdout}"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let missing = Command::new(binary())
        .args(["fixture"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("--image <REF>"));
    let unknown = Command::new(binary())
        .args(["fixture", "--image", "x", "--nope"])
        .output()
        .expect("run");
    assert_eq!(unknown.status.code(), Some(2));
    let help = Command::new(binary())
        .args(["fixture", "--help"])
        .output()
        .expect("run");
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("Run as a GitHub container action"));
    let version = Command::new(binary())
        .arg("--version")
        .output()
        .expect("run");
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        text(&version.stdout).trim(),
        format!("gantry-fixture {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_binary_named_after_the_tool_runs_it_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("fixture");
    std::os::unix::fs::symlink(binary(), &link).expect("symlink");
    let output = Command::new(&link)
        .args(["--image", "direct", "--json"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(body["outputs"]["image"], "direct");
}
