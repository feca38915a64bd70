//! Branches and pull requests: a branch's head, a branch created or moved (forced only where the
//! caller owns the branch), the one open pull request from a head to a base, opened or updated,
//! its reviewers and labels.

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::request::Call;
use crate::{GitHub, GitHubError, Repository, form_query};

/// A pull request, as far as a promotion needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its GraphQL node ID.
    pub node_id: String,
    /// Its page.
    pub html_url: String,
    /// The head commit.
    pub head_sha: String,
    /// Its title.
    pub title: String,
    /// Its body.
    pub body: String,
}

/// A pull request to open or update.
#[derive(Debug, Clone)]
pub struct NewPullRequest<'a> {
    /// Its title.
    pub title: &'a str,
    /// Its body (Markdown).
    pub body: &'a str,
    /// The head branch (in the same repository).
    pub head: &'a str,
    /// The base branch.
    pub base: &'a str,
}

#[derive(Deserialize)]
struct RefAnswer {
    object: RefObject,
}

#[derive(Deserialize)]
struct RefObject {
    sha: String,
}

#[derive(Deserialize)]
struct PullAnswer {
    number: u64,
    node_id: String,
    html_url: String,
    title: String,
    #[serde(default)]
    body: Option<String>,
    head: PullSide,
}

#[derive(Deserialize)]
struct PullSide {
    sha: String,
}

impl From<PullAnswer> for PullRequest {
    fn from(p: PullAnswer) -> Self {
        Self {
            number: p.number,
            node_id: p.node_id,
            html_url: p.html_url,
            head_sha: p.head.sha,
            title: p.title,
            body: p.body.unwrap_or_default(),
        }
    }
}

/// A branch name in a reference URL: its slashes kept (GitHub takes `heads/a/b`), every other
/// byte that could change the path encoded.
fn branch_path(branch: &str) -> String {
    branch
        .split('/')
        .map(crate::segment)
        .collect::<Vec<_>>()
        .join("/")
}

impl GitHub {
    /// The head commit of `branch`; `None` when there is no such branch.
    pub async fn branch_head(
        &self,
        repository: &Repository,
        branch: &str,
    ) -> Result<Option<String>, GitHubError> {
        let answer = self
            .get(&format!(
                "/repos/{repository}/git/ref/heads/{}",
                branch_path(branch)
            ))
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        answer.expect(&[StatusCode::OK])?;
        let found: RefAnswer = answer.json("a reference")?;
        Ok(Some(found.object.sha))
    }

    /// Points `branch` at `sha`: creates it, or moves it there when it exists (`force`: even when
    /// that is not a fast forward; only for a branch the caller owns).
    pub async fn set_branch(
        &self,
        repository: &Repository,
        branch: &str,
        sha: &str,
        force: bool,
    ) -> Result<(), GitHubError> {
        let body = json!({"ref": format!("refs/heads/{branch}"), "sha": sha});
        let answer = self
            .call(Call::post(format!("/repos/{repository}/git/refs"), &body))
            .await?;
        if answer.status == StatusCode::CREATED {
            return Ok(());
        }
        if answer.status != StatusCode::UNPROCESSABLE_ENTITY
            || !answer.message().contains("already exists")
        {
            return answer.expect(&[StatusCode::CREATED]);
        }
        let body = json!({"sha": sha, "force": force});
        let answer = self
            .call(Call::patch(
                format!("/repos/{repository}/git/refs/heads/{}", branch_path(branch)),
                &body,
            ))
            .await?;
        answer.expect(&[StatusCode::OK])
    }

    /// The open pull request from `head` into `base`, if any.
    pub async fn open_pull_request(
        &self,
        repository: &Repository,
        head: &str,
        base: &str,
    ) -> Result<Option<PullRequest>, GitHubError> {
        let query = form_query(&[
            ("head", &format!("{}:{head}", repository.owner)),
            ("base", base),
            ("state", "open"),
        ]);
        let answer = self
            .get(&format!("/repos/{repository}/pulls?{query}"))
            .await?;
        answer.expect(&[StatusCode::OK])?;
        let list: Vec<PullAnswer> = answer.json("a list of pull requests")?;
        Ok(list.into_iter().next().map(PullRequest::from))
    }

