//! The git transport, for any host (GitLab, Azure Repos, Bitbucket, a server of one's own) where
//! a `git` binary exists: fetch the branch's head (shallow), edit, one commit, push without force.
//! A push that loses a race (the branch moved) is not forced: the head is fetched again and the
//! same operation applied, as the API transport does. Credentials reach git through its
//! environment (`http.extraHeader` by `GIT_CONFIG_*`), never its command line; no user or system
//! configuration is read, and no git identity needs to be configured.

use std::path::Path;

use base64::Engine as _;
use gantry_github::Person;
use gantry_secret::Secret;

use crate::github::{Landed, WriteError};
use crate::{Change, Target, edit};

/// Attempts before a branch that keeps moving is given up on.
const ATTEMPTS: usize = 8;

/// Where to push.
pub struct Remote<'a> {
    /// The repository's URL (`https://gitlab.example/acme/deploy.git`).
    pub url: &'a str,
    /// The user for HTTP basic authentication.
    pub username: Option<&'a str>,
    /// Its password or token.
    pub password: Option<&'a Secret>,
}

/// One promotion written with git: one commit of every file.
pub struct GitWrite<'a> {
    /// The remote.
    pub remote: &'a Remote<'a>,
    /// The branch.
    pub branch: &'a str,
    /// Each file and what in it gets the digest.
    pub files: &'a [(String, Vec<Target>)],
    /// The digest.
    pub digest: &'a str,
    /// The digest the promoter saw before it decided (as in the API transport).
    pub expected: Option<&'a str>,
    /// The commit message, given the digest the files held.
    pub message: &'a (dyn Fn(Option<&str>) -> String + Sync),
    /// The author (the actor who promoted, where known).
    pub author: Option<&'a Person>,
    /// The committer.
    pub committer: &'a Person,
}

/// Why git failed.
#[derive(Debug, thiserror::Error)]
#[error("git {command}: {message}")]
pub struct GitError {
    /// The command (its arguments, never a credential).
    pub command: String,
    /// What git said.
    pub message: String,
}

struct Git<'a> {
    dir: &'a Path,
    remote: &'a Remote<'a>,
}

impl Git<'_> {
    /// Runs git with the remote's credentials in its environment; `Ok((success, stdout, stderr))`.
    async fn run(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(bool, String, String), GitError> {
        let mut command = tokio::process::Command::new("git");
        command
            .current_dir(self.dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("HOME", self.dir)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null());
        if let (Some(user), Some(password)) = (self.remote.username, self.remote.password) {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.expose()));
            command
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                );
        }
        let output = command.output().await.map_err(|e| GitError {
            command: args.join(" "),
            message: format!("could not start git: {e}"),
        })?;
        Ok((
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    async fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> Result<String, GitError> {
        let (success, out, err) = self.run(args, env).await?;
        if success {
            Ok(out)
        } else {
            Err(GitError {
                command: args.join(" "),
                message: err.trim().to_owned(),
            })
        }
    }
}

impl From<GitError> for WriteError {
    fn from(error: GitError) -> Self {
        Self::Git(error)
    }
}

/// The branch's head as read: its commit and the files' texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The head commit.
    pub head: String,
    /// Each file and its text.
    pub files: Vec<(String, String)>,
}

/// The files as they are on the branch's head (for reading the digest they hold).
pub async fn read(remote: &Remote<'_>, branch: &str, files: &[String]) -> Result<Read, WriteError> {
    let dir = tempfile::tempdir().map_err(|e| GitError {
        command: "init".to_owned(),
        message: e.to_string(),
    })?;
    let git = Git {
        dir: dir.path(),
        remote,
    };
    fetch(&git, remote.url, branch).await?;
    let head = git.ok(&["rev-parse", "HEAD"], &[]).await?.trim().to_owned();
    let files = files
        .iter()
        .map(|file| {
            let bytes = std::fs::read(dir.path().join(file)).map_err(|_| WriteError::Missing {
                file: file.clone(),
                branch: branch.to_owned(),
                repository: remote.url.to_owned(),
            })?;
            let text =
                String::from_utf8(bytes).map_err(|_| WriteError::NotText { file: file.clone() })?;
            Ok((file.clone(), text))
        })
        .collect::<Result<_, WriteError>>()?;
    Ok(Read { head, files })
}

/// A fresh repository in `git.dir` checked out at the branch's head (shallow).
async fn fetch(git: &Git<'_>, url: &str, branch: &str) -> Result<(), GitError> {
    git.ok(&["init", "-q"], &[]).await?;
    let branch_ref = format!("refs/heads/{branch}");
    git.ok(
        &["fetch", "-q", "--depth=1", "--no-tags", url, &branch_ref],
        &[],
    )
    .await?;
    git.ok(&["checkout", "-q", "FETCH_HEAD"], &[]).await?;
    Ok(())
}

/// Each file edited: the changes, the digest the first one held, and (path, name, new text) of
/// each file that changes.
type Edits = (
    Vec<Change>,
    Option<String>,
    Vec<(std::path::PathBuf, String, String)>,
);

