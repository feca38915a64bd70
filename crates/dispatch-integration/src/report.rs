//! What dispatch-integration reports: its outputs, summary and annotations.

use std::fmt::Write as _;

use gantry_actions::{Annotation, Level, Outcome};

use crate::verdict::Verdict;

gantry_actions::outputs! {
    /// The outputs of a run.
    pub struct Report {
        /// The integration run's id.
        run_id: "run-id",
        /// The integration run's page.
        run_url: "run-url",
        /// The integration run's attempt.
        run_attempt: "run-attempt",
        /// How it ended: success, failure, cancelled, timed_out, queue_timeout, superseded, … (the reporter: passed, failed or pending).
        conclusion: "conclusion",
        /// The correlation id sent (the integration run's `run-name` carries it).
        correlation_id: "correlation-id",
        /// The integration run's `gantry-verdict.json`, as read back and checked.
        verdict: "verdict",
        /// Tests passed, from the verdict.
        tests_passed: "tests-passed",
        /// Tests failed, from the verdict.
        tests_failed: "tests-failed",
        /// The reporter's test-result attestation (with attest).
        attestation_digest: "attestation-digest",
    }
}

/// A failed job and its log's tail.
pub struct FailedJob {
    pub name: String,
    pub conclusion: String,
    pub url: Option<String>,
    pub tail: Option<String>,
}

/// What the caller saw, for the outcome.
pub struct Seen {
    pub repository: String,
    pub run_id: Option<u64>,
    pub run_url: Option<String>,
    pub run_attempt: Option<u32>,
    pub conclusion: String,
    pub correlation_id: String,
    pub digest: String,
    pub verdict: Option<Verdict>,
    pub failed_jobs: Vec<FailedJob>,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Notes for people (a hint, a warning).
    pub notes: Vec<String>,
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The caller's outcome.
pub fn caller_outcome(seen: &Seen) -> Outcome {
    let report = Report {
        run_id: seen.run_id.map(|id| id.to_string()).unwrap_or_default(),
        run_url: seen.run_url.clone().unwrap_or_default(),
        run_attempt: seen.run_attempt.map(|a| a.to_string()).unwrap_or_default(),
        conclusion: seen.conclusion.clone(),
        correlation_id: seen.correlation_id.clone(),
        verdict: seen
            .verdict
            .as_ref()
            .and_then(|v| serde_json::to_string(v).ok())
            .unwrap_or_default(),
        tests_passed: seen
            .verdict
            .as_ref()
            .and_then(|v| v.tests)
            .map(|t| t.passed.to_string())
            .unwrap_or_default(),
        tests_failed: seen
            .verdict
            .as_ref()
            .and_then(|v| v.tests)
            .map(|t| t.failed.to_string())
            .unwrap_or_default(),
        attestation_digest: String::new(),
    };
    let run = match (&seen.run_url, seen.run_id) {
        (Some(url), Some(id)) => format!("[run {id}]({url})"),
        (None, Some(id)) => format!("run {id}"),
        _ => "no run found".to_owned(),
    };
    let mut summary = format!(
        "## gantry dispatch-integration\n\n| | |\n|---|---|\n| integration | `{}` {run} |\n| digest | `{}` |\n| correlation | `{}` |\n| conclusion | **{}** |\n",
        seen.repository, seen.digest, seen.correlation_id, seen.conclusion
    );
    if let Some(tests) = seen.verdict.as_ref().and_then(|v| v.tests) {
        let _ = writeln!(
            summary,
            "| tests | {} passed, {} failed, {} skipped |",
            tests.passed, tests.failed, tests.skipped
        );
    }
    for note in &seen.notes {
        let _ = write!(summary, "\n> {}\n", html(note));
    }
    let mut outcome = Outcome::success().with_outputs(&report);
    for job in &seen.failed_jobs {
        let _ = write!(
            summary,
            "\n<details><summary>{}: {}</summary>\n\n<pre>{}</pre>\n</details>\n",
            html(&job.name),
            html(&job.conclusion),
            html(job.tail.as_deref().unwrap_or("(no log)"))
        );
        let last: Vec<&str> = job
            .tail
            .as_deref()
            .unwrap_or_default()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let mut message = format!("integration job {:?} {}", job.name, job.conclusion);
        if let Some(url) = &job.url {
            let _ = write!(message, " ({url})");
        }
        if !last.is_empty() {
            let _ = write!(message, "\n{}", last.join("\n"));
        }
        outcome = outcome.annotate(
            Annotation::new(Level::Error, message).title(format!("integration: {}", job.name)),
        );
    }
    let headline = match &seen.failure {
        None => format!(
            "{}: integration {run} passed for {}",
            seen.repository, seen.digest
        ),
        Some(why) => format!("{}: {why}", seen.repository),
    };
    outcome = outcome.summary(summary).headline(headline);
    match &seen.failure {
        Some(why) => {
            let mut failed = outcome;
            failed.failure = Some(why.clone());
            failed
        }
        None => outcome,
    }
}
