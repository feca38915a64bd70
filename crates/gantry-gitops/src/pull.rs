//! The pull-request flow over the GitHub API: the edit is proposed on a branch gantry owns
//! (`gantry/<environment>/<app>`), reset to the base branch's head and given exactly one commit,
//! so a newer digest supersedes the older one in the same pull request instead of opening
//! another. The pull request is opened or updated, reviewers and labels are asked for, and the
//! head commit gets a commit status naming the verified digest: with that status required by
//! branch protection, a head that is not the commit gantry wrote cannot be merged.
//!
//! As in the direct commit, the edit is an operation checked against the base: a base whose file
//! holds another digest than the one the promoter saw is a conflict; a base that holds the new one
//! already needs no pull request.

use gantry_github::{
    CommitSummary, GitHub, NewCommit, NewCommitStatus, NewPullRequest, PullRequest,
};

use crate::github::{WriteError, WriteFiles};
use crate::{Change, edit};

/// A promotion proposed as a pull request.
pub struct Proposal<'a> {
    /// The repository, the base branch, the files and targets, digest, expected digest, commit
    /// message, author and committer, as a direct write has them.
    pub write: WriteFiles<'a>,
    /// The head branch gantry owns (`gantry/<environment>/<app>`).
    pub head: &'a str,
    /// The pull request's title.
    pub title: &'a str,
    /// Its body, given the changes and the digest the base held.
    pub body: &'a (dyn Fn(&[Change], Option<&str>) -> String + Sync),
    /// Users asked to review.
    pub reviewers: &'a [String],
    /// Teams (slugs) asked to review.
    pub team_reviewers: &'a [String],
    /// Labels.
    pub labels: &'a [String],
    /// The status set on the head commit (`gantry/verified-digest`).
    pub status: &'a NewCommitStatus,
    /// Turn on GitHub's auto-merge with this method (`MERGE`, `SQUASH`, `REBASE`), for the head
    /// commit written only.
    pub auto_merge: Option<&'a str>,
}

/// How a proposal ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposed {
    /// A pull request proposes the digest in one new commit.
    Proposed {
        /// The pull request.
        pull: PullRequest,
        /// Whether it was opened now (else updated).
        opened: bool,
        /// The commit on the head branch.
        commit: String,
        /// The scalars changed.
        changes: Vec<Change>,
        /// The digest the base holds.
        previous: Option<String>,
        /// The digest the pull request proposed before (superseded now).
        superseded: Option<String>,
        /// Auto-merge, when asked for: on, or why GitHub refused it (the pull request stands).
        auto_merge: Option<Result<(), String>>,
    },
    /// Nothing new to propose: the base holds the digest (`pull: None`), or the open pull request
    /// proposes it already (its status and body refreshed).
    Unchanged {
        /// The open pull request that proposes it.
        pull: Option<PullRequest>,
        /// The digest the base holds.
        previous: Option<String>,
    },
    /// The base holds another digest than the one the promoter saw.
    Conflict {
        /// What this promotion expected to replace.
        expected: Option<String>,
        /// What the base holds now.
        found: Option<String>,
        /// The commit that wrote it.
        commit: Option<CommitSummary>,
    },
}

