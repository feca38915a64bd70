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

const COUNTING_HELPER: &str = r#"#!/bin/sh
read host
echo "$host" >> "$GANTRY_HELPER_LOG"
echo '{"ServerURL":"x","Username":"gantry","Secret":"registry-pass-3f9c1e"}'
"#;

/// A helper is a blocking process: it runs once per registry per run, not once per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::print_stdout,
    reason = "the child reports to the parent on stdout"
)]
async fn a_credential_helper_runs_once_per_registry_per_run() {
    const NAME: &str = "a_credential_helper_runs_once_per_registry_per_run";
    if std::env::var_os(CHILD).is_some() {
        let Some(registry) = gantry_testkit::Registry::start_on(
            gantry_testkit::Backend::Gantry,
            gantry_testkit::Auth::Basic,
        ) else {
            return;
        };
        let credentials = Credentials::anonymous()
            .with_docker_config(None)
            .expect("config");
        let client = gantry_oci::Client::plain_http(&registry.host()).expect("client");
        let client =
            gantry_oci::Client::new(client.options().clone(), credentials).expect("client");
        let image: gantry_oci::Reference = format!("{}/team/app:v1", registry.host())
            .parse()
            .expect("reference");
        let config = bytes::Bytes::from_static(b"{}");
        let layer = bytes::Bytes::from_static(b"layer");
        client
            .push_image(&image, &config, &[("application/octet-stream", &layer)])
            .await
            .expect("push");
        client.resolve(&image).await.expect("resolve");
        client.tags(&image).await.expect("tags");
        assert!(client.counts().requests >= 6, "{:?}", client.counts());
        println!("child: pushed, resolved and listed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let helper = dir.path().join("docker-credential-gantrycount");
    std::fs::write(&helper, COUNTING_HELPER).expect("helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"credsStore": "gantrycount"}"#,
    )
    .expect("config");
    let log = dir.path().join("helper.log");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("PATH", path)
        .env("DOCKER_CONFIG", dir.path())
        .env("GANTRY_HELPER_LOG", &log)
        .output()
        .await
        .expect("run child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("child: pushed, resolved and listed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let runs = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "helper runs: {runs:?}");
}
