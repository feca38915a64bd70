//! Files of a repository through the contents API: read one with its blob SHA, write one as a
//! commit that replaces exactly that blob (compare-and-swap: GitHub answers 409 when the file
//! changed meanwhile), and the last commit that touched a path. No clone, no git binary.

use base64::Engine as _;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::request::Call;
use crate::{GitHub, GitHubError, Repository, form_query};

/// The largest file read through the contents API (GitHub sends the content of files up to 1 MB).
pub const CONTENTS_LIMIT: usize = 1_000_000;

/// A file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its path.
    pub path: String,
    /// Its blob SHA (what a write must name to replace it).
    pub sha: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Who wrote or committed a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// The name.
    pub name: String,
    /// The email.
    pub email: String,
}

/// A write of one file.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    /// Its path.
    pub path: &'a str,
    /// The commit message.
    pub message: &'a str,
    /// The new bytes.
    pub bytes: &'a [u8],
    /// The blob SHA replaced (`None` creates the file).
    pub replaces: Option<&'a str>,
    /// The branch.
    pub branch: &'a str,
    /// The author (default: the committer).
    pub author: Option<&'a Person>,
    /// The committer.
    pub committer: &'a Person,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Committed.
    Committed {
        /// The new commit.
        commit: String,
        /// The new blob.
        blob: String,
    },
    /// The file is not the blob named any more (someone else wrote it): nothing written.
    Conflict,
}

/// A commit, as far as a conflict message needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    /// Its SHA.
    pub sha: String,
    /// The first line of its message.
    pub subject: String,
}

#[derive(Deserialize)]
struct ContentAnswer {
    path: String,
    sha: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct WriteAnswer {
    content: Option<WrittenContent>,
    commit: WrittenCommit,
}

#[derive(Deserialize)]
struct WrittenContent {
    sha: String,
}

#[derive(Deserialize)]
struct WrittenCommit {
    sha: String,
}

#[derive(Deserialize)]
struct ListedCommit {
    sha: String,
    commit: ListedMessage,
}

#[derive(Deserialize)]
struct ListedMessage {
    message: String,
}

fn content_path(repository: &Repository, path: &str) -> String {
    let encoded: Vec<String> = path.split('/').map(crate::segment).collect();
    format!("/repos/{repository}/contents/{}", encoded.join("/"))
}

impl GitHub {
    /// The file at `path` on `git_ref`; `None` when there is none.
    pub async fn file(
        &self,
        repository: &Repository,
        path: &str,
        git_ref: &str,
    ) -> Result<Option<File>, GitHubError> {
        let query = form_query(&[("ref", git_ref)]);
        let answer = self
            .call(Call::get(format!(
                "{}?{query}",
                content_path(repository, path)
            )))
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        answer.expect(&[StatusCode::OK])?;
        let found: ContentAnswer = answer.json("a file")?;
        let bad = |why: String| GitHubError::Invalid(format!("{path} on {git_ref}: {why}"));
        if found.kind != "file" {
            return Err(bad(format!("is a {}, not a file", found.kind)));
        }
        if found.encoding.as_deref() != Some("base64") {
            return Err(bad(format!(
                "the contents API sent no content (encoding {:?}): files over {CONTENTS_LIMIT} bytes need the git transport",
                found.encoding
            )));
        }
        let text: String = found
            .content
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| bad(format!("content is not base64: {e}")))?;
        Ok(Some(File {
            path: found.path,
            sha: found.sha,
            bytes,
        }))
    }

    /// Writes one file as one commit on its branch, replacing exactly the blob named.
    pub async fn write_file(
        &self,
        repository: &Repository,
        file: &NewFile<'_>,
    ) -> Result<Written, GitHubError> {
        let mut body = json!({
            "message": file.message,
            "content": base64::engine::general_purpose::STANDARD.encode(file.bytes),
            "branch": file.branch,
            "committer": file.committer,
        });
        if let Some(sha) = file.replaces {
            body["sha"] = json!(sha);
        }
        if let Some(author) = file.author {
            body["author"] = json!(author);
        }
        let answer = self
            .call(Call::put(content_path(repository, file.path), &body))
            .await?;
        // 409: the blob named is not the file's any more. 422 with a SHA mismatch says the same.
        let message = answer.message();
        if answer.status == StatusCode::CONFLICT
            || (answer.status == StatusCode::UNPROCESSABLE_ENTITY && message.contains("sha"))
        {
            return Ok(Written::Conflict);
        }
        answer.expect(&[StatusCode::OK, StatusCode::CREATED])?;
        let written: WriteAnswer = answer.json("a written file")?;
        Ok(Written::Committed {
            commit: written.commit.sha,
            blob: written.content.map(|c| c.sha).unwrap_or_default(),
        })
    }

    /// The newest commit on `branch` that touched `path`.
    pub async fn last_commit(
        &self,
        repository: &Repository,
        path: &str,
        branch: &str,
    ) -> Result<Option<CommitSummary>, GitHubError> {
        let query = form_query(&[("path", path), ("sha", branch), ("per_page", "1")]);
        let answer = self
            .get(&format!("/repos/{repository}/commits?{query}"))
            .await?;
        answer.expect(&[StatusCode::OK])?;
        let list: Vec<ListedCommit> = answer.json("a list of commits")?;
        Ok(list.into_iter().next().map(|c| CommitSummary {
            sha: c.sha,
            subject: c
                .commit
                .message
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        }))
    }
}
