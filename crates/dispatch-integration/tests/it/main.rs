//! dispatch-integration against the fake GitHub behind prism (every request and response checked
//! against GitHub's OpenAPI description), run as the binary, as a pipeline runs it.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_testkit::github::{FakeWorkflow, GitHubFake, RunPlan, TOKEN, Throttle};
use serde_json::{Map, Value, json};

const DIGEST: &str = "sha256:5e2f4b5c2d0d5f2b9f9c6f1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a";
const INTEGRATION: &str = "acme/integration";

macro_rules! fake {
    () => {
        match GitHubFake::start().expect("fake GitHub") {
            Some(fake) => fake,
            None => return,
        }
    };
}

/// A verdict as the reporter writes it, for the inputs the run received.
fn verdict_for(values: &Map<String, Value>, verdict: &str) -> Vec<u8> {
    let text = |key: &str| values.get(key).and_then(Value::as_str).unwrap_or_default();
    serde_json::to_vec(&json!({
        "schema": "https://gantry.dev/schemas/verdict/v1",
        "verdict": verdict,
        "image": text("image"),
        "digest": text("digest"),
        "source_repository": text("source_repository"),
        "source_commit": text("source_commit"),
        "correlation_id": text("correlation_id"),
        "run_id": 1,
        "run_attempt": 1,
        "run_url": "https://github.com/acme/integration/actions/runs/1",
        "jobs": [{"name": "test", "conclusion": "success"}],
        "tests": {"passed": 12, "failed": 0, "skipped": 1},
    }))
    .expect("verdict")
}

/// The receiving workflow: `run-name` carries the correlation id, runs follow `plan`, a
/// successful run uploads a passing verdict.
fn workflow(queued: Duration, running: Duration, conclusion: &'static str) -> FakeWorkflow {
    let mut inputs = dispatch_integration::PAYLOAD_INPUTS.to_vec();
    inputs.push("suite");
    let mut workflow = FakeWorkflow::new(
        INTEGRATION,
        "integration.yml",
        &inputs,
        "integration ${{ inputs.source_repository }} ${{ inputs.correlation_id }}",
        RunPlan::new(queued, running, conclusion),
    );
    workflow.dispatch_types = vec!["integration".to_owned()];
    workflow.plan = Arc::new(move |values| {
        let mut plan = RunPlan::new(queued, running, conclusion);
        plan.verdict = Some(verdict_for(values, "passed"));
        plan
    });
    workflow
}

fn command(fake: &GitHubFake, run_id: u64) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dispatch-integration"));
    command
        .args(["--json", "--github-api-url", &fake.url()])
        .env("GANTRY_GITHUB_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", "acme/billing")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("GITHUB_RUN_ID", run_id.to_string())
        .env("GITHUB_RUN_ATTEMPT", "1")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env_remove("GITHUB_API_URL")
        .env_remove("GITHUB_OUTPUT");
    command
}

/// The caller dispatching to `integration.yml` in the background, once its run exists.
fn spawned(fake: &GitHubFake, run_id: u64) -> std::process::Child {
    let child = command(fake, run_id)
        .args(dispatch_args(true))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(
        fake.wait_for_runs(1, Duration::from_secs(20)),
        "no run was dispatched"
    );
    child
}

fn dispatch_args(workflow: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "--repository",
        INTEGRATION,
        "--image",
        "ghcr.io/acme/billing",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(["--digest".to_owned(), DIGEST.to_owned()]);
    if workflow {
        args.extend(["--workflow".to_owned(), "integration.yml".to_owned()]);
    } else {
        args.extend(["--event-type".to_owned(), "integration".to_owned()]);
    }
    args
}

