//! Commit statuses: a verdict shown on the commit it is about.

use http::StatusCode;
use serde::Serialize;

use crate::{GitHub, GitHubError, Repository, segment};

/// A commit status's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitState {
    /// Something outside the change failed.
    Error,
    /// It failed.
    Failure,
    /// Not decided yet.
    Pending,
    /// It passed.
    Success,
}

/// A status to set on a commit.
#[derive(Debug, Clone, Serialize)]
pub struct NewCommitStatus {
    /// The state.
    pub state: CommitState,
    /// Where the details are (the run's page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    /// A line for people (GitHub keeps 140 characters).
    pub description: String,
    /// The status's name; a later status with the same context replaces it.
    pub context: String,
}

/// The longest description GitHub keeps.
pub const DESCRIPTION_LIMIT: usize = 140;

impl GitHub {
    /// Sets a status on commit `sha` (the description cut to 140 characters).
    pub async fn create_commit_status(
        &self,
        repository: &Repository,
        sha: &str,
        status: &NewCommitStatus,
    ) -> Result<(), GitHubError> {
        let path = format!("/repos/{repository}/statuses/{}", segment(sha));
        let mut status = status.clone();
        if status.description.chars().count() > DESCRIPTION_LIMIT {
            status.description = status
                .description
                .chars()
                .take(DESCRIPTION_LIMIT - 1)
                .chain(std::iter::once('…'))
                .collect();
        }
        let body = serde_json::to_value(&status).map_err(|e| GitHubError::Setup(e.into()))?;
        let answer = self.post(&path, &body).await?;
        answer.expect(&[StatusCode::CREATED])
    }
}