/// Proposes the digest as a pull request.
pub async fn propose(github: &GitHub, p: &Proposal<'_>) -> Result<Proposed, WriteError> {
    let w = &p.write;
    let base = github
        .branch_head(w.repository, w.branch)
        .await?
        .ok_or_else(|| missing(w, &w.files[0].0))?;
    let at_base = edits_at(github, w, &base).await?;
    if at_base.changes.is_empty() {
        return Ok(Proposed::Unchanged {
            pull: None,
            previous: at_base.previous,
        });
    }
    if let Some(expected) = w.expected
        && at_base.previous.as_deref() != Some(expected)
    {
        let commit = github
            .last_commit(w.repository, &w.files[0].0, w.branch)
            .await?;
        return Ok(Proposed::Conflict {
            expected: Some(expected.to_owned()),
            found: at_base.previous,
            commit,
        });
    }
    let open = github
        .open_pull_request(w.repository, p.head, w.branch)
        .await?;
    let mut superseded = None;
    if let Some(pull) = &open {
        let at_head = edits_at(github, w, &pull.head_sha).await?;
        if at_head.changes.is_empty() {
            let body = (p.body)(&at_base.changes, at_base.previous.as_deref());
            let pull = github
                .update_pull_request(w.repository, pull.number, p.title, &body)
                .await?;
            github
                .create_commit_status(w.repository, &pull.head_sha, p.status)
                .await?;
            return Ok(Proposed::Unchanged {
                pull: Some(pull),
                previous: at_base.previous,
            });
        }
        superseded = at_head.previous;
    }
    // One commit on the base's head; the branch is gantry's and is set to it, whatever it held.
    let message = (w.message)(at_base.previous.as_deref());
    let files: Vec<(&str, &str)> = at_base
        .texts
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let commit = github
        .create_commit(
            w.repository,
            &NewCommit {
                parent: &base,
                files: &files,
                message: &message,
                author: w.author,
                committer: w.committer,
            },
        )
        .await?;
    github
        .set_branch(w.repository, p.head, &commit, true)
        .await?;
    let body = (p.body)(&at_base.changes, at_base.previous.as_deref());
    let (pull, opened) = publish(github, p, open, &body, &commit).await?;
    let auto_merge = match p.auto_merge {
        None => None,
        Some(method) => Some(
            github
                .enable_auto_merge(&pull.node_id, method, &commit)
                .await
                .map_err(|e| e.to_string()),
        ),
    };
    Ok(Proposed::Proposed {
        auto_merge,
        pull,
        opened,
        commit,
        changes: at_base.changes,
        previous: at_base.previous,
        superseded,
    })
}

/// The edits of every file as read at one commit.
struct EditsAt {
    /// The changed files' new texts.
    texts: Vec<(String, String)>,
    changes: Vec<Change>,
    /// What the first file held.
    previous: Option<String>,
}

fn missing(w: &WriteFiles<'_>, file: &str) -> WriteError {
    WriteError::Missing {
        file: file.to_owned(),
        branch: w.branch.to_owned(),
        repository: w.repository.to_string(),
    }
}

async fn edits_at(github: &GitHub, w: &WriteFiles<'_>, at: &str) -> Result<EditsAt, WriteError> {
    let mut out = EditsAt {
        texts: Vec::new(),
        changes: Vec::new(),
        previous: None,
    };
    for (index, (file, targets)) in w.files.iter().enumerate() {
        let found = github
            .file(w.repository, file, at)
            .await?
            .ok_or_else(|| missing(w, file))?;
        let text = String::from_utf8(found.bytes)
            .map_err(|_| WriteError::NotText { file: file.clone() })?;
        let edited = edit(file, &text, targets, w.digest)?;
        if index == 0 {
            out.previous.clone_from(&edited.previous);
        }
        if !edited.changes.is_empty() {
            out.changes.extend(edited.changes);
            out.texts.push((file.clone(), edited.text));
        }
    }
    Ok(out)
}

/// Opens the pull request or updates the open one, asks for reviewers and labels, and sets the
/// verified-digest status on the commit written.
async fn publish(
    github: &GitHub,
    p: &Proposal<'_>,
    open: Option<PullRequest>,
    body: &str,
    commit: &str,
) -> Result<(PullRequest, bool), WriteError> {
    let w = &p.write;
    let (pull, opened) = if let Some(pull) = open {
        let pull = github
            .update_pull_request(w.repository, pull.number, p.title, body)
            .await?;
        (pull, false)
    } else {
        let new = NewPullRequest {
            title: p.title,
            body,
            head: p.head,
            base: w.branch,
        };
        (github.create_pull_request(w.repository, &new).await?, true)
    };
    if !p.reviewers.is_empty() || !p.team_reviewers.is_empty() {
        github
            .request_reviewers(w.repository, pull.number, p.reviewers, p.team_reviewers)
            .await?;
    }
    if !p.labels.is_empty() {
        github
            .add_labels(w.repository, pull.number, p.labels)
            .await?;
    }
    github
        .create_commit_status(w.repository, commit, p.status)
        .await?;
    Ok((pull, opened))
}
