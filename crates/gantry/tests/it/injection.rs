//! M1: a registry's error text reached stdout/stderr unescaped, so a registry answering 400 with
//! `\n::set-output name=verified::true\n::stop-commands::x` put commands in the runner's log. Every
//! line gantry prints now passes through the output layer, in action mode and on the command line.

use std::process::Command;

use axum::response::IntoResponse;

const HOSTILE: &str = "{\"errors\":[{\"code\":\"MANIFEST_INVALID\",\"message\":\"bad\\n::set-output name=verified::true\\n::stop-commands::x\\n##[set-output name=x]y\\n##vso[task.setvariable variable=x]y\"}]}";

async fn hostile_registry() -> String {
    // HEAD succeeds without a digest, so the client reads the manifest with GET: the 400's body.
    let app = axum::Router::new().fallback(|method: axum::http::Method| async move {
        if method == axum::http::Method::HEAD {
            return axum::http::StatusCode::OK.into_response();
        }
        (
            axum::http::StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            HOSTILE,
        )
            .into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

/// The lines a runner would take as commands: `::` after leading white space, `##[` or `##vso[`
/// anywhere. gantry's own (an `::error` annotation, escaped) are allowed.
fn commands(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| {
            let start = line.trim_start();
            start.starts_with("::") || line.contains("##[") || line.contains("##vso[")
        })
        .filter(|line| !line.starts_with("::error title=gantry promote-digest::"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_error_body_cannot_become_a_workflow_command() {
    let registry = hostile_registry().await;
    let digest = format!("sha256:{}", "a".repeat(64));
    let dir = tempfile::tempdir().expect("tempdir");
    let output_file = dir.path().join("output");
    std::fs::write(&output_file, "").expect("output file");
    let args = [
        "--image",
        &format!("{registry}/team/app"),
        "--digest",
        &digest,
        "--source-env",
        "dev",
        "--target-env",
        "staging",
    ];
    let cli = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("promote-digest")
        .args(args)
        .env("GITHUB_ACTIONS", "true")
        .current_dir(dir.path())
        .output()
        .expect("run");
    let json = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("promote-digest")
        .args(args)
        .arg("--json")
        .current_dir(dir.path())
        .output()
        .expect("run");
    let action = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["promote-digest", "--action"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output_file)
        .env("INPUT_IMAGE", format!("{registry}/team/app"))
        .env("INPUT_DIGEST", &digest)
        .env("INPUT_SOURCE-ENV", "dev")
        .env("INPUT_TARGET-ENV", "staging")
        .env("RUST_LOG", "debug")
        .current_dir(dir.path())
        .output()
        .expect("run");
    for (name, run) in [("cli", &cli), ("json", &json), ("action", &action)] {
        assert_eq!(
            run.status.code(),
            Some(2),
            "{name}: an infrastructure error"
        );
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains("MANIFEST_INVALID bad") || stdout.contains("MANIFEST_INVALID bad"),
            "{name}: the registry's message is shown\n{stdout}\n{stderr}"
        );
        assert_eq!(
            commands(&stdout),
            Vec::<String>::new(),
            "{name} stdout:\n{stdout}"
        );
        assert_eq!(
            commands(&stderr),
            Vec::<String>::new(),
            "{name} stderr:\n{stderr}"
        );
    }
    let json_out: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert!(
        json_out["error"]
            .as_str()
            .is_some_and(|e| e.contains("##[set-output name=x]y")),
        "the JSON value keeps the text: {json_out}"
    );
    let annotation = String::from_utf8_lossy(&action.stdout);
    assert!(
        annotation.contains("::error title=gantry promote-digest::")
            && annotation.contains("%0A::set-output"),
        "the annotation carries the text escaped:\n{annotation}"
    );
}
