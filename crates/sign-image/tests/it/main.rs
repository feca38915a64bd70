//! sign-image, the real binary: what it refuses before anything is signed. Signing itself is
//! tested end to end in crates/gantry/tests/it/signing.rs (keyless against the mock Sigstore
//! services, cosign's encrypted keys, the action's OIDC path) and in gantry-sigstore.

use std::process::Output;

use gantry_testkit::{Auth, Registry};

fn sign_image(args: &[&str]) -> (Output, serde_json::Value) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sign-image"))
        .args(args)
        .arg("--json")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .env_remove("COSIGN_PASSWORD")
        .env_remove("SIGSTORE_ID_TOKEN")
        .output()
        .expect("sign-image");
    let json = gantry_testkit::stdout_json(&output);
    (output, json)
}

/// A fresh unencrypted PKCS#8 key in `dir`.
fn key_file(dir: &std::path::Path) -> std::path::PathBuf {
    let key = dir.join("key.pem");
    let pem = gantry_sigstore::sign::SigningKey::generate_pem().expect("key");
    std::fs::write(&key, pem.expose()).expect("write");
    key
}

#[track_caller]
fn refused(args: &[&str], expected: &str) {
    let (output, json) = sign_image(args);
    assert_eq!(output.status.code(), Some(2), "{json}");
    let error = json["error"].as_str().unwrap_or_default();
    assert!(error.contains(expected), "expected {expected:?}: {json}");
}

#[test]
fn inputs_that_cannot_mean_what_they_say_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let key = key.to_str().expect("utf-8");
    let image = "127.0.0.1:1/acme/app:dev";
    refused(
        &[
            "--image",
            image,
            "--key",
            key,
            "--fulcio-url",
            "https://fulcio.example",
        ],
        "--fulcio-url applies to keyless signing",
    );
    refused(
        &["--image", image, "--key", key, "--identity-token", "a.b.c"],
        "--identity-token applies to keyless signing",
    );
    let token = dir.path().join("token");
    std::fs::write(&token, "\n").expect("token file");
    let token = token.to_str().expect("utf-8");
    refused(
        &[
            "--image",
            image,
            "--key",
            key,
            "--identity-token-file",
            token,
        ],
        "--identity-token-file applies to keyless signing",
    );
    refused(
        &["--image", image, "--identity-token-file", token],
        "is empty, expected the secret",
    );
    refused(
        &["--image", image, "--tlog-upload", "false"],
        "--tlog-upload false applies to key-based signing only",
    );
    refused(
        &["--image", image, "--key", key, "--annotation", "no-equals"],
        "--annotation \"no-equals\" is not KEY=VALUE",
    );
    refused(
        &["--image", image],
        "keyless signing needs an identity token",
    );
}

#[test]
fn an_image_that_is_not_there_fails_before_anything_is_signed() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let host = registry.host();
    let missing = format!("{host}/acme/missing:dev");
    let (output, json) = sign_image(&[
        "--image",
        &missing,
        "--key",
        key.to_str().expect("utf-8"),
        "--tlog-upload",
        "false",
        "--insecure-registry",
        &host,
    ]);
    assert_eq!(output.status.code(), Some(2), "{json}");
    let error = json["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("reading {missing}")), "{json}");
    assert!(error.contains("not found"), "{json}");
}
