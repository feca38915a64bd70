//! The `gantry` binary as a user runs it.

mod conformance;
mod examples;
mod injection;
mod integration;
mod sbom;
mod signing;
mod tuf;

use std::process::{Command, Output};

use gantry_testkit::{Auth, Registry};

fn gantry(args: &[&str]) -> Output {
    gantry_with(&[], args)
}

/// `gantry` with extra environment variables.
fn gantry_with(env: &[(&str, &std::path::Path)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run gantry")
}

use gantry_testkit::stdout_json as json;

#[test]
fn help_lists_every_tool_and_the_exit_codes() {
    let output = gantry(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for tool in gantry::TOOLS {
        assert!(
            help.contains(tool.spec.name),
            "{} missing from:\n{help}",
            tool.spec.name
        );
    }
    assert!(
        help.contains("Exit codes: 0 success, 1 a check failed, 2 usage or infrastructure error")
    );
    let bare = gantry(&[]);
    assert_eq!(
        bare.status.code(),
        Some(2),
        "no subcommand is a usage error"
    );
    // Every tool the one-line promise names is built: the help says none is missing.
    assert!(!help.contains("Not here yet"), "{help}");
    for promised in [
        "sbom-attach",
        "dispatch-integration",
        "canary-watch",
        "GitOps",
    ] {
        assert!(help.contains(promised), "{promised} is not in:\n{help}");
    }
}

#[test]
fn verify_image_without_a_signer_is_a_usage_error_that_says_what_to_give() {
    // Before any request: the registry named here does not exist.
    let image = "127.0.0.1:9/acme/app:dev";
    for (extra, said) in [
        (
            &[][..],
            "error: verify-image: signature policy: give a certificate identity (or identity \
             regexp), or a key: gantry does not accept a signature from anyone",
        ),
        (
            &["--key", "cosign.pub", "--certificate-identity", "me"][..],
            "error: verify-image: signature policy: give a key or a certificate identity, not both",
        ),
    ] {
        let output = gantry(&[&["verify-image", "--image", image][..], extra].concat());
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end(), said);
    }
}

#[test]
fn doctor_trusts_a_private_ca_given_with_ca_file() {
    let Some(registry) = Registry::start(Auth::Tls) else {
        return;
    };
    let url = format!("{}/v2/", registry.url());
    let without = gantry(&["doctor", "--url", &url, "--json"]);
    assert_eq!(
        without.status.code(),
        Some(1),
        "an unknown CA fails the check"
    );
    let ca = registry.ca_file().expect("ca file");
    let with = gantry(&[
        "doctor",
        "--url",
        &url,
        "--json",
        "--ca-file",
        ca.to_str().expect("utf8"),
    ]);
    assert_eq!(with.status.code(), Some(0), "{}", json(&with));
    assert_eq!(json(&with)["outputs"]["status"], "200");
}

#[test]
fn doctor_reports_an_answer_that_is_not_200_as_reached() {
    let Some(registry) = Registry::start(Auth::Basic) else {
        return;
    };
    let output = gantry(&[
        "doctor",
        "--url",
        &format!("{}/v2/", registry.url()),
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(json(&output)["outputs"]["status"], "401");
}

#[test]
fn doctor_refuses_a_url_that_is_not_one() {
    let output = gantry(&["doctor", "--url", "ghcr.io/v2", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        json(&output)["error"]
            .as_str()
            .is_some_and(|e| e.contains("--url \"ghcr.io/v2\" is not an absolute URL"))
    );
}

#[test]
fn doctor_falls_back_to_embedded_roots_without_a_system_bundle() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.crt");
    std::fs::write(&empty, "").expect("write");
    let url = format!("{}/v2/", registry.url());
    let output = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["doctor", "--url", &url, "--json"])
        .env("SSL_CERT_FILE", &empty)
        .env("SSL_CERT_DIR", dir.path())
        .output()
        .expect("run");
    assert_eq!(
        output.status.code(),
        Some(0),
        "plain HTTP works without any bundle"
    );
    assert_eq!(json(&output)["outputs"]["trust-roots"], "embedded");
    let system = gantry(&["doctor", "--url", &url, "--json"]);
    assert_eq!(json(&system)["outputs"]["trust-roots"], "system");
}

#[test]
fn registry_serve_answers_v2_and_refuses_remote_addresses() {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["registry", "serve", "--addr", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Keep the pipe open until the child is gone: a closed stderr would kill it on its next write.
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("listening on http://"))
        .expect("listening line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("address")
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        stream,
        "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("response");
    let _ = child.kill();
    let _ = child.wait();
    drop(lines);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("docker-distribution-api-version: registry/2.0"),
        "{answer}"
    );

    let refused = gantry(&["registry", "serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a loopback address"));
    let no_password = gantry(&["registry", "serve", "--auth", "basic"]);
    assert_eq!(no_password.status.code(), Some(2));
    let by_name = gantry(&["registry", "serve", "--addr", "localhost:5077"]);
    assert_eq!(by_name.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&by_name.stderr).contains("not a host name"),
        "{}",
        String::from_utf8_lossy(&by_name.stderr)
    );
}

#[test]
fn registry_serve_warns_loudly_when_it_serves_other_hosts_without_authentication() {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["registry", "serve", "--addr", "0.0.0.0:0", "--allow-remote"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let before: Vec<String> = lines
        .by_ref()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("listening on"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    drop(lines);
    let text = before.join("\n");
    assert!(text.contains("WITHOUT AUTHENTICATION"), "{text}");
    assert!(text.contains("hint: add --auth bearer"), "{text}");
}

#[test]
fn registry_serve_over_tls_is_reached_by_doctor_with_the_ca() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = gantry_testkit::TestCa::new("cli test CA").expect("ca");
    let cert = ca.issue(&["127.0.0.1"]).expect("cert");
    let (cert_path, key_path, ca_path) = (
        dir.path().join("c.pem"),
        dir.path().join("k.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert_path, &cert.cert_pem).expect("cert");
    std::fs::write(&key_path, &cert.key_pem).expect("key");
    std::fs::write(&ca_path, ca.cert_pem()).expect("ca");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&key_path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("listening on"))
        .expect("listening line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .expect("https url")
        .to_owned();
    let with_ca = gantry(&[
        "doctor",
        "--url",
        &format!("{url}/v2/"),
        "--json",
        "--ca-file",
        ca_path.to_str().expect("utf8"),
    ]);
    let without = gantry(&["doctor", "--url", &format!("{url}/v2/"), "--json"]);
    let _ = child.kill();
    let _ = child.wait();
    drop(lines);
    assert_eq!(json(&with_ca)["outputs"]["status"], "200");
    assert_eq!(without.status.code(), Some(1), "an unknown CA is refused");
}
