//! Commits of several files at once through the git data API: the parent's tree, a new tree with
//! the files replaced, a commit of it, and the branch moved to it only as a fast forward (so a
//! commit someone else pushed meanwhile is never overwritten: the caller reads again and retries).

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::request::Call;
use crate::{GitHub, GitHubError, Person, Repository, segment};

#[derive(Deserialize)]
struct CommitAnswer {
    sha: String,
    tree: TreeRef,
}

#[derive(Deserialize)]
struct TreeRef {
    sha: String,
}

/// A commit to make: text files replaced on a parent.
#[derive(Debug, Clone)]
pub struct NewCommit<'a> {
    /// The parent commit.
    pub parent: &'a str,
    /// Each file's path and new text.
    pub files: &'a [(&'a str, &'a str)],
    /// The message.
    pub message: &'a str,
    /// The author (default: the committer).
    pub author: Option<&'a Person>,
    /// The committer.
    pub committer: &'a Person,
}

impl GitHub {
    /// Makes the commit (on no branch yet); returns its SHA.
    pub async fn create_commit(
        &self,
        repository: &Repository,
        commit: &NewCommit<'_>,
    ) -> Result<String, GitHubError> {
        let answer = self
            .get(&format!(
                "/repos/{repository}/git/commits/{}",
                segment(commit.parent)
            ))
            .await?;
        answer.expect(&[StatusCode::OK])?;
        let parent: CommitAnswer = answer.json("a commit")?;
        let entries: Vec<serde_json::Value> = commit
            .files
            .iter()
            .map(|(path, text)| json!({"path": path, "mode": "100644", "type": "blob", "content": text}))
            .collect();
        let body = json!({"base_tree": parent.tree.sha, "tree": entries});
        let answer = self
            .call(Call::post(format!("/repos/{repository}/git/trees"), &body))
            .await?;
        answer.expect(&[StatusCode::CREATED])?;
        let tree: TreeRef = answer.json("a tree")?;
        let mut body = json!({
            "message": commit.message,
            "tree": tree.sha,
            "parents": [parent.sha],
            "committer": commit.committer,
        });
        if let Some(author) = commit.author {
            body["author"] = json!(author);
        }
        let answer = self
            .call(Call::post(
                format!("/repos/{repository}/git/commits"),
                &body,
            ))
            .await?;
        answer.expect(&[StatusCode::CREATED])?;
        Ok(answer.json::<CommitAnswer>("a commit")?.sha)
    }

    /// Moves `branch` to `sha` only as a fast forward; `false` when the branch moved elsewhere
    /// meanwhile (GitHub answers 422 "not a fast forward").
    pub async fn fast_forward(
        &self,
        repository: &Repository,
        branch: &str,
        sha: &str,
    ) -> Result<bool, GitHubError> {
        let body = json!({"sha": sha, "force": false});
        let path = format!(
            "/repos/{repository}/git/refs/heads/{}",
            branch.split('/').map(segment).collect::<Vec<_>>().join("/")
        );
        let answer = self.call(Call::patch(path, &body)).await?;
        if answer.status == StatusCode::UNPROCESSABLE_ENTITY
            && answer.message().contains("fast forward")
        {
            return Ok(false);
        }
        answer.expect(&[StatusCode::OK])?;
        Ok(true)
    }
}
