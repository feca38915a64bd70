//! What waiting costs: `dispatch-integration` waits out a 10-minute and a 30-minute integration
//! run on the fake GitHub behind prism, and every request the fake answers is counted, the 304s (which GitHub does
//! not count against the rate limit) apart. Also measured: how long after the run ends the caller
//! has its verdict. Writes `<target>/criterion/dispatch-report.json` for `cargo xtask bench
//! dispatch`. `GANTRY_BENCH_WAIT_SECS` shortens the run (a quick look; the section says so).

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_testkit::github::{FakeWorkflow, GitHubFake, RunPlan, TOKEN};
use serde_json::{Value, json};

const INTEGRATION: &str = "acme/integration";
const DIGEST: &str = "sha256:5e2f4b5c2d0d5f2b9f9c6f1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a";

/// Waits out one integration run of `wait` on a fake GitHub of its own: what it cost.
fn measure(wait: Duration) -> Value {
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        panic!("prism is not installed: run the set-up (cargo xtask setup)");
    };
    let queued = Duration::from_secs(5);
    let mut workflow = FakeWorkflow::new(
        INTEGRATION,
        "integration.yml",
        &dispatch_integration::PAYLOAD_INPUTS,
        "integration ${{ inputs.source_repository }} ${{ inputs.correlation_id }}",
        RunPlan::new(queued, wait, "success"),
    );
    workflow.plan = Arc::new(move |values| {
        let text = |key: &str| values.get(key).and_then(Value::as_str).unwrap_or_default();
        let mut plan = RunPlan::new(queued, wait, "success");
        plan.verdict = Some(
            serde_json::to_vec(&json!({
                "schema": "https://gantry.dev/schemas/verdict/v1",
                "verdict": "passed",
                "image": text("image"),
                "digest": text("digest"),
                "source_repository": text("source_repository"),
                "source_commit": text("source_commit"),
                "correlation_id": text("correlation_id"),
                "run_id": 1,
                "run_attempt": 1,
                "run_url": "https://github.com/acme/integration/actions/runs/1",
                "jobs": [{"name": "test", "conclusion": "success"}],
            }))
            .expect("verdict"),
        );
        plan
    });
    fake.add_workflow(workflow);
    println!(
        "dispatch: waiting out a {} s integration run (queued {} s) …",
        wait.as_secs(),
        queued.as_secs()
    );
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_dispatch-integration"))
        .args(["--json", "--github-api-url", &fake.url()])
        .args(["--repository", INTEGRATION, "--workflow", "integration.yml"])
        .args(["--image", "ghcr.io/acme/billing", "--digest", DIGEST])
        .args(["--timeout", "60m"])
        .env("GANTRY_GITHUB_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", "acme/billing")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("GITHUB_RUN_ID", "1")
        .env_remove("GITHUB_API_URL")
        .output()
        .expect("run dispatch-integration");
    let took = started.elapsed();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let answers = fake.answers();
    let total = answers.len();
    let counted = answers.iter().filter(|(_, s)| *s != 304).count();
    // The run ended `queued + wait` after its creation, which followed the start by a request.
    let latency = took.saturating_sub(queued + wait);
    let minutes = took.as_secs_f64() / 60.0;
    json!({
        "wait_seconds": wait.as_secs(),
        "queued_seconds": queued.as_secs(),
        "elapsed_seconds": took.as_secs_f64(),
        "requests": total,
        "counted": counted,
        "not_modified": total - counted,
        "counted_per_minute": f64::from(u32::try_from(counted).unwrap_or(u32::MAX)) / minutes,
        "verdict_latency_seconds": latency.as_secs_f64(),
    })
}

fn main() {
    // A 10-minute and a 30-minute wait, side by side (each on its own fake).
    let ten = std::env::var("GANTRY_BENCH_WAIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_mins(10), Duration::from_secs);
    let runs: Vec<Value> = [ten, ten * 3]
        .map(|wait| std::thread::spawn(move || measure(wait)))
        .into_iter()
        .map(|t| t.join().expect("measure"))
        .collect();
    let report = json!({
        "runs": runs,
        "cores": std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    });
    println!("{report:#}");
    let dir = gantry_testkit::criterion_dir();
    std::fs::create_dir_all(&dir).expect("criterion dir");
    std::fs::write(dir.join("dispatch-report.json"), report.to_string()).expect("report");
}
