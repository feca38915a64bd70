//! The GitHub API transport: one file, one commit, no clone and no git binary (it works from the
//! scratch action image). The edit is kept as an operation — "these targets, from the digest they
//! held when first read, to the new one" — not as a diff: after a lost race (GitHub answers 409:
//! the file's blob is not the one read) the file is read again at the new head; still the old
//! digest → the edit is made again on top of the other commit; already the new one → done, no
//! commit; another digest → a conflict naming the other commit and digest. Never a silent
//! overwrite, never an empty commit, never a merge commit.

use gantry_github::{CommitSummary, GitHub, GitHubError, NewFile, Person, Repository, Written};

use crate::{Change, EditError, Target, edit};

/// Attempts before a file that keeps changing under the write is given up on.
const ATTEMPTS: usize = 8;

/// One promotion written through the API.
pub struct Write<'a> {
    /// The GitOps repository.
    pub repository: &'a Repository,
    /// Its branch.
    pub branch: &'a str,
    /// The file.
    pub file: &'a str,
    /// What in it gets the digest.
    pub targets: &'a [Target],
    /// The digest.
    pub digest: &'a str,
    /// The digest the promoter saw in the file before it decided (read before its gates): a file
    /// that holds another by the time of the write is a conflict. `None`: what the first read
    /// finds.
    pub expected: Option<&'a str>,
    /// The commit message, given the digest the file held (`None` when it held none).
    pub message: &'a (dyn Fn(Option<&str>) -> String + Sync),
    /// The author (the actor who promoted, where known).
    pub author: Option<&'a Person>,
    /// The committer.
    pub committer: &'a Person,
}

/// How a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// One new commit on the branch.
    Committed {
        /// The commit.
        commit: String,
        /// The scalars changed.
        changes: Vec<Change>,
        /// The digest the file held before.
        previous: Option<String>,
        /// Writes it took (1 without a race).
        attempts: usize,
    },
    /// The file already held the digest: nothing written.
    Unchanged {
        /// The digest it holds.
        previous: Option<String>,
    },
    /// Someone else wrote another digest meanwhile: nothing written.
    Conflict {
        /// What this promotion expected to replace.
        expected: Option<String>,
        /// What the file holds now.
        found: Option<String>,
        /// The commit that wrote it, when it can be named.
        commit: Option<CommitSummary>,
    },
}

/// Why a write could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The API failed.
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    /// The file cannot be edited safely (or is not there).
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The file is not there.
    #[error("{file} is not on {branch} of {repository}")]
    Missing {
        /// The file.
        file: String,
        /// The branch.
        branch: String,
        /// The repository.
        repository: String,
    },
    /// The file is not UTF-8.
    #[error("{file} is not UTF-8 text")]
    NotText {
        /// The file.
        file: String,
    },
    /// git failed.
    #[error(transparent)]
    Git(crate::git::GitError),
    /// The file kept changing under the write.
    #[error("{file} changed under every one of {attempts} writes: giving up")]
    Busy {
        /// The file.
        file: String,
        /// The writes tried.
        attempts: usize,
    },
}

/// Writes the digest into the file as one commit, retrying lost races as the operation says.
pub async fn write(github: &GitHub, w: &Write<'_>) -> Result<Landed, WriteError> {
    let mut expected: Option<Option<String>> = w.expected.map(|d| Some(d.to_owned()));
    for attempt in 1..=ATTEMPTS {
        let file = github
            .file(w.repository, w.file, w.branch)
            .await?
            .ok_or_else(|| WriteError::Missing {
                file: w.file.to_owned(),
                branch: w.branch.to_owned(),
                repository: w.repository.to_string(),
            })?;
        let text = String::from_utf8(file.bytes).map_err(|_| WriteError::NotText {
            file: w.file.to_owned(),
        })?;
        let edited = edit(w.file, &text, w.targets, w.digest)?;
        if edited.changes.is_empty() {
            return Ok(Landed::Unchanged {
                previous: edited.previous,
            });
        }
        match &expected {
            None => expected = Some(edited.previous.clone()),
            Some(before) if *before != edited.previous => {
                let commit = github.last_commit(w.repository, w.file, w.branch).await?;
                return Ok(Landed::Conflict {
                    expected: before.clone(),
                    found: edited.previous,
                    commit,
                });
            }
            Some(_) => {}
        }
        let message = (w.message)(edited.previous.as_deref());
        let written = github
            .write_file(
                w.repository,
                &NewFile {
                    path: w.file,
                    message: &message,
                    bytes: edited.text.as_bytes(),
                    replaces: Some(&file.sha),
                    branch: w.branch,
                    author: w.author,
                    committer: w.committer,
                },
            )
            .await?;
        match written {
            Written::Committed { commit, .. } => {
                return Ok(Landed::Committed {
                    commit,
                    changes: edited.changes,
                    previous: edited.previous,
                    attempts: attempt,
                });
            }
            Written::Conflict => {}
        }
    }
    Err(WriteError::Busy {
        file: w.file.to_owned(),
        attempts: ATTEMPTS,
    })
}