fn json_of(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn explain(output: &Output, fake: &GitHubFake) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}\nprism: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        fake.prism_log()
            .lines()
            .filter(|l| l.contains("rror") || l.contains("iolation"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

#[test]
fn a_passing_run_brings_its_verdict_back_and_waiting_costs_few_counted_calls() {
    let fake = fake!();
    fake.add_workflow(workflow(
        Duration::from_secs(1),
        Duration::from_secs(6),
        "success",
    ));
    let output = command(&fake, 101)
        .args(dispatch_args(true))
        .args(["--inputs", "suite=smoke"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", explain(&output, &fake));
    let json = json_of(&output);
    let outputs = &json["outputs"];
    assert_eq!(outputs["conclusion"], "success");
    assert_eq!(outputs["tests-passed"], "12");
    let runs = fake.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(outputs["run-id"], runs[0].id.to_string());
    let verdict: Value =
        serde_json::from_str(outputs["verdict"].as_str().expect("verdict")).expect("json");
    assert_eq!(verdict["digest"], DIGEST);
    assert_eq!(verdict["correlation_id"], outputs["correlation-id"]);
    // Polled with ETags: the run's reads that counted are the first and one per change.
    let run_path = format!("GET /repos/{INTEGRATION}/actions/runs/{}", runs[0].id);
    let answers: Vec<u16> = fake
        .answers()
        .into_iter()
        .filter(|(line, _)| *line == run_path)
        .map(|(_, status)| status)
        .collect();
    let counted = answers.iter().filter(|s| **s != 304).count();
    assert!(answers.len() >= 3, "polled: {answers:?}");
    assert!(counted <= 3, "counted reads of the run: {answers:?}");
}

#[test]
fn without_wait_the_run_is_found_named_and_read_once() {
    let fake = fake!();
    fake.add_workflow(workflow(Duration::ZERO, Duration::from_mins(5), "success"));
    let output = command(&fake, 105)
        .args(dispatch_args(true))
        .args(["--wait", "false"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", explain(&output, &fake));
    let outputs = json_of(&output)["outputs"].clone();
    let id = fake.runs()[0].id;
    assert_eq!(outputs["run-id"], id.to_string());
    assert_eq!(
        outputs["run-url"],
        format!("https://github.com/{INTEGRATION}/actions/runs/{id}")
    );
    assert_eq!(outputs["conclusion"], "", "nothing concluded yet");
    let reads = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with(&format!("GET /repos/{INTEGRATION}/actions/runs/{id}")))
        .count();
    assert_eq!(reads, 1, "{:?}", fake.requests());
}

#[test]
fn the_verdict_arrives_within_15_s_of_the_run_ending_and_rate_limits_are_sat_out() {
    let fake = fake!();
    let (queued, running) = (Duration::from_secs(1), Duration::from_secs(20));
    fake.add_workflow(workflow(queued, running, "success"));
    let started = Instant::now();
    let child = spawned(&fake, 102);
    // GitHub limits the caller twice while it waits: a 429 with retry-after, then an exhausted
    // primary limit until its reset.
    std::thread::sleep(Duration::from_secs(3));
    fake.throttle(&[Throttle::RetryAfter, Throttle::PrimaryExhausted]);
    let output = child.wait_with_output().expect("wait");
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(0), "{}", explain(&output, &fake));
    assert_eq!(json_of(&output)["outputs"]["conclusion"], "success");
    let after = took.saturating_sub(queued + running);
    assert!(
        after < Duration::from_secs(15),
        "the verdict came {after:?} after the run ended"
    );
    assert_eq!(
        fake.requests().len() - fake.answers().len(),
        2,
        "both limits were met (a throttled request is refused before it is answered)"
    );
}

#[test]
fn a_run_cancelled_by_hand_or_timed_out_by_github_fails_the_caller_with_its_conclusion() {
    let fake = fake!();
    fake.add_workflow(workflow(Duration::ZERO, Duration::from_mins(5), "success"));
    let child = spawned(&fake, 103);
    std::thread::sleep(Duration::from_secs(1));
    fake.cancel_by_hand(fake.runs()[0].id);
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output, &fake));
    let json = json_of(&output);
    assert_eq!(
        json["outputs"]["conclusion"], "cancelled",
        "not in a group: not superseded"
    );
    assert!(
        json["failure"]
            .as_str()
            .unwrap_or_default()
            .contains("concluded cancelled"),
        "{json}"
    );

    let fake = fake!();
    fake.add_workflow(workflow(
        Duration::ZERO,
        Duration::from_secs(1),
        "timed_out",
    ));
    let output = command(&fake, 104)
        .args(dispatch_args(true))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output, &fake));
    assert_eq!(json_of(&output)["outputs"]["conclusion"], "timed_out");
}

