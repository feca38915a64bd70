//! The command line and action inputs of dispatch-integration: the caller's (the service
//! repository) and the reporter's (`report`, the integration repository).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use gantry_args::{GitHubApiArgs, GitHubTokenArgs, RegistryArgs, SigningArgs, parse_duration};
use gantry_oci::Digest;

/// Which side runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Command {
    /// Dispatch the integration run for this digest and wait for its verdict (the service
    /// repository).
    Dispatch,
    /// Report the verdict of this integration run back to the service repository (the
    /// integration repository's last job, `if: always()`).
    Report,
}

/// When the reporter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// At the start of the integration run: a pending commit status.
    Start,
    /// At the end: the verdict.
    End,
}

/// Ask the integration repository to test this exact digest and bring the verdict back; or,
/// with `report`, report an integration run's verdict to the service repository.
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// `dispatch` (the service repository) or `report` (the integration repository).
    #[arg(value_enum, default_value_t = Command::Dispatch, value_name = "COMMAND")]
    pub command: Command,

    /// The integration repository (`owner/name`).
    #[arg(long, value_name = "OWNER/NAME", required_if_eq("command", "dispatch"))]
    pub repository: Option<String>,

    /// The workflow to dispatch (file name such as `integration.yml`, or id): a
    /// `workflow_dispatch`. Its `run-name` must carry the correlation id (input `correlation_id`), where GitHub does not name the run.
    #[arg(long, value_name = "FILE", conflicts_with = "event_type")]
    pub workflow: Option<String>,

    /// Send a `repository_dispatch` of this type instead (the default branch's workflows; GitHub
    /// names no run, so the receiving `run-name` must carry the payload's `correlation_id`).
    #[arg(long, value_name = "TYPE")]
    pub event_type: Option<String>,

    /// The branch or tag the workflow runs on (`workflow_dispatch`).
    #[arg(long = "ref", value_name = "REF", default_value = "main")]
    pub git_ref: String,

    /// The image under test (`registry/repository`, without tag or digest).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// The digest under test.
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<Digest>,

    /// More inputs for the workflow: a JSON object of strings, or `key=value` lines.
    #[arg(long, value_name = "INPUTS")]
    pub inputs: Option<String>,

    /// Wait for the run's verdict; with `false`, dispatch, find the run and stop.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,

    /// The longest the whole run may take, from the dispatch (`90s`, `30m`, `2h`).
    #[arg(long, value_name = "DURATION", default_value = "60m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// The longest the run may wait to start (queued or pending), from the dispatch.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub queue_timeout: Duration,

    /// The first pause between polls of the run (it grows by half while nothing changes, to at
    /// most 10 s, and restarts when the run changes); the verdict arrives within this of the run
    /// ending. At least 100ms.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_poll_interval)]
    pub poll_interval: Duration,

    /// Cancel the remote run when a timeout ends the wait.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub cancel_on_timeout: bool,

    /// Lines of each failed job's log in the step summary.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=2000))]
    pub log_tail_lines: u32,

    /// The time limit of one request to GitHub.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// The service repository under test (`owner/name`); default `GITHUB_REPOSITORY` when
    /// dispatching.
    #[arg(long, value_name = "OWNER/NAME")]
    pub source_repository: Option<String>,

    /// The commit under test; default `GITHUB_SHA` when dispatching.
    #[arg(long, value_name = "SHA")]
    pub source_commit: Option<String>,

    /// The id tying the integration run to this dispatch (the reporter's input; the caller
    /// derives it).
    #[arg(long, value_name = "ID")]
    pub correlation_id: Option<String>,

    /// The service repositories the reporter may report to (`owner/name` or `owner/*`).
    #[arg(long, value_name = "OWNER/NAME", required_if_eq("command", "report"))]
    pub allow_source: Vec<String>,

    /// When the reporter runs.
    #[arg(long, value_enum, value_name = "PHASE", default_value_t = Phase::End)]
    pub phase: Phase,

    /// A `JUnit` XML or TRX file with the test results (`dotnet test --logger trx`).
    #[arg(long, value_name = "FILE")]
    pub test_results: Option<PathBuf>,

    /// Where the reporter writes the verdict.
    #[arg(long, value_name = "FILE", default_value = crate::VERDICT_FILE)]
    pub verdict_file: PathBuf,

    /// The token the reporter writes to the service repository with (commit statuses: write,
    /// deployments: write); default the GitHub token. Also read from `GANTRY_SOURCE_TOKEN`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GANTRY_SOURCE_TOKEN",
        hide_env_values = true
    )]
    pub source_token: Option<gantry_secret::Secret>,

    /// With `report`: sign an in-toto test-result attestation of the verdict (predicate
    /// `https://in-toto.io/attestation/test-result/v0.1`, `result` PASSED or FAILED) and attach
    /// it to the image, so that a promotion path can require `test-result`.
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub attest: bool,

    /// How the reporter signs the test-result attestation (with `attest`).
    #[command(flatten)]
    pub signing: SigningArgs,

    /// Registry access for the attestation (with `attest`).
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// GitHub's API and the token (the caller's: `actions: write` on the integration repository
    /// for `workflow`, `contents: write` for `event-type`; `GITHUB_TOKEN` cannot dispatch to
    /// another repository).
    #[command(flatten)]
    pub github: GitHubApiArgs,
}

impl Args {
    /// The GitHub token arguments.
    pub fn token(&self) -> &GitHubTokenArgs {
        &self.github.token
    }
}

/// A poll interval: a duration of at least 100ms (GitHub's API is not to be hammered).
fn parse_poll_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    if interval < Duration::from_millis(100) {
        return Err(format!("{text} is shorter than 100ms"));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_interval_is_a_duration_of_at_least_100ms() {
        assert_eq!(parse_poll_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_poll_interval("2s"), Ok(Duration::from_secs(2)));
        let short = parse_poll_interval("50ms").expect_err("too short");
        assert!(short.contains("shorter than 100ms"), "{short}");
        assert!(parse_poll_interval("soon").is_err());
    }
}
