use gantry_actions::files::{SUMMARY_LIMIT, parse_outputs};

use crate::{Runner, SECRET, assert_secret_only_masked, read, text};

#[test]
fn pass_writes_every_output_by_the_runner_rules() {
    let runner = Runner::new();
    std::fs::write(runner.output_file(), "earlier=kept\n").expect("seed output file");
    let message = "100% done\r\nnext line: ::add-mask::x, and a comma";
    let output = runner.run(
        &[
            ("image", "ghcr.io/acme/billing@sha256:abc"),
            ("dry-run", "True"),
            ("tags", "v1\n\n  v1.2  \nlatest\n"),
            ("registry-password", SECRET),
            ("message", message),
        ],
        &[],
    );
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&output.stderr)
    );
    assert_eq!(
        stdout.lines().next(),
        Some(format!("::add-mask::{SECRET}").as_str()),
        "mask comes first"
    );
    assert_secret_only_masked(&output);
    assert!(
        text(&output.stderr).contains("registry_password: Some(<redacted>)"),
        "the log shows the redaction"
    );

    let outputs = parse_outputs(&read(&runner.output_file()).expect("GITHUB_OUTPUT"))
        .expect("runner parses it");
    assert_eq!(outputs["earlier"], "kept", "appended, not overwritten");
    assert_eq!(outputs["image"], "ghcr.io/acme/billing@sha256:abc");
    assert_eq!(outputs["tags"], "v1\nv1.2\nlatest");
    assert_eq!(outputs["dry-run"], "true");
    assert_eq!(outputs["password-set"], "true");
    assert_eq!(
        outputs["message"], message,
        "multi-line value survives byte for byte"
    );
    assert_eq!(outputs.len(), 6);

    // The annotation's untrusted text is escaped so it cannot start a command of its own.
    assert!(
        stdout.contains("::notice title=fixture%3A message::100%25 done%0D%0Anext line: ::add-mask::x, and a comma"),
        "{stdout}"
    );
    assert!(
        read(&runner.summary_file())
            .expect("summary")
            .starts_with("## fixture")
    );
    let group = stdout
        .find("::group::fixture: inputs")
        .expect("group opened");
    assert!(
        stdout[group..].contains("::endgroup::"),
        "group closed after it opened"
    );
}

#[test]
fn a_failed_check_exits_1_and_still_writes_outputs() {
    let runner = Runner::new();
    let output = runner.run(&[("image", "reg/app:1"), ("ending", "fail")], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let outputs = parse_outputs(&read(&runner.output_file()).expect("outputs")).expect("parse");
    assert_eq!(outputs["image"], "reg/app:1");
    assert!(
        text(&output.stdout)
            .contains("::error title=gantry fixture%3A check failed::expected a pass, found ending=fail for reg/app:1"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn an_error_exits_2_with_its_chain_and_writes_no_outputs() {
    let runner = Runner::new();
    let output = runner.run(
        &[
            ("image", "reg/app:1"),
            ("ending", "error"),
            ("registry-password", SECRET),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(read(&runner.output_file()).is_none(), "no partial outputs");
    assert!(read(&runner.summary_file()).is_none(), "no summary");
    let chain = "resolving the fixture image: the registry at reg/app:1 did not answer";
    assert!(
        text(&output.stderr).contains(&format!("error: fixture: {chain}")),
        "{}",
        text(&output.stderr)
    );
    assert!(text(&output.stdout).contains(&format!("::error title=gantry fixture::{chain}")));
    assert_secret_only_masked(&output);
}

#[test]
fn an_undeclared_output_is_an_error_and_writes_nothing() {
    let runner = Runner::new();
    let output = runner.run(
        &[("image", "reg/app:1"), ("ending", "undeclared-output")],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(read(&runner.output_file()).is_none());
    assert!(
        text(&output.stderr).contains("set output \"not-declared\", which it does not declare")
    );
}

#[test]
fn a_missing_required_input_is_named() {
    let runner = Runner::new();
    let output = runner.run(&[("tags", "a")], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("input 'image' is required but was not set"),
        "{}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stdout).contains("::error title=gantry fixture::input 'image' is required")
    );
    assert!(read(&runner.output_file()).is_none());
}

#[test]
fn a_boolean_outside_the_core_schema_is_refused() {
    let runner = Runner::new();
    let output = runner.run(&[("image", "x"), ("dry-run", "yes")], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr)
            .contains("input 'dry-run' must be one of true, True, TRUE, false, False, FALSE")
    );
    assert!(text(&output.stderr).contains("found \"yes\""));
}

#[test]
fn an_invalid_value_is_reported_by_the_same_parser_as_the_cli() {
    let runner = Runner::new();
    let output = runner.run(&[("image", "x"), ("ending", "sideways")], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("invalid value 'sideways' for '--ending <ENDING>'"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn the_summary_is_capped_and_can_be_switched_off() {
    let runner = Runner::new();
    let big = (2 * SUMMARY_LIMIT).to_string();
    let output = runner.run(&[("image", "x"), ("summary-bytes", &big)], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let summary = read(&runner.summary_file()).expect("summary");
    assert!(summary.len() <= SUMMARY_LIMIT, "{} bytes", summary.len());
    assert!(summary.contains("Summary truncated"));

    let quiet = Runner::new();
    let output = quiet.run(&[("image", "x")], &[("GANTRY_STEP_SUMMARY", "false")]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        read(&quiet.summary_file()).is_none(),
        "GANTRY_STEP_SUMMARY=false writes no summary"
    );
    assert!(
        read(&quiet.output_file()).is_some(),
        "outputs are still written"
    );
}

#[test]
fn action_mode_without_github_output_is_a_usage_error() {
    let output = std::process::Command::new(crate::binary())
        .args(["fixture", "--action"])
        .env_clear()
        .env("INPUT_IMAGE", "x")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("GITHUB_OUTPUT is not set"));
}

#[test]
fn action_flag_refuses_command_line_arguments() {
    let output = std::process::Command::new(crate::binary())
        .args(["fixture", "--action", "--image", "x"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("'--action' cannot be used with"));
}