fn concurrent_callers(fake: &GitHubFake, workflow_dispatch: bool) {
    // Runs started by others, before and during the callers' dispatches.
    let other = |n: u64| -> Map<String, Value> {
        let Value::Object(map) = json!({
            "source_repository": format!("acme/other-{n}"),
            "correlation_id": format!("gantry-{n:020}"),
            "digest": DIGEST,
        }) else {
            unreachable!()
        };
        map
    };
    for n in 0..25 {
        fake.start_run(INTEGRATION, "integration.yml", &other(n));
    }
    let callers: Vec<(u64, std::process::Child)> = (0..50u64)
        .map(|n| {
            let child = command(fake, 5000 + n)
                .args(dispatch_args(workflow_dispatch))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            (n, child)
        })
        .collect();
    for n in 25..50 {
        fake.start_run(INTEGRATION, "integration.yml", &other(n));
    }
    let mut seen = std::collections::HashSet::new();
    let runs = |fake: &GitHubFake| fake.runs();
    for (n, child) in callers {
        let output = child.wait_with_output().expect("wait");
        assert_eq!(
            output.status.code(),
            Some(0),
            "caller {n}: {}",
            explain(&output, fake)
        );
        let json = json_of(&output);
        let id: u64 = json["outputs"]["run-id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("run-id");
        let correlation = json["outputs"]["correlation-id"].as_str().expect("id");
        let run = runs(fake)
            .into_iter()
            .find(|r| r.id == id)
            .expect("the run");
        assert!(
            run.display_title.ends_with(correlation),
            "caller {n} took {} for {correlation}",
            run.display_title
        );
        assert!(seen.insert(id), "two callers took run {id}");
    }
    assert_eq!(seen.len(), 50);
    assert_eq!(
        fake.runs().len(),
        100,
        "one run per dispatch, and the 50 others"
    );
}

#[test]
fn fifty_concurrent_callers_each_find_their_own_run_when_github_names_it() {
    let fake = fake!();
    fake.add_workflow(workflow(
        Duration::from_millis(500),
        Duration::from_secs(2),
        "success",
    ));
    concurrent_callers(&fake, true);
}

#[test]
fn fifty_concurrent_callers_each_find_their_own_run_by_correlation_on_an_old_ghes() {
    let fake = fake!();
    fake.add_workflow(workflow(
        Duration::from_millis(500),
        Duration::from_secs(2),
        "success",
    ));
    fake.act_as_old_ghes(true);
    concurrent_callers(&fake, true);
    assert!(
        fake.answers()
            .iter()
            .any(|(line, status)| line.ends_with("/dispatches") && *status == 400),
        "the GHES refused the field first"
    );
}

#[test]
fn fifty_concurrent_callers_each_find_their_own_run_of_a_repository_dispatch() {
    let fake = fake!();
    let mut receiving = workflow(
        Duration::from_millis(500),
        Duration::from_secs(2),
        "success",
    );
    receiving.run_name =
        "integration ${{ github.event.client_payload.source_repository }} ${{ github.event.client_payload.correlation_id }}"
            .to_owned();
    fake.add_workflow(receiving);
    concurrent_callers(&fake, false);
}

#[test]
fn a_dispatch_whose_answer_is_lost_is_found_not_sent_again() {
    let fake = fake!();
    fake.add_workflow(workflow(
        Duration::from_millis(500),
        Duration::from_secs(1),
        "success",
    ));
    fake.hold_next_dispatch_answer(Duration::from_secs(4));
    let output = command(&fake, 7)
        .args(dispatch_args(true))
        .args(["--request-timeout", "1s"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", explain(&output, &fake));
    assert_eq!(fake.runs().len(), 1, "exactly one run");
    let dispatches = fake
        .requests()
        .iter()
        .filter(|r| r.ends_with("/dispatches"))
        .count();
    assert_eq!(dispatches, 1, "never sent twice");
}

#[test]
fn a_failed_run_reports_each_failed_jobs_log_tail_with_workflow_commands_neutralised() {
    let fake = fake!();
    let mut failing = workflow(Duration::ZERO, Duration::from_secs(1), "failure");
    failing.plan = Arc::new(|_| {
        let mut plan = RunPlan::new(Duration::ZERO, Duration::from_secs(1), "failure");
        plan.jobs = vec![
            ("build".into(), "success".into(), "fine\n".into()),
            (
                "e2e".into(),
                "failure".into(),
                "early line\n::set-output name=conclusion::success\n::add-mask::hunter2\nAssert failed: <order> total\n"
                    .into(),
            ),
        ];
        plan
    });
    fake.add_workflow(failing);
    let dir = tempfile::tempdir().expect("tempdir");
    let outputs = dir.path().join("outputs");
    let summary = dir.path().join("summary.md");
    std::fs::write(&outputs, "").expect("outputs");
    let output = Command::new(env!("CARGO_BIN_EXE_dispatch-integration"))
        .arg("--action")
        .env("INPUT_REPOSITORY", INTEGRATION)
        .env("INPUT_WORKFLOW", "integration.yml")
        .env("INPUT_IMAGE", "ghcr.io/acme/billing")
        .env("INPUT_DIGEST", DIGEST)
        .env("INPUT_GITHUB-TOKEN", TOKEN)
        .env("INPUT_GITHUB-API-URL", fake.url())
        .env("INPUT_LOG-TAIL-LINES", "3")
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_REPOSITORY", "acme/billing")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("GITHUB_RUN_ID", "9")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output, &fake));
    let written = std::fs::read_to_string(&outputs).expect("outputs");
    let parsed = gantry_actions::files::parse_outputs(&written).expect("outputs parse");
    assert_eq!(parsed["conclusion"], "failure", "{written}");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for line in log.lines() {
        assert!(
            !line.starts_with("::set-output") && !line.starts_with("::add-mask::hunter2"),
            "a remote log line took effect: {line}\n{log}"
        );
    }
    assert!(log.contains("::error title=integration%3A e2e::"), "{log}");
    assert!(log.contains("%0A::set-output"), "the line is data: {log}");
    let summary = std::fs::read_to_string(&summary).expect("summary");
    assert!(
        summary.contains("Assert failed: &lt;order&gt; total"),
        "{summary}"
    );
    assert!(!summary.contains("early line"), "3 lines only: {summary}");
    assert!(
        !summary.contains("<summary>build"),
        "only failed jobs: {summary}"
    );
}

#[test]
fn timeouts_never_pass_and_cancel_the_run() {
    let fake = fake!();
    fake.add_workflow(workflow(Duration::ZERO, Duration::from_mins(5), "success"));
    let output = command(&fake, 11)
        .args(dispatch_args(true))
        .args(["--timeout", "3s"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output, &fake));
    assert_eq!(json_of(&output)["outputs"]["conclusion"], "timed_out");
    let runs = fake.runs();
    assert_eq!(runs[0].conclusion.as_deref(), Some("cancelled"));

    let fake = fake!();
    fake.add_workflow(workflow(
        Duration::from_mins(5),
        Duration::from_secs(1),
        "success",
    ));
    let output = command(&fake, 12)
        .args(dispatch_args(true))
        .args(["--queue-timeout", "2s", "--cancel-on-timeout", "false"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output, &fake));
    assert_eq!(json_of(&output)["outputs"]["conclusion"], "queue_timeout");
    assert!(fake.cancels().is_empty(), "told not to cancel");
}

#[test]
fn a_run_replaced_in_its_concurrency_group_is_superseded() {
    let fake = fake!();
    let mut grouped = workflow(Duration::from_secs(4), Duration::from_secs(1), "success");
    grouped.concurrency = Some("integration".to_owned());
    fake.add_workflow(grouped);
    let child = spawned(&fake, 21);
    let mut other = Map::new();
    other.insert("correlation_id".into(), "gantry-other".into());
    fake.start_run(INTEGRATION, "integration.yml", &other);
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output, &fake));
    let json = json_of(&output);
    assert_eq!(json["outputs"]["conclusion"], "superseded");
    assert!(
        json["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("queue: max"),
        "{json}"
    );
}

#[test]
fn sigint_cancels_the_remote_run_within_two_seconds() {
    let fake = fake!();
    fake.add_workflow(workflow(Duration::ZERO, Duration::from_mins(5), "success"));
    let child = spawned(&fake, 31);
    std::thread::sleep(Duration::from_secs(2));
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("pid");
    let sent = Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let output = child.wait_with_output().expect("wait");
    let exited = sent.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output, &fake));
    let cancels = fake.cancels();
    assert_eq!(cancels.len(), 1, "{}", explain(&output, &fake));
    let took = cancels[0].1.saturating_duration_since(sent);
    assert!(
        took < Duration::from_secs(2),
        "cancelled {took:?} after SIGINT"
    );
    assert!(
        exited < Duration::from_secs(3),
        "exited {exited:?} after SIGINT"
    );
    assert_eq!(json_of(&output)["outputs"]["conclusion"], "cancelled");
}