/// One promotion of several files written through the API as one commit (the git data API).
pub struct WriteFiles<'a> {
    /// The GitOps repository.
    pub repository: &'a Repository,
    /// Its branch.
    pub branch: &'a str,
    /// Each file and what in it gets the digest.
    pub files: &'a [(String, Vec<Target>)],
    /// The digest.
    pub digest: &'a str,
    /// The digest the promoter saw in the first file before it decided: a first file that holds
    /// another by the time of the write is a conflict. `None`: what the first read finds.
    pub expected: Option<&'a str>,
    /// The commit message, given the digest the first file held.
    pub message: &'a (dyn Fn(Option<&str>) -> String + Sync),
    /// The author.
    pub author: Option<&'a Person>,
    /// The committer.
    pub committer: &'a Person,
}

/// Attempts of a commit of several files: every concurrent commit to the branch, whatever its
/// files, moves the head under the fast forward, so more are allowed, with a jittered pause.
const BRANCH_ATTEMPTS: usize = 40;

/// A pause before attempt `attempt` after a lost race: 20–120 ms, growing to 5× (jittered by
/// the clock's nanoseconds, so concurrent writers spread out).
async fn back_off(attempt: usize) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let base = 20 + u64::from(nanos % 100);
    let factor = u64::try_from(attempt.min(5)).unwrap_or(5);
    tokio::time::sleep(std::time::Duration::from_millis(base * factor)).await;
}

/// Writes the digest into every file as one commit on the branch's head, moved only as a fast
/// forward; a lost race reads every file again at the new head (each must still hold what it
/// held at the first read, else a conflict) and commits again on top.
pub async fn write_files(github: &GitHub, w: &WriteFiles<'_>) -> Result<Landed, WriteError> {
    let missing = |file: &str| WriteError::Missing {
        file: file.to_owned(),
        branch: w.branch.to_owned(),
        repository: w.repository.to_string(),
    };
    // What each file held at the first read (the first file: what the promoter saw).
    let mut first: Vec<Option<Option<String>>> = vec![None; w.files.len()];
    if let Some(expected) = w.expected {
        first[0] = Some(Some(expected.to_owned()));
    }
    for attempt in 1..=BRANCH_ATTEMPTS {
        if attempt > 1 {
            back_off(attempt - 1).await;
        }
        let head = github
            .branch_head(w.repository, w.branch)
            .await?
            .ok_or_else(|| missing(&w.files[0].0))?;
        let mut texts = Vec::new();
        let mut changes = Vec::new();
        let mut previous = None;
        for (index, (file, targets)) in w.files.iter().enumerate() {
            let found = github
                .file(w.repository, file, &head)
                .await?
                .ok_or_else(|| missing(file))?;
            let text = String::from_utf8(found.bytes)
                .map_err(|_| WriteError::NotText { file: file.clone() })?;
            let edited = edit(file, &text, targets, w.digest)?;
            if index == 0 {
                previous.clone_from(&edited.previous);
            }
            if edited.changes.is_empty() {
                continue;
            }
            match &first[index] {
                None => first[index] = Some(edited.previous.clone()),
                Some(before) if *before != edited.previous => {
                    let commit = github.last_commit(w.repository, file, w.branch).await?;
                    return Ok(Landed::Conflict {
                        expected: before.clone(),
                        found: edited.previous,
                        commit,
                    });
                }
                Some(_) => {}
            }
            changes.extend(edited.changes);
            texts.push((file.as_str(), edited.text));
        }
        if changes.is_empty() {
            return Ok(Landed::Unchanged { previous });
        }
        let message = (w.message)(previous.as_deref());
        let files: Vec<(&str, &str)> = texts.iter().map(|(f, t)| (*f, t.as_str())).collect();
        let commit = github
            .create_commit(
                w.repository,
                &gantry_github::NewCommit {
                    parent: &head,
                    files: &files,
                    message: &message,
                    author: w.author,
                    committer: w.committer,
                },
            )
            .await?;
        if github.fast_forward(w.repository, w.branch, &commit).await? {
            return Ok(Landed::Committed {
                commit,
                changes,
                previous,
                attempts: attempt,
            });
        }
    }
    Err(WriteError::Busy {
        file: w.files[0].0.clone(),
        attempts: BRANCH_ATTEMPTS,
    })
}
