//! GitHub REST for gantry, on octocrab: who may do what (repository roles, team membership) and
//! the record of what was done (deployments and their statuses).
//!
//! Every call goes through one `send`, which counts requests and retries by gantry-http's one
//! policy (`Policy::github`): GitHub's rate limits as GitHub documents them (`retry-after`, else
//! `x-ratelimit-remaining: 0` until `x-ratelimit-reset`, else a secondary limit: a minute, then
//! doubling), reads again on 500/502–504; every other answer is an error naming the request, the
//! status and GitHub's message. Writes are never retried blind: a second deployment would be a
//! second record.
//!
//! The HTTP client is gantry's own (`gantry-http`: system or embedded roots, extra CA files), handed
//! to octocrab, so a scratch container reaches `api.github.com` and a GHES behind a private CA alike.

#![warn(missing_docs)]

mod actions;
mod contents;
mod git_data;
mod pulls;
mod request;
mod statuses;

pub use actions::{
    Artifact, Cancel, Dispatched, Fetched, Job, RUNS_PER_PAGE, RunFilter, RunStatus, WorkflowRun,
};
pub use contents::{CONTENTS_LIMIT, CommitSummary, File, NewFile, Person, Written};
pub use git_data::NewCommit;
pub use pulls::{NewPullRequest, PullRequest};
pub use request::RateLimit;
pub use statuses::{CommitState, NewCommitStatus};

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gantry_secret::Secret;
use http::StatusCode;
use octocrab::Octocrab;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the REST API lives unless `GITHUB_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
const API_VERSION: &str = "2022-11-28";

#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum GitHubError {
    #[error("GitHub API URL {url:?} is not a URL")]
    BadUrl { url: String },
    #[error("{0:?} is not a repository (expected owner/name)")]
    BadRepository(String),
    #[error("setting up the GitHub client")]
    Setup(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{method} {path}: {reason}")]
    Transport {
        method: &'static str,
        path: String,
        /// What failed, on one line.
        reason: String,
        /// Whether the request may have reached GitHub (the connection was open): a write may
        /// have taken effect.
        sent: bool,
    },
    #[error("{method} {path}: the answer is larger than {limit} bytes")]
    TooLarge {
        method: &'static str,
        path: String,
        limit: usize,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{method} {path} answered HTTP {status}, expected {expected}: {message}")]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        /// The status (or statuses) that would have been an answer.
        expected: String,
        message: String,
    },
    #[error(
        "{method} {path} is rate limited for another {} s, longer than the {} s gantry waits",
        wait.as_secs(),
        limit.as_secs()
    )]
    RateLimited {
        method: &'static str,
        path: String,
        wait: Duration,
        limit: Duration,
    },
    #[error("{method} {path} answered HTTP {status} with a body that is not {expected}: {reason}")]
    Decode {
        method: &'static str,
        path: String,
        status: u16,
        expected: &'static str,
        reason: String,
    },
}

impl GitHubError {
    /// Whether a write may have taken effect although it failed: the connection was open when
    /// it broke, or GitHub answered a server error. Only a read can tell what happened.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Self::Transport { sent, .. } => *sent,
            Self::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// The owner (user or organisation).
    pub owner: String,
    /// The repository's name.
    pub name: String,
}

impl FromStr for Repository {
    type Err = GitHubError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || GitHubError::BadRepository(text.to_owned());
        let (owner, name) = text.split_once('/').ok_or_else(bad)?;
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid(owner) || !valid(name) {
            return Err(bad());
        }
        Ok(Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

#[derive(Debug, Clone)]
/// How to reach GitHub.
pub struct Options {
    /// The REST API base (`GITHUB_API_URL`); [`DEFAULT_API_URL`] when `None`.
    pub api_url: Option<String>,
    /// The token every request carries.
    pub token: Secret,
    /// Extra CA files (a GHES behind a private CA).
    pub ca_files: Vec<PathBuf>,
    /// Time limit of one request.
    pub timeout: Duration,
    /// The longest rate-limit wait gantry sits out; a longer one is an error.
    pub max_rate_limit_wait: Duration,
}

impl Options {
    /// Options for `token` against github.com.
    pub fn new(token: Secret) -> Self {
        Self {
            api_url: None,
            token,
            ca_files: Vec::new(),
            timeout: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_mins(2),
        }
    }
}

/// What `GET …/collaborators/{user}/permission` says of a user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RepositoryPermission {
    /// `admin`, `write`, `read` or `none` (the legacy scale).
    pub permission: String,
    /// `admin`, `maintain`, `write`, `triage`, `read`, or a custom role's name.
    pub role_name: String,
}

impl RepositoryPermission {
    /// The standard role the user holds: the role name when it is one of the five standard ones,
    /// else (a custom role) the legacy permission it is based on; `None` for no access.
    pub fn standard_role(&self) -> Option<&str> {
        const STANDARD: [&str; 5] = ["read", "triage", "write", "maintain", "admin"];
        if STANDARD.contains(&self.role_name.as_str()) {
            return Some(&self.role_name);
        }
        STANDARD
            .contains(&self.permission.as_str())
            .then_some(self.permission.as_str())
    }
}

#[derive(Deserialize)]
struct TeamMembership {
    state: String,
}

/// A user's membership in a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// A member.
    Active,
    /// Invited, not yet accepted: not a member.
    Pending,
    /// Not a member.
    None,
}

/// What a new deployment records.
#[derive(Debug, Clone, Serialize)]
pub struct NewDeployment {
    /// The commit SHA deployed.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The environment deployed to.
    pub environment: String,
    /// A line for people.
    pub description: String,
    /// Data kept with the deployment.
    pub payload: Value,
    /// Whether GitHub shows it as production.
    pub production_environment: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
/// A deployment as GitHub returns it.
pub struct Deployment {
    /// Its id.
    pub id: u64,
    /// The commit it records.
    pub sha: String,
    /// The environment.
    pub environment: String,
    #[serde(default)]
    /// The data kept with it.
    pub payload: Value,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// A deployment status's state.
pub enum DeploymentState {
    /// It failed for a reason outside the change (infrastructure).
    Error,
    /// It failed.
    Failure,
    /// Superseded.
    Inactive,
    /// Running.
    InProgress,
    /// Waiting to run.
    Queued,
    /// Not started.
    Pending,
    /// It succeeded.
    Success,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
/// A deployment status as GitHub returns it.
pub struct DeploymentStatus {
    /// Its state.
    pub state: DeploymentState,
    /// Its line for people.
    #[serde(default)]
    pub description: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
/// A status to add to a deployment.
pub struct NewDeploymentStatus {
    /// The state.
    pub state: DeploymentState,
    /// A line for people.
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Where the log is (the run's page).
    pub log_url: Option<String>,
    /// Earlier successful deployments to the environment become inactive.
    pub auto_inactive: bool,
}

/// A GitHub REST client for one API (github.com or a GHES).
pub struct GitHub {
    octo: Octocrab,
    api_url: String,
    max_wait: Duration,
    requests: AtomicU64,
    counted: AtomicU64,
    rate: std::sync::Mutex<Option<RateLimit>>,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("api_url", &self.api_url)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl GitHub {
    /// A client with `options`.
    pub fn new(options: Options) -> Result<Self, GitHubError> {
        let api_url = options
            .api_url
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let roots =
            gantry_http::roots(&options.ca_files).map_err(|e| GitHubError::Setup(e.into()))?;
        let http = gantry_http::client(&roots, options.timeout)
            .map_err(|e| GitHubError::Setup(e.into()))?;
        let octo = Octocrab::builder()
            .base_uri(api_url.as_str())
            .map_err(|_| GitHubError::BadUrl {
                url: api_url.clone(),
            })?
            .personal_token(options.token.expose().to_owned())
            .add_header(
                http::HeaderName::from_static("x-github-api-version"),
                API_VERSION.to_owned(),
            )
            .add_header(
                http::header::ACCEPT,
                "application/vnd.github+json".to_owned(),
            )
            .build_with_reqwest(http)
            .map_err(|e| GitHubError::Setup(e.into()))?;
        Ok(Self {
            octo,
            api_url,
            max_wait: options.max_rate_limit_wait,
            requests: AtomicU64::new(0),
            counted: AtomicU64::new(0),
            rate: std::sync::Mutex::new(None),
        })
    }

    /// The REST API's base URL.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Requests sent so far, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests that counted against the primary rate limit: all but those answered 304.
    pub fn counted_requests(&self) -> u64 {
        self.counted.load(Ordering::Relaxed)
    }

    /// The primary rate limit as the last answer reported it.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        *self
            .rate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The role `user` holds in `repository`.
    pub async fn permission(
        &self,
        repository: &Repository,
        user: &str,
    ) -> Result<RepositoryPermission, GitHubError> {
        let path = format!(
            "/repos/{repository}/collaborators/{}/permission",
            segment(user)
        );
        let answer = self.get(&path).await?;
        answer.expect(&[StatusCode::OK])?;
        answer.json("a repository-collaborator-permission")
    }

    /// Whether `user` is a member of `org`'s team `team_slug`. Needs a token that may read the
    /// organisation's teams (`GITHUB_TOKEN` may not: GitHub answers 403 or 404 to it).
    pub async fn membership(
        &self,
        org: &str,
        team_slug: &str,
        user: &str,
    ) -> Result<Membership, GitHubError> {
        let path = format!(
            "/orgs/{}/teams/{}/memberships/{}",
            segment(org),
            segment(team_slug),
            segment(user)
        );
        let answer = self.get(&path).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(Membership::None);
        }
        answer.expect(&[StatusCode::OK])?;
        let membership: TeamMembership = answer.json("a team-membership")?;
        Ok(match membership.state.as_str() {
            "active" => Membership::Active,
            _ => Membership::Pending,
        })
    }

    /// Records a deployment (never auto-merging, never waiting on status checks).
    pub async fn create_deployment(
        &self,
        repository: &Repository,
        deployment: &NewDeployment,
    ) -> Result<Deployment, GitHubError> {
        let path = format!("/repos/{repository}/deployments");
        let mut body =
            serde_json::to_value(deployment).map_err(|e| GitHubError::Setup(e.into()))?;
        body["task"] = Value::from("deploy");
        body["auto_merge"] = Value::from(false);
        body["required_contexts"] = Value::Array(Vec::new());
        body["transient_environment"] = Value::from(false);
        let answer = self.post(&path, &body).await?;
        answer.expect(&[StatusCode::CREATED])?;
        answer.json("a deployment")
    }

    /// Adds a status to deployment `deployment_id`.
    pub async fn create_deployment_status(
        &self,
        repository: &Repository,
        deployment_id: u64,
        status: &NewDeploymentStatus,
    ) -> Result<(), GitHubError> {
        let path = format!("/repos/{repository}/deployments/{deployment_id}/statuses");
        let body = serde_json::to_value(status).map_err(|e| GitHubError::Setup(e.into()))?;
        let answer = self.post(&path, &body).await?;
        answer.expect(&[StatusCode::CREATED])
    }

    /// A deployment's statuses, newest first (up to 100).
    pub async fn deployment_statuses(
        &self,
        repository: &Repository,
        deployment_id: u64,
    ) -> Result<Vec<DeploymentStatus>, GitHubError> {
        let path = format!("/repos/{repository}/deployments/{deployment_id}/statuses?per_page=100");
        let answer = self.get(&path).await?;
        answer.expect(&[StatusCode::OK])?;
        answer.json("a list of deployment statuses")
    }

    /// The most recent deployments to `environment`, newest first (up to `limit`, at most 100).
    pub async fn deployments(
        &self,
        repository: &Repository,
        environment: &str,
        limit: u8,
    ) -> Result<Vec<Deployment>, GitHubError> {
        let query: String = form_query(&[
            ("environment", environment),
            ("per_page", &limit.clamp(1, 100).to_string()),
        ]);
        let path = format!("/repos/{repository}/deployments?{query}");
        let answer = self.get(&path).await?;
        answer.expect(&[StatusCode::OK])?;
        answer.json("a list of deployments")
    }
}

/// A path segment, percent-encoded (logins and slugs are plain, but a hostile input must not
/// change the path): everything but ASCII letters, digits, `-`, `_` and `.`.
fn segment(text: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

fn form_query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_parse_and_refuse() {
        let repo: Repository = "acme/billing".parse().expect("parses");
        assert_eq!(
            (repo.owner.as_str(), repo.name.as_str()),
            ("acme", "billing")
        );
        for bad in [
            "acme",
            "/billing",
            "acme/",
            "acme/bill/ing",
            "acme/bil ling",
        ] {
            assert!(bad.parse::<Repository>().is_err(), "{bad}");
        }
    }

    #[test]
    fn segments_cannot_change_the_path() {
        assert_eq!(segment("octo-cat_1.x"), "octo-cat_1.x");
        assert_eq!(segment("../admin?x=1"), "..%2Fadmin%3Fx%3D1");
    }

    #[test]
    fn custom_roles_fall_back_to_their_base_permission() {
        let perm = |permission: &str, role_name: &str| RepositoryPermission {
            permission: permission.to_owned(),
            role_name: role_name.to_owned(),
        };
        assert_eq!(perm("write", "maintain").standard_role(), Some("maintain"));
        assert_eq!(perm("write", "deployer").standard_role(), Some("write"));
        assert_eq!(perm("none", "").standard_role(), None);
    }
}