fn edit_all(dir: &Path, w: &GitWrite<'_>) -> Result<Edits, WriteError> {
    let mut changes: Vec<Change> = Vec::new();
    let mut previous: Option<String> = None;
    let mut edited_files = Vec::new();
    for (file, targets) in w.files {
        let path = dir.join(file);
        let text = std::fs::read(&path).map_err(|_| WriteError::Missing {
            file: file.clone(),
            branch: w.branch.to_owned(),
            repository: w.remote.url.to_owned(),
        })?;
        let text =
            String::from_utf8(text).map_err(|_| WriteError::NotText { file: file.clone() })?;
        let edited = edit(file, &text, targets, w.digest)?;
        if previous.is_none() {
            previous.clone_from(&edited.previous);
        }
        if !edited.changes.is_empty() {
            changes.extend(edited.changes.iter().cloned());
            edited_files.push((path, file.clone(), edited.text));
        }
    }
    Ok((changes, previous, edited_files))
}

/// Writes the files, commits them as one commit and pushes it without force: `Ok(Some(commit))`
/// when it landed, `Ok(None)` when the branch moved first.
async fn commit_and_push(
    git: &Git<'_>,
    w: &GitWrite<'_>,
    files: &[(std::path::PathBuf, String, String)],
    previous: Option<&str>,
) -> Result<Option<String>, WriteError> {
    for (path, file, text) in files {
        std::fs::write(path, text).map_err(|e| GitError {
            command: format!("write {file}"),
            message: e.to_string(),
        })?;
        git.ok(&["add", "--", file], &[]).await?;
    }
    let message = (w.message)(previous);
    std::fs::write(git.dir.join(".git/GANTRY_MESSAGE"), &message).map_err(|e| GitError {
        command: "commit".to_owned(),
        message: e.to_string(),
    })?;
    let author = w.author.unwrap_or(w.committer);
    git.ok(
        &["commit", "-q", "--no-verify", "-F", ".git/GANTRY_MESSAGE"],
        &[
            ("GIT_AUTHOR_NAME", &author.name),
            ("GIT_AUTHOR_EMAIL", &author.email),
            ("GIT_COMMITTER_NAME", &w.committer.name),
            ("GIT_COMMITTER_EMAIL", &w.committer.email),
        ],
    )
    .await?;
    let destination = format!("HEAD:refs/heads/{}", w.branch);
    let (pushed, out, err) = git
        .run(&["push", "--porcelain", w.remote.url, &destination], &[])
        .await?;
    if pushed {
        return Ok(Some(
            git.ok(&["rev-parse", "HEAD"], &[]).await?.trim().to_owned(),
        ));
    }
    // The branch moved: the push came after another (`fetch first`, `non-fast-forward`), or the
    // server's own compare-and-swap of the ref lost to one landing at the same moment.
    let rejected = out.lines().any(|l| {
        l.starts_with('!')
            && [
                "fetch first",
                "non-fast-forward",
                "failed to update ref",
                "cannot lock ref",
            ]
            .iter()
            .any(|why| l.contains(why))
    });
    if rejected {
        return Ok(None);
    }
    Err(GitError {
        command: "push".to_owned(),
        message: format!("{} {}", out.trim(), err.trim()),
    }
    .into())
}

/// Writes the digest into every file as one commit and pushes it, retrying lost races.
pub async fn write(w: &GitWrite<'_>) -> Result<Landed, WriteError> {
    let mut expected: Option<Option<String>> = w.expected.map(|d| Some(d.to_owned()));
    for attempt in 1..=ATTEMPTS {
        let dir = tempfile::tempdir().map_err(|e| GitError {
            command: "init".to_owned(),
            message: e.to_string(),
        })?;
        let git = Git {
            dir: dir.path(),
            remote: w.remote,
        };
        fetch(&git, w.remote.url, w.branch).await?;
        let (changes, previous, edited_files) = edit_all(dir.path(), w)?;
        if changes.is_empty() {
            return Ok(Landed::Unchanged { previous });
        }
        match &expected {
            None => expected = Some(previous.clone()),
            Some(before) if *before != previous => {
                let log = git.ok(&["log", "-1", "--format=%H%n%s"], &[]).await?;
                let mut lines = log.lines();
                let commit = lines.next().map(|sha| gantry_github::CommitSummary {
                    sha: sha.to_owned(),
                    subject: lines.next().unwrap_or_default().to_owned(),
                });
                return Ok(Landed::Conflict {
                    expected: before.clone(),
                    found: previous,
                    commit,
                });
            }
            Some(_) => {}
        }
        if let Some(commit) = commit_and_push(&git, w, &edited_files, previous.as_deref()).await? {
            return Ok(Landed::Committed {
                commit,
                changes,
                previous,
                attempts: attempt,
            });
        }
    }
    Err(WriteError::Busy {
        file: w.files.first().map(|(f, _)| f.clone()).unwrap_or_default(),
        attempts: ATTEMPTS,
    })
}
