//! The static binary as a container action's PID 1: a cancelled step's SIGTERM reaches it (the
//! kernel delivers a signal to a PID namespace's init only if it handles it) and it cancels the
//! integration run before exiting.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_testkit::github::{FakeWorkflow, GitHubFake, RunPlan, TOKEN};

use crate::dist_binary;

const DIGEST: &str = "sha256:5e2f4b5c2d0d5f2b9f9c6f1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The host pid of `parent`'s only child, once it has one.
fn child_of(parent: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[test]
fn as_pid_1_in_a_container_sigterm_cancels_the_integration_run() {
    let Some(binary) = dist_binary() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let mut workflow = FakeWorkflow::new(
        "acme/integration",
        "integration.yml",
        &dispatch_integration::PAYLOAD_INPUTS,
        "integration ${{ inputs.correlation_id }}",
        RunPlan::new(Duration::ZERO, Duration::from_mins(10), "success"),
    );
    workflow.plan = Arc::new(|_| RunPlan::new(Duration::ZERO, Duration::from_mins(10), "success"));
    fake.add_workflow(workflow);

    // The container's root: the binary and the runner's file-command directory, nothing else.
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&binary, root.path().join("gantry")).expect("copy");
    let commands = root.path().join("github/file_commands");
    std::fs::create_dir_all(&commands).expect("mkdir");
    std::fs::write(commands.join("output"), "").expect("output file");

    let mut command = Command::new("unshare");
    if !is_root() {
        command.args(["--user", "--map-root-user"]);
    }
    let mut child = command
        .args(["--pid", "--fork", "--root"])
        .arg(root.path())
        .args(["/gantry", "dispatch-integration", "--action"])
        .env_clear()
        .env("INPUT_REPOSITORY", "acme/integration")
        .env("INPUT_WORKFLOW", "integration.yml")
        .env("INPUT_IMAGE", "ghcr.io/acme/billing")
        .env("INPUT_DIGEST", DIGEST)
        .env("INPUT_GITHUB-TOKEN", TOKEN)
        .env("INPUT_GITHUB-API-URL", fake.url())
        .env("GITHUB_OUTPUT", "/github/file_commands/output")
        .env("GITHUB_REPOSITORY", "acme/billing")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("GITHUB_RUN_ID", "77")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare");
    assert!(
        fake.wait_for_runs(1, Duration::from_secs(30)),
        "the run was dispatched"
    );
    std::thread::sleep(Duration::from_secs(2));
    let pid = child_of(child.id()).expect("the container's process");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .expect("NSpid");
    assert!(
        nspid.split_whitespace().last() == Some("1"),
        "gantry is PID 1 in its namespace: {nspid}"
    );
    let sent = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(pid).expect("pid")).expect("pid"),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let exited = sent.elapsed();
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    let explain = format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let cancels = fake.cancels();
    assert_eq!(cancels.len(), 1, "the run was cancelled\n{explain}");
    let took = cancels[0].1.saturating_duration_since(sent);
    assert!(
        took < Duration::from_secs(2),
        "cancelled {took:?} after SIGTERM"
    );
    assert!(
        exited < Duration::from_secs(3),
        "exited {exited:?} after SIGTERM\n{explain}"
    );
    assert_eq!(output.status.code(), Some(1), "{explain}");
    let outputs = std::fs::read_to_string(commands.join("output")).expect("outputs");
    let parsed = gantry_actions::files::parse_outputs(&outputs).expect("outputs parse");
    assert_eq!(parsed["conclusion"], "cancelled", "{outputs}");
}
