//! What promote-digest reports: its outputs, the one way it refuses, the summary's pieces.

use std::fmt::Write as _;

use gantry_actions::Outcome;
use gantry_oci::{Digest, Reference};

gantry_actions::outputs! {
    /// The outputs of a promotion.
    pub struct Report {
        /// The digest promoted.
        digest: "digest",
        /// The reference the target environment now points at.
        target_ref: "target-ref",
        /// What the target pointed at before (empty if nothing): the rollback target.
        previous_digest: "previous-digest",
        /// `true` when the target moved, `false` when it already pointed at the digest.
        promoted: "promoted",
        /// Registry requests the promotion made.
        requests: "requests",
        /// The GitHub Deployment recording the promotion (empty when none was recorded).
        deployment_id: "deployment-id",
        /// The commit that wrote the digest into the GitOps files (in mode pull-request: the pull request's head).
        gitops_commit: "gitops-commit",
        /// The pull request that proposes the digest (mode pull-request; the environment holds it once merged).
        gitops_pull_request: "gitops-pull-request",
        /// The commit the Argo CD application was seen running (empty when not waited for).
        argocd_revision: "argocd-revision",
    }
}

/// Why a promotion was refused: a check failed (exit 1), and nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The policy has no such path.
    Forbidden(String),
    /// The actor may not take the path.
    NotAllowed(String),
    /// The source environment does not hold the digest.
    SourceElsewhere {
        /// The environment.
        source_env: String,
        /// Its reference.
        source: Reference,
        /// What it points at.
        found: Digest,
        /// The digest asked for.
        digest: Digest,
    },
    /// A check after the source (signature, gate, something moved meanwhile) failed before the
    /// copy.
    Unchanged {
        /// What failed.
        reason: String,
        /// The target, which was not changed.
        target: Reference,
    },
    /// Someone else wrote another digest into the GitOps files between the read before the
    /// gates and the write: nothing written.
    GitOpsConflict(String),
    /// The source environment's GitOps files (it has no registry tag) do not hold the digest.
    SourceFiles(String),
    /// The digest is in the GitOps files, but Argo CD did not run it (failed, degraded, or not by
    /// the deadline).
    NotDeployed(String),
    /// The target moved again right after the copy: someone else is promoting at once.
    Raced {
        /// The target.
        target: Reference,
        /// What it points at now.
        found: Digest,
        /// The digest promoted.
        digest: Digest,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Forbidden(reason)
            | Self::NotAllowed(reason)
            | Self::GitOpsConflict(reason)
            | Self::NotDeployed(reason)
            | Self::SourceFiles(reason) => f.write_str(reason),
            Self::SourceElsewhere {
                source_env,
                source,
                found,
                digest,
            } => write!(
                f,
                "source environment {source_env} ({source}) points at {found}, not {digest}; promote the digest that passed {source_env}"
            ),
            Self::Unchanged { reason, target } => {
                write!(f, "{reason}; {target} was not changed")
            }
            Self::Raced {
                target,
                found,
                digest,
            } => write!(
                f,
                "{target} points at {found} right after the promotion of {digest}: someone else moved it concurrently"
            ),
        }
    }
}

impl Refusal {
    /// The failed outcome (exit 1), with the summary written so far.
    pub fn outcome(&self, summary: String) -> Outcome {
        let outcome = Outcome::failed(self.to_string());
        if summary.is_empty() {
            outcome
        } else {
            outcome.summary(summary)
        }
    }
}

/// The summary's account of what travelled with the digest.
pub fn carried(report: &gantry_oci::CopyReport, requests: u64) -> String {
    const LISTED: usize = 20;
    let mut out = format!(
        "\n### Carried along\n\n{} referrer(s), {} legacy cosign tag(s); {} blob(s) mounted, {} uploaded, {} already there; {requests} request(s).\n",
        report.referrers.len(),
        report.legacy_tags.len(),
        report.blobs_mounted,
        report.blobs_uploaded,
        report.blobs_present,
    );
    for digest in report.referrers.iter().take(LISTED) {
        let _ = writeln!(out, "- referrer `{digest}`");
    }
    for tag in report.legacy_tags.iter().take(LISTED) {
        let _ = writeln!(out, "- tag `{tag}`");
    }
    let hidden = report.referrers.len().saturating_sub(LISTED)
        + report.legacy_tags.len().saturating_sub(LISTED);
    if hidden > 0 {
        let _ = writeln!(out, "- … and {hidden} more");
    }
    out
}

/// The edits, a line each: `` - `file:line` path: `old` → `new` ``.
pub fn edits(changes: &[gantry_gitops::Change]) -> String {
    let mut text = String::new();
    for change in changes {
        let _ = writeln!(
            text,
            "- `{}:{}` {}: `{}` → `{}`",
            change.file,
            change.line,
            change.path,
            if change.old.is_empty() {
                "(new)"
            } else {
                &change.old
            },
            change.new
        );
    }
    text
}

/// The refusal when the GitOps files hold another digest than the one read before the checks.
pub fn gitops_conflict(
    target: &str,
    expected: Option<String>,
    found: Option<String>,
    commit: Option<gantry_github::CommitSummary>,
) -> Refusal {
    let name = |d: Option<String>| d.unwrap_or_else(|| "nothing".to_owned());
    let by = commit.map_or_else(String::new, |c| {
        format!(" (commit {}: {})", c.sha, c.subject)
    });
    Refusal::GitOpsConflict(format!(
        "{target} now holds {}{by}, not {} as read before the checks: someone else promoted meanwhile; nothing was written",
        name(found),
        name(expected)
    ))
}

/// A promotion's pull request body: what is proposed, the edits, what was verified (the
/// summary's checks so far), and what the verified-digest status means.
pub fn pull_request_body(
    image: &str,
    digest: &str,
    environment: &str,
    previous: Option<&str>,
    changes: &[gantry_gitops::Change],
    verification: &str,
) -> String {
    let mut text = format!(
        "Promotes `{image}@{digest}` to **{environment}** (it holds `{}` now).\n\n### Edits\n\n{}",
        previous.unwrap_or("nothing"),
        edits(changes)
    );
    let checks = verification
        .split_once("\n### ")
        .map(|(_, rest)| format!("\n### {rest}"))
        .unwrap_or_default();
    text.push_str(&checks);
    let _ = write!(
        text,
        "\n---\nThe commit status `gantry/verified-digest` on this pull request's head names the digest gantry verified. Require it in the branch protection of the base (with stale approvals dismissed) so that only the commit gantry wrote, with this digest, can be merged. A newer promotion to {environment} replaces this pull request's commit.\n"
    );
    text
}