    /// Opens a pull request; the open one from the same head when another caller opened it first.
    pub async fn create_pull_request(
        &self,
        repository: &Repository,
        pull: &NewPullRequest<'_>,
    ) -> Result<PullRequest, GitHubError> {
        let body = json!({
            "title": pull.title, "body": pull.body, "head": pull.head, "base": pull.base,
            "maintainer_can_modify": false,
        });
        let answer = self
            .call(Call::post(format!("/repos/{repository}/pulls"), &body))
            .await?;
        if answer.status == StatusCode::UNPROCESSABLE_ENTITY
            && answer.message().contains("already exists")
            && let Some(open) = self
                .open_pull_request(repository, pull.head, pull.base)
                .await?
        {
            return self
                .update_pull_request(repository, open.number, pull.title, pull.body)
                .await;
        }
        answer.expect(&[StatusCode::CREATED])?;
        Ok(answer.json::<PullAnswer>("a pull request")?.into())
    }

    /// Sets a pull request's title and body.
    pub async fn update_pull_request(
        &self,
        repository: &Repository,
        number: u64,
        title: &str,
        body: &str,
    ) -> Result<PullRequest, GitHubError> {
        let payload = json!({"title": title, "body": body});
        let answer = self
            .call(Call::patch(
                format!("/repos/{repository}/pulls/{number}"),
                &payload,
            ))
            .await?;
        answer.expect(&[StatusCode::OK])?;
        Ok(answer.json::<PullAnswer>("a pull request")?.into())
    }

    /// Asks users and teams (slugs) to review a pull request.
    pub async fn request_reviewers(
        &self,
        repository: &Repository,
        number: u64,
        users: &[String],
        teams: &[String],
    ) -> Result<(), GitHubError> {
        let body = json!({"reviewers": users, "team_reviewers": teams});
        let answer = self
            .post(
                &format!("/repos/{repository}/pulls/{number}/requested_reviewers"),
                &body,
            )
            .await?;
        answer.expect(&[StatusCode::CREATED])
    }

    /// Adds labels to a pull request (or issue).
    pub async fn add_labels(
        &self,
        repository: &Repository,
        number: u64,
        labels: &[String],
    ) -> Result<(), GitHubError> {
        let body = json!({"labels": labels});
        let answer = self
            .post(
                &format!("/repos/{repository}/issues/{number}/labels"),
                &body,
            )
            .await?;
        answer.expect(&[StatusCode::OK])
    }
}

/// The GraphQL mutation that turns on auto-merge, pinned to the head commit it may merge.
const ENABLE_AUTO_MERGE: &str = "mutation($id: ID!, $method: PullRequestMergeMethod!, $head: GitObjectID!) { enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method, expectedHeadOid: $head}) { pullRequest { number autoMergeRequest { enabledAt mergeMethod } } } }";

impl GitHub {
    /// The GraphQL endpoint beside the REST API: `/graphql` on github.com, `/api/graphql` on
    /// GitHub Enterprise Server (whose REST API is `/api/v3`).
    fn graphql_path(&self) -> String {
        match self.api_url().trim_end_matches('/').strip_suffix("/api/v3") {
            Some(host) => format!("{host}/api/graphql"),
            None => "/graphql".to_owned(),
        }
    }

    /// Turns on GitHub's auto-merge for a pull request (`MERGE`, `SQUASH` or `REBASE`), only for
    /// the head commit `expected_head`: a head that moves after it is not merged by it. GitHub
    /// answers errors inside a 200 (auto-merge not allowed in the repository, a pull request
    /// already mergeable): they are returned as [`GitHubError::Invalid`].
    pub async fn enable_auto_merge(
        &self,
        pull_node_id: &str,
        method: &str,
        expected_head: &str,
    ) -> Result<(), GitHubError> {
        let body = json!({
            "query": ENABLE_AUTO_MERGE,
            "variables": {"id": pull_node_id, "method": method, "head": expected_head},
        });
        let answer = self.call(Call::post(self.graphql_path(), &body)).await?;
        answer.expect(&[StatusCode::OK])?;
        let value: serde_json::Value = answer.json("a GraphQL answer")?;
        if let Some(errors) = value["errors"].as_array().filter(|e| !e.is_empty()) {
            let messages: Vec<&str> = errors
                .iter()
                .filter_map(|e| e["message"].as_str())
                .collect();
            return Err(GitHubError::Invalid(format!(
                "GitHub did not enable auto-merge: {}",
                messages.join("; ")
            )));
        }
        if value["data"]["enablePullRequestAutoMerge"]["pullRequest"]["autoMergeRequest"].is_null()
        {
            return Err(GitHubError::Invalid(
                "GitHub answered without an auto-merge request".to_owned(),
            ));
        }
        Ok(())
    }
}
