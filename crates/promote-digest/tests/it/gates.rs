//! M3 and the gate findings of the outside review: gates saw gantry's secrets (the whole
//! environment, the token on gantry's own command line), a timeout killed only `sh`, gate output
//! was dropped, and a gate that moved an environment went unnoticed.

use super::{push, setup, text};

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_sees_a_clean_environment_and_no_token_on_the_command_line() {
    let Some(env) = setup() else { return };
    let digest = push(&env, "dev", b"clean env").await;
    let dump = env.dir.path().join("gate-env");
    let cmdline = env.dir.path().join("parent-cmdline");
    let token_file = env.dir.path().join("github-token");
    std::fs::write(&token_file, "ghs_token_from_a_file\n").expect("token file");
    let policy = env.write_policy(&format!(
        "version: 1\npromotions:\n  - from: dev\n    to: staging\n    gates:\n      - name: look around\n        run: env > {} && tr '\\\\0' ' ' < /proc/$PPID/cmdline > {}\n        env: [SMOKE_URL]\n",
        dump.display(),
        cmdline.display()
    ));
    let output = env
        .command(&digest, "dev", "staging")
        .args(["--policy", &policy, "--deployment", "false"])
        .args(["--github-token-file", token_file.to_str().expect("utf8")])
        .env("GITHUB_TOKEN", "ghs_secret_in_the_environment")
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "oidc_request_bearer")
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", "https://oidc.example/token")
        .env("GANTRY_REGISTRY_PASSWORD", "registry_password_value")
        .env("INPUT_GITHUB-TOKEN", "ghs_input_token")
        .env("SMOKE_URL", "https://staging.example/health")
        .env("UNLISTED", "not for gates")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let seen = read(&dump);
    for wanted in [
        format!("GANTRY_DIGEST={digest}"),
        "GANTRY_TARGET_ENV=staging".to_owned(),
        "SMOKE_URL=https://staging.example/health".to_owned(),
        "PATH=".to_owned(),
    ] {
        assert!(seen.contains(&wanted), "{wanted} missing from:\n{seen}");
    }
    for secret in [
        "ghs_secret_in_the_environment",
        "oidc_request_bearer",
        "ACTIONS_ID_TOKEN_REQUEST",
        "registry_password_value",
        "ghs_input_token",
        "ghs_token_from_a_file",
        "UNLISTED",
    ] {
        assert!(!seen.contains(secret), "the gate saw {secret}:\n{seen}");
    }
    let parent = read(&cmdline);
    assert!(parent.contains("--github-token-file"), "{parent}");
    assert!(
        !parent.contains("ghs_"),
        "no token on gantry's command line: {parent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_gate_is_killed_with_everything_it_started() {
    let Some(env) = setup() else { return };
    let digest = push(&env, "dev", b"slow gate").await;
    let pid_file = env.dir.path().join("background-pid");
    let policy = env.write_policy(&format!(
        "version: 1\npromotions:\n  - from: dev\n    to: staging\n    gates:\n      - name: hangs\n        run: sleep 300 & echo $! > {}; sleep 300\n        timeout: 1\n",
        pid_file.display()
    ));
    let (output, json) = env.promote(&digest, "dev", "staging", &["--policy", &policy]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let failure = json["failure"].as_str().unwrap_or_default();
    assert!(failure.contains("timed out after 1 s"), "{failure}");
    let pid = read(&pid_file).trim().to_owned();
    assert!(!pid.is_empty(), "the gate wrote its background pid");
    let mut gone = false;
    for _ in 0..50 {
        let state = read(&std::path::Path::new("/proc").join(&pid).join("stat"));
        // Gone, or a zombie waiting to be reaped: either way no longer running.
        if state.is_empty() || state.split_whitespace().nth(2) == Some("Z") {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(gone, "the background sleep {pid} survived the gate");
    assert_eq!(env.digest_at("team/app:staging").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_output_reaches_the_log_but_cannot_issue_commands() {
    let Some(env) = setup() else { return };
    let digest = push(&env, "dev", b"chatty gate").await;
    let policy = env.write_policy(
        "version: 1\npromotions:\n  - from: dev\n    to: staging\n    gates:\n      - name: chatty\n        run: |\n          echo 'migrations: 3 pending'\n          echo '::set-output name=verified::true'\n          echo '::add-mask::x' >&2\n",
    );
    let output = env
        .command(&digest, "dev", "staging")
        .args(["--policy", &policy])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("[chatty] migrations: 3 pending"),
        "{stderr}"
    );
    assert!(
        stderr.contains("::set-output name=verified::true"),
        "the text is kept: {stderr}"
    );
    for stream in [text(&output.stdout), stderr] {
        for line in stream.lines() {
            let start = line.trim_start();
            assert!(
                !start.starts_with("::set-output") && !start.starts_with("::add-mask"),
                "a gate issued a command: {line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_that_moves_the_target_voids_the_promotion() {
    let Some(env) = setup() else { return };
    let Some(skopeo) = gantry_testkit::require("skopeo", "apt-get install skopeo") else {
        return;
    };
    let digest = push(&env, "dev", b"the candidate").await;
    let other = push(&env, "other", b"someone else's image").await;
    let host = env.registry.host();
    let policy = env.write_policy(&format!(
        "version: 1\npromotions:\n  - from: dev\n    to: staging\n    gates:\n      - name: sneaky\n        run: {} copy --src-tls-verify=false --dest-tls-verify=false docker://{host}/team/app:other docker://{host}/team/app:staging\n        env: [HOME]\n",
        skopeo.display()
    ));
    let (output, json) = env.promote(&digest, "dev", "staging", &["--policy", &policy]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let failure = json["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("moved from nothing to") && failure.contains("while the checks ran"),
        "{failure}"
    );
    assert_eq!(
        env.digest_at("team/app:staging").await.as_ref(),
        Some(&other),
        "gantry did not overwrite what the gate wrote"
    );
    assert_ne!(other, digest);
}

/// Section 3 of the review: the plain output was bare `key: value` lines, empty ones included; a
/// dry run said only `promoted: false`; without a token the Deployment was silently not recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_output_says_what_happened_in_a_sentence() {
    let Some(env) = setup() else { return };
    let digest = push(&env, "dev", b"told plainly").await;
    let plain = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_promote-digest"))
            .current_dir(env.dir.path())
            .args(["--image", &env.image(), "--digest", digest.as_str()])
            .args(["--source-env", "dev", "--target-env", "staging"])
            .args(["--insecure-registry", &env.registry.host()])
            .args(extra)
            .env("DOCKER_CONFIG", env.dir.path())
            .env_remove("GANTRY_GITHUB_TOKEN")
            .output()
            .expect("run")
    };
    let dry = plain(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    let stdout = text(&dry.stdout);
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("dry run: staging (")
                && l.contains("would move from nothing to")
                && l.contains("nothing changed")),
        "{stdout}"
    );
    assert!(
        !stdout.lines().any(|l| l.trim_end().ends_with(':')),
        "no empty `key:` lines: {stdout}"
    );

    let moved = plain(&[]);
    assert_eq!(moved.status.code(), Some(0), "{}", text(&moved.stderr));
    let stdout = text(&moved.stdout);
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with(&format!("promoted {digest} from dev to staging"))),
        "{stdout}"
    );
    assert!(
        text(&moved.stderr)
            .contains("notice: not recorded as a GitHub Deployment: no GitHub token"),
        "{}",
        text(&moved.stderr)
    );
    let again = plain(&[]);
    assert!(
        text(&again.stdout).starts_with("staging ("),
        "{}",
        text(&again.stdout)
    );
    assert!(text(&again.stdout).contains("already points at"));
}
