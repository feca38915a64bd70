//! A GitOps target: the digest written into the files an Argo CD or Flux deploys from, by one
//! commit (`gantry_gitops::repo`: GitHub's API for `owner/name`, git for any URL), or proposed as
//! a pull request from gantry's branch `gantry/<environment>/<app>` (GitHub); then the Argo CD
//! application synced and waited for. The digest the files held is read before the gates and is
//! what the write expects to replace: a file someone else changed meanwhile is a conflict, never
//! overwritten.

use anyhow::Context as _;
use gantry_github::{CommitState, NewCommitStatus, Person};
use gantry_gitops::Change;
use gantry_gitops::argocd::{Deployed, Deployer};
use gantry_gitops::message::Message;
use gantry_gitops::pull::{Proposal, Proposed};
use gantry_gitops::repo::{Access, Commit, Location, Repo};
use gantry_policy::{GitOps, GitOpsMode};
use gantry_secret::Secret;

pub use gantry_gitops::github::Landed;
pub use gantry_gitops::repo::Held;

/// The fixed identity gantry commits as (the promoter is the author).
const COMMITTER_NAME: &str = "gantry";
const COMMITTER_EMAIL: &str = "gantry@users.noreply.github.com";

/// The target environment's GitOps files and how to reach them.
pub struct GitOpsSide {
    gitops: GitOps,
    repo: Repo,
    author: Option<Person>,
    argo: Option<Deployer>,
}

/// What the write needs to say in its message (and the pull request in its body).
pub struct Said<'a> {
    pub environment: &'a str,
    pub source_environment: &'a str,
    pub image: &'a str,
    pub run: Option<&'a str>,
    /// The pull request's body, given the edits and the digest the base held.
    pub body: &'a (dyn Fn(&[Change], Option<&str>) -> String + Sync),
}

/// How the write ended: a commit on the branch, or a pull request.
pub enum Wrote {
    /// Mode commit.
    Landed(Landed),
    /// Mode pull-request.
    Proposed(Proposed),
}

/// The branch gantry owns for an environment and app: `gantry/<environment>/<app>`.
pub fn head_branch(environment: &str, image: &str) -> String {
    let app = image.rsplit('/').next().unwrap_or(image);
    format!("gantry/{environment}/{app}")
}

impl GitOpsSide {
    /// Checks the configuration now, before anything moves.
    pub fn new(
        gitops: &GitOps,
        token: Option<&Secret>,
        api_url: Option<&str>,
        username: Option<&str>,
        ca_files: &[std::path::PathBuf],
        actor: Option<&str>,
        access: &gantry_args::GitOpsArgs,
    ) -> anyhow::Result<Self> {
        let argo = access.deployer(gitops.argocd.as_ref(), ca_files)?;
        let repo = gitops
            .open(&Access {
                token,
                api_url,
                username,
                ca_files,
            })
            .map_err(|e| match e {
                gantry_gitops::repo::OpenError::NoToken(_) => {
                    anyhow::anyhow!("{e}: give gitops-token (or github-token)")
                }
                other => anyhow::Error::new(other).context("the gitops repository"),
            })?;
        Ok(Self {
            argo,
            gitops: gitops.clone(),
            repo,
            author: actor.map(|login| Person {
                name: login.to_owned(),
                email: format!("{login}@users.noreply.github.com"),
            }),
        })
    }

    /// Where the digest goes, for people: `acme/deploy@main:apps/…/values.yaml`.
    pub fn describe(&self) -> String {
        self.repo.describe()
    }

    /// The files, for the deployment's payload.
    pub fn files(&self) -> Vec<String> {
        self.repo.paths()
    }

    /// What the files hold now; the branch's head too when Argo CD will be waited for.
    pub async fn current(&self) -> anyhow::Result<Held> {
        self.repo
            .current(self.argo.is_some())
            .await
            .with_context(|| format!("reading {}", self.describe()))
    }

    /// The Argo CD application, when the policy syncs or waits for it.
    pub fn application(&self) -> Option<&str> {
        self.argo.as_ref().map(|a| a.application.as_str())
    }

    /// Syncs the Argo CD application to `revision` and waits for it as the policy says; `None`
    /// without an Argo CD application to sync or wait for.
    pub async fn deploy(&self, revision: &str) -> anyhow::Result<Option<Deployed>> {
        let Some(argo) = &self.argo else {
            return Ok(None);
        };
        Ok(Some(argo.deploy(revision).await?))
    }

    /// Whether a promotion here is a pull request.
    pub fn proposes(&self) -> bool {
        self.gitops.mode == GitOpsMode::PullRequest
    }

    /// Writes `digest` over `expected` as one commit, or proposes it as a pull request.
    pub async fn write(
        &self,
        digest: &str,
        expected: Option<&str>,
        said: &Said<'_>,
    ) -> anyhow::Result<Wrote> {
        let message = |previous: Option<&str>| {
            Message {
                environment: said.environment,
                source_environment: Some(said.source_environment),
                image: said.image,
                digest,
                previous,
                run: said.run,
            }
            .text()
        };
        let committer = Person {
            name: COMMITTER_NAME.to_owned(),
            email: COMMITTER_EMAIL.to_owned(),
        };
        let commit = Commit {
            digest,
            expected,
            message: &message,
            author: self.author.as_ref(),
            committer: &committer,
        };
        if self.proposes()
            && let Location::GitHub { github, repository } = &self.repo.location
        {
            let title = message(expected);
            let title = title.lines().next().unwrap_or_default();
            let policy = &self.gitops.pull_request;
            let status = NewCommitStatus {
                state: CommitState::Success,
                target_url: said.run.map(str::to_owned),
                description: format!("{digest} verified for {}", said.environment),
                context: "gantry/verified-digest".to_owned(),
            };
            let proposed = gantry_gitops::pull::propose(
                github,
                &Proposal {
                    write: self.repo.write_files(repository, &commit),
                    head: &head_branch(said.environment, said.image),
                    title,
                    body: said.body,
                    reviewers: &policy.reviewers,
                    team_reviewers: &policy.team_reviewers,
                    labels: &policy.labels,
                    status: &status,
                    auto_merge: policy.auto_merge.as_deref(),
                },
            )
            .await?;
            return Ok(Wrote::Proposed(proposed));
        }
        let landed = self.repo.commit(&commit).await?;
        Ok(Wrote::Landed(landed))
    }
}
