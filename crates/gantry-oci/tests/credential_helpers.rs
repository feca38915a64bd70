//! Docker credential helpers (`credHelpers`, `credsStore`) are run as Docker runs them: a
//! `docker-credential-<name>` on PATH, the registry host on stdin, JSON on stdout. The test runs
//! itself again with a PATH holding a helper script, since a test cannot change its own PATH.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use gantry_oci::{Credential, Credentials};
use gantry_secret::Secret;

const CHILD: &str = "GANTRY_CREDENTIAL_HELPER_CHILD";

const HELPER: &str = r#"#!/bin/sh
read host
case "$host" in
  ghcr.example) echo '{"ServerURL":"ghcr.example","Username":"octo","Secret":"from-helper"}' ;;
  token.example) echo '{"ServerURL":"token.example","Username":"<token>","Secret":"refresh-xyz"}' ;;
  broken.example) echo 'not json' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#;

#[test]
#[expect(
    clippy::print_stdout,
    reason = "the child reports to the parent on stdout"
)]
fn credential_helpers_answer_for_their_registries() {
    if std::env::var_os(CHILD).is_some() {
        let credentials = Credentials::anonymous()
            .with_docker_config(None)
            .expect("config");
        assert_eq!(
            credentials.for_registry("ghcr.example").expect("helper"),
            Credential::Basic {
                username: "octo".into(),
                password: Secret::new("from-helper")
            }
        );
        assert_eq!(
            credentials.for_registry("token.example").expect("helper"),
            Credential::IdentityToken(Secret::new("refresh-xyz"))
        );
        assert_eq!(
            credentials.for_registry("quay.example").expect("store"),
            Credential::Anonymous
        );
        let broken = credentials
            .for_registry("broken.example")
            .expect_err("bad answer");
        assert!(
            broken
                .to_string()
                .contains("answered something that is not JSON"),
            "{broken}"
        );
        println!("child: all helper answers checked");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let helper = dir.path().join("docker-credential-gantrytest");
    std::fs::write(&helper, HELPER).expect("helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"credHelpers": {"ghcr.example": "gantrytest", "token.example": "gantrytest"}, "credsStore": "gantrytest"}"#,
    )
    .expect("config");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "credential_helpers_answer_for_their_registries",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("PATH", path)
        .env("DOCKER_CONFIG", dir.path())
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("child: all helper answers checked"),
        "{stdout}"
    );
}
