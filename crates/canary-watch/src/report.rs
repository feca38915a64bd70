//! What canary-watch reports: outputs, the reason a decision names, the step summary.

use std::fmt::Write as _;
use std::time::Duration;

use crate::decide::{Cause, Decision, Verdict};
use crate::watch::{Tick, Watched};

gantry_actions::outputs! {
    /// The outputs of a watch.
    pub struct Report {
        /// healthy, rolled-back, would-roll-back (rollback: false), hold, inconclusive, superseded or cancelled.
        outcome: "outcome",
        /// The canary's digest.
        digest: "digest",
        /// The digest rolled back to (or that would be).
        previous_digest: "previous-digest",
        /// Whether the environment was rolled back (true/false).
        rolled_back: "rolled-back",
        /// Why: the deciding check, its value, the bound, the streak and the tick times.
        reason: "reason",
        /// From the start of the watch to the decision, in milliseconds.
        decide_ms: "decide-ms",
        /// From the decision to the tag re-pointed and read back, in milliseconds.
        repoint_ms: "repoint-ms",
        /// What the on-rollback hook did (empty without one).
        redeploy: "redeploy",
        /// From the decision to `recovered-when` holding, in milliseconds (empty when it did not).
        recover_ms: "recover-ms",
        /// Registry requests the rollback took.
        rollback_requests: "rollback-requests",
        /// Counted ticks.
        ticks: "ticks",
        /// Failing ticks in all.
        failures: "failures",
        /// The GitHub Deployment recording the rollback.
        deployment_id: "deployment-id",
        /// The signed canary verdict attached to the digest (with attest).
        attestation_digest: "attestation-digest",
        /// Every tick's measurements (JSON).
        measurements: "measurements",
    }
}

/// The word for a decision.
pub fn outcome_word(decision: Decision, rollback: bool) -> &'static str {
    match decision {
        Decision::Healthy { .. } => "healthy",
        Decision::RollBack { .. } if rollback => "rolled-back",
        Decision::RollBack { .. } => "would-roll-back",
        Decision::Hold => "hold",
        Decision::Inconclusive => "inconclusive",
        Decision::Superseded => "superseded",
    }
}

fn seconds(at: Duration) -> String {
    format!("{:.1} s", at.as_secs_f64())
}

/// The sentence that says why the watch decided as it did, with the deciding tick's values.
pub fn reason(watched: &Watched) -> String {
    if let Some(moved) = &watched.superseded {
        return moved.clone();
    }
    let Some(last) = watched.ticks.iter().rev().find(|t| t.counted) else {
        return "no tick was counted".to_owned();
    };
    let streaks = last.streaks;
    let (what, kind) = match watched.decision {
        Decision::Healthy { early: true } => (
            format!("{} passing ticks in a row", streaks.successes),
            Verdict::Pass,
        ),
        Decision::Healthy { early: false } => (
            format!(
                "{} of {} ticks passed, {} failed, none decided a rollback",
                streaks.total_passes, streaks.ticks, streaks.total_failures
            ),
            Verdict::Pass,
        ),
        Decision::RollBack {
            cause: Cause::ConsecutiveFailures,
        } => (
            format!("{} failing ticks in a row", streaks.failures),
            Verdict::Fail,
        ),
        Decision::RollBack {
            cause: Cause::TotalFailures,
        } => (
            format!("{} failing ticks in all", streaks.total_failures),
            Verdict::Fail,
        ),
        Decision::RollBack {
            cause: Cause::Errors,
        }
        | Decision::Hold => (
            format!("{} error ticks in a row", streaks.errors),
            Verdict::Error,
        ),
        Decision::Inconclusive => (
            format!("{} inconclusive ticks in a row", streaks.inconclusive),
            Verdict::Inconclusive,
        ),
        Decision::Superseded => ("superseded".to_owned(), Verdict::Error),
    };
    let deciding: Vec<String> = last
        .measurements
        .iter()
        .filter(|m| m.verdict == kind)
        .map(|m| format!("{}: {} (bound {})", m.check, m.value, m.bound))
        .collect();
    let first = streak_start(watched, kind).unwrap_or(last);
    let mut text = format!(
        "{what}, ticks {}–{} ({}–{} after the start)",
        first.number,
        last.number,
        seconds(first.at),
        seconds(last.at)
    );
    if !deciding.is_empty() && kind != Verdict::Pass {
        let _ = write!(text, "; last tick: {}", deciding.join("; "));
    }
    text
}

/// The first tick of the streak of `kind` that ends with the last counted tick.
fn streak_start(watched: &Watched, kind: Verdict) -> Option<&Tick> {
    let counted: Vec<&Tick> = watched.ticks.iter().filter(|t| t.counted).collect();
    let mut start = None;
    for tick in counted.iter().rev() {
        match tick.verdict {
            v if v == kind => start = Some(*tick),
            // Errors and inconclusive ticks do not break a failure streak (unless strict,
            // where the engine would not have decided across them).
            Verdict::Error | Verdict::Inconclusive if kind == Verdict::Fail => {}
            _ => break,
        }
    }
    start
}

fn cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
        Verdict::Error => "⚠️",
        Verdict::Inconclusive => "❔",
    }
}

/// The most tick rows in the summary (the JSON output carries all of them).
const SUMMARY_ROWS: usize = 120;

/// The per-tick table of measurements.
pub fn ticks_table(watched: &Watched) -> String {
    let mut text = String::from(
        "\n### Ticks\n\n| # | at | verdict | measurements | streak (fail/err/inc/ok) |\n|---|---|---|---|---|\n",
    );
    let skip = watched.ticks.len().saturating_sub(SUMMARY_ROWS);
    if skip > 0 {
        let _ = writeln!(
            text,
            "| … | | | {skip} earlier ticks in the `measurements` output | |"
        );
    }
    for tick in watched.ticks.iter().skip(skip) {
        let mut values: Vec<String> = tick
            .measurements
            .iter()
            .map(|m| {
                format!(
                    "{} {}: {} ({})",
                    mark(m.verdict),
                    m.check,
                    cell(&m.value),
                    cell(&m.bound)
                )
            })
            .collect();
        if let Some(control) = &tick.control {
            values.push(format!(
                "{} control: {}",
                mark(control.verdict),
                cell(&control.value)
            ));
        }
        let s = tick.streaks;
        let _ = writeln!(
            text,
            "| {}{} | {} | {} | {} | {}/{}/{}/{} |",
            tick.number,
            if tick.counted { "" } else { " (warm-up)" },
            seconds(tick.at),
            mark(tick.verdict),
            values.join("<br>"),
            s.failures,
            s.errors,
            s.inconclusive,
            s.successes
        );
    }
    text
}