#[test]
fn inputs_over_githubs_limits_are_refused_before_any_request() {
    let fake = fake!();
    fake.add_workflow(workflow(Duration::ZERO, Duration::from_secs(1), "success"));
    let many = (0..20)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join("\n");
    let output = command(&fake, 41)
        .args(dispatch_args(true))
        .args(["--inputs", &many])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output, &fake));
    assert!(String::from_utf8_lossy(&output.stderr).contains("at most 25"));
    let mut long = dispatch_args(false);
    long.pop();
    long.push("e".repeat(101));
    let output = command(&fake, 42).args(long).output().expect("run");
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output, &fake));
    let output = command(&fake, 43)
        .args(dispatch_args(true))
        .args(["--inputs", r#"{"retries": 3}"#])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output, &fake));
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

/// The verdict file validates against `verdict.schema.json` with the Python `jsonschema`
/// package (draft 2020-12).
fn validates(verdict: &std::path::Path) {
    let Some(python) = gantry_testkit::component::require_python_module(
        "jsonschema",
        "pip install 'cyclonedx-python-lib[json-validation]==11.12.0' (it brings jsonschema)",
    ) else {
        return;
    };
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/verdict.schema.json");
    let output = Command::new(python)
        .args([
            "-c",
            "import json, sys\nimport jsonschema\nschema = json.load(open(sys.argv[1]))\njsonschema.Draft202012Validator.check_schema(schema)\njsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))\n",
            schema,
        ])
        .arg(verdict)
        .output()
        .expect("python");
    assert!(
        output.status.success(),
        "{} does not validate: {}",
        verdict.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn reporter(fake: &GitHubFake, run_id: u64, attempt: u32, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dispatch-integration"))
        .args(["report", "--json", "--github-api-url", &fake.url()])
        .args([
            "--source-repository",
            "acme/billing",
            "--source-commit",
            "0123456789abcdef0123456789abcdef01234567",
            "--image",
            "ghcr.io/acme/billing",
            "--digest",
            DIGEST,
            "--correlation-id",
            "gantry-0123456789abcdef0123",
            "--allow-source",
            "acme/*",
        ])
        .args(extra)
        .env("GANTRY_GITHUB_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", INTEGRATION)
        .env("GITHUB_RUN_ID", run_id.to_string())
        .env("GITHUB_RUN_ATTEMPT", attempt.to_string())
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env_remove("GITHUB_API_URL")
        .output()
        .expect("run")
}

#[test]
fn the_reporter_reports_back_to_the_service_repository_and_a_rerun_flips_the_verdict() {
    let fake = fake!();
    let mut integration = workflow(Duration::ZERO, Duration::ZERO, "failure");
    integration.plan = Arc::new(|_| RunPlan::new(Duration::ZERO, Duration::ZERO, "failure"));
    fake.add_workflow(integration);
    let run = fake.start_run(INTEGRATION, "integration.yml", &Map::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let verdict_file = dir.path().join("gantry-verdict.json");
    let junit = dir.path().join("results.xml");
    std::fs::write(
        &junit,
        r#"<testsuites><testsuite name="e2e" tests="4" failures="1" errors="0" skipped="0"/></testsuites>"#,
    )
    .expect("junit");
    let file_args = [
        "--verdict-file",
        verdict_file.to_str().expect("utf8"),
        "--test-results",
        junit.to_str().expect("utf8"),
    ];

    let start = reporter(&fake, run, 1, &["--phase", "start"]);
    assert_eq!(start.status.code(), Some(0), "{}", explain(&start, &fake));
    let before = fake.requests().len();
    let failed = reporter(&fake, run, 1, &file_args);
    assert_eq!(failed.status.code(), Some(1), "{}", explain(&failed, &fake));
    assert!(fake.requests().len() - before <= 5, "{:?}", fake.requests());
    let statuses = fake.commit_statuses("acme/billing", "0123456789abcdef0123456789abcdef01234567");
    let states: Vec<&str> = statuses
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(states, ["pending", "failure"]);
    assert_eq!(statuses[1]["context"], "gantry/integration/acme/billing");
    let deployments = fake.deployments();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["environment"], "integration");
    assert_eq!(deployments[0]["payload"]["digest"], DIGEST);
    let written: Value =
        serde_json::from_slice(&std::fs::read(&verdict_file).expect("verdict")).expect("json");
    assert_eq!(written["verdict"], "failed");
    validates(&verdict_file);
    assert_eq!(written["tests"]["failed"], 1);

    // The re-run attempt passes: the same deployment gets the new verdict.
    fake.rerun(run, RunPlan::new(Duration::ZERO, Duration::ZERO, "success"));
    std::fs::write(
        &junit,
        r#"<testsuites><testsuite name="e2e" tests="4" failures="0" errors="0" skipped="0"/></testsuites>"#,
    )
    .expect("junit");
    let passed = reporter(&fake, run, 2, &file_args);
    assert_eq!(passed.status.code(), Some(0), "{}", explain(&passed, &fake));
    let statuses = fake.commit_statuses("acme/billing", "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(statuses.last().expect("status")["state"], "success");
    assert_eq!(fake.deployments().len(), 1, "one deployment per run");
    let id = fake.deployments()[0]["id"].as_u64().expect("id");
    let states: Vec<Value> = fake
        .statuses(id)
        .iter()
        .map(|s| s["state"].clone())
        .collect();
    assert_eq!(states, [json!("failure"), json!("success")]);

    // A source outside the allow-list gets nothing.
    let before = fake.requests().len();
    let refused = Command::new(env!("CARGO_BIN_EXE_dispatch-integration"))
        .args(["report", "--json", "--github-api-url", &fake.url()])
        .args([
            "--source-repository",
            "evil/billing",
            "--source-commit",
            "abc",
            "--image",
            "ghcr.io/evil/billing",
            "--digest",
            DIGEST,
            "--correlation-id",
            "gantry-x",
            "--allow-source",
            "acme/*",
        ])
        .env("GANTRY_GITHUB_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", INTEGRATION)
        .env("GITHUB_RUN_ID", run.to_string())
        .output()
        .expect("run");
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        explain(&refused, &fake)
    );
    assert_eq!(fake.requests().len(), before, "nothing sent");
}
