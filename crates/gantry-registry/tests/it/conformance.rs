//! The official OCI distribution-spec conformance suite (v1.1.1, vendored in
//! `tests/oci-conformance/` with its NOTICE) against gantry-registry in its three storage and auth
//! modes: every spec it runs passes, so no hardening costs conformance.

use std::path::Path;

use gantry_registry::{AuthMode, Config};
use gantry_secret::Secret;

async fn conformance(config: Config, credentials: Option<(&str, &str)>) {
    let registry = gantry_registry::start(config).await.expect("start");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oci-conformance/run.sh");
    let reports = tempfile::tempdir().expect("tempdir");
    let mut command = tokio::process::Command::new("bash");
    command
        .arg(&suite)
        .arg(format!("http://{}", registry.host()))
        .env("OCI_REPORT_DIR", reports.path())
        .env("OCI_AUTOMATIC_CROSSMOUNT", "0");
    if let Some((username, password)) = credentials {
        command
            .env("OCI_USERNAME", username)
            .env("OCI_PASSWORD", password);
    }
    let output = command.output().await.expect("run the conformance suite");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    let counts: Vec<u32> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        output.status.success() && counts.len() == 3 && counts[1] == 0 && counts[0] >= 74,
        "conformance: {last}\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oci_conformance_suite_passes_with_temporary_storage() {
    conformance(Config::default(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oci_conformance_suite_passes_with_disk_storage() {
    let dir = tempfile::tempdir().expect("tempdir");
    conformance(
        Config {
            storage: Some(dir.path().to_owned()),
            ..Config::default()
        },
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oci_conformance_suite_passes_with_bearer_tokens() {
    conformance(
        Config {
            auth: AuthMode::Bearer {
                username: "conformance".to_owned(),
                password: Secret::new("conformance-pass"),
            },
            ..Config::default()
        },
        Some(("conformance", "conformance-pass")),
    )
    .await;
}
