//! A GitOps target: the digest written into the files an Argo CD or Flux deploys from, by one
//! commit — through GitHub's API for an `owner/name` repository (the contents API for one file,
//! the git data API for several), or with git for any URL — or proposed as a pull request from gantry's branch `gantry/<environment>/<app>` (GitHub).
//! The digest the files held is read before the gates and is what the write expects to replace:
//! a file someone else changed meanwhile is a conflict, never overwritten.

use std::time::Duration;

use anyhow::Context as _;
use gantry_github::{CommitState, GitHub, NewCommitStatus, Options, Person, Repository};
use gantry_gitops::Change;
use gantry_gitops::argocd::{ArgoCd, Deployed, Until, Wait};
use gantry_gitops::git::{GitWrite, Remote};
use gantry_gitops::github::{Landed, Write, WriteFiles};
use gantry_gitops::message::Message;
use gantry_gitops::pull::{Proposal, Proposed};
use gantry_policy::{ArgoWait, GitOps, GitOpsMode, GitOpsRepository};
use gantry_secret::Secret;

/// The fixed identity gantry commits as (the promoter is the author).
const COMMITTER_NAME: &str = "gantry";
const COMMITTER_EMAIL: &str = "gantry@users.noreply.github.com";

enum Transport {
    GitHub {
        github: GitHub,
        repository: Repository,
    },
    Git {
        url: String,
        username: Option<String>,
        password: Option<Secret>,
    },
}

/// The target environment's GitOps files and how to reach them.
pub struct GitOpsSide {
    gitops: GitOps,
    transport: Transport,
    author: Option<Person>,
    argo: Option<ArgoSide>,
}

/// The Argo CD application that deploys the files, when the policy syncs or waits for it.
struct ArgoSide {
    client: ArgoCd,
    application: String,
    until: Option<Until>,
    sync: bool,
    timeout: Duration,
    interval: Duration,
}

/// How to reach Argo CD.
pub struct ArgoAccess<'a> {
    pub token: Option<&'a Secret>,
    pub timeout: Duration,
    pub interval: Duration,
}

/// What the files hold now.
pub struct Held {
    /// The digest (the first target's), `None` when they hold none.
    pub digest: Option<String>,
    /// The branch's head commit, when Argo CD will be waited for.
    pub head: Option<String>,
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
        argo: &ArgoAccess<'_>,
    ) -> anyhow::Result<Self> {
        let argo = match &gitops.argocd {
            Some(a) if a.wait != ArgoWait::None || a.sync => {
                let token = argo.token.context(format!(
                    "the policy {} Argo CD application {}: give argocd-token (or ARGOCD_AUTH_TOKEN)",
                    if a.sync { "syncs" } else { "waits for" },
                    a.application
                ))?;
                let roots = gantry_http::roots(ca_files)?;
                Some(ArgoSide {
                    client: ArgoCd::new(&a.server, token.clone(), &roots)?,
                    application: a.application.clone(),
                    until: match a.wait {
                        ArgoWait::None => None,
                        ArgoWait::Synced => Some(Until::Synced),
                        ArgoWait::SyncedHealthy => Some(Until::SyncedHealthy),
                    },
                    sync: a.sync,
                    timeout: argo.timeout,
                    interval: argo.interval,
                })
            }
            _ => None,
        };
        let transport = match &gitops.repository {
            GitOpsRepository::GitHub(name) => {
                let token = token.context(
                    "a GitOps repository on GitHub needs a token that may write to it: gitops-token (or github-token)",
                )?;
                let mut options = Options::new(token.clone());
                options.api_url = api_url.map(str::to_owned);
                options.ca_files = ca_files.to_vec();
                Transport::GitHub {
                    github: GitHub::new(options)?,
                    repository: name.parse().context("the gitops repository")?,
                }
            }
            GitOpsRepository::Url(url) => Transport::Git {
                url: url.clone(),
                username: username.map(str::to_owned),
                password: token.cloned(),
            },
        };
        Ok(Self {
            argo,
            gitops: gitops.clone(),
            transport,
            author: actor.map(|login| Person {
                name: login.to_owned(),
                email: format!("{login}@users.noreply.github.com"),
            }),
        })
    }

    /// Where the digest goes, for people: `acme/deploy@main:apps/…/values.yaml`.
    pub fn describe(&self) -> String {
        let repository = match &self.gitops.repository {
            GitOpsRepository::GitHub(name) => name.clone(),
            GitOpsRepository::Url(url) => url.clone(),
        };
        let files: Vec<&str> = self.gitops.files.iter().map(|(f, _)| f.as_str()).collect();
        format!("{repository}@{}:{}", self.gitops.branch, files.join(","))
    }

    /// The files, for the deployment's payload.
    pub fn files(&self) -> Vec<String> {
        self.gitops.files.iter().map(|(f, _)| f.clone()).collect()
    }

    /// What the files hold now; the branch's head too when Argo CD will be waited for.
    pub async fn current(&self, digest: &str) -> anyhow::Result<Held> {
        let mut head = None;
        let texts: Vec<(String, String)> = match &self.transport {
            Transport::GitHub { github, repository } => {
                let (file, _) = &self.gitops.files[0];
                let at = if self.argo.is_some() {
                    let sha = github
                        .branch_head(repository, &self.gitops.branch)
                        .await
                        .with_context(|| format!("reading {} of {repository}", self.gitops.branch))?
                        .with_context(|| {
                            format!("{repository} has no branch {}", self.gitops.branch)
                        })?;
                    head = Some(sha.clone());
                    sha
                } else {
                    self.gitops.branch.clone()
                };
                let found = github
                    .file(repository, file, &at)
                    .await
                    .with_context(|| format!("reading {file} in {repository}"))?
                    .with_context(|| {
                        format!("{file} is not on {} of {repository}", self.gitops.branch)
                    })?;
                vec![(
                    file.clone(),
                    String::from_utf8(found.bytes)
                        .with_context(|| format!("{file} is not UTF-8"))?,
                )]
            }
            Transport::Git {
                url,
                username,
                password,
            } => {
                let remote = Remote {
                    url,
                    username: username.as_deref(),
                    password: password.as_ref(),
                };
                let read =
                    gantry_gitops::git::read(&remote, &self.gitops.branch, &self.files()).await?;
                head = Some(read.head);
                read.files
            }
        };
        let (file, text) = &texts[0];
        let targets = &self.gitops.files[0].1;
        // An edit not written: what it would replace is what the file holds.
        let edited = gantry_gitops::edit(file, text, targets, digest)?;
        Ok(Held {
            digest: edited.previous,
            head: head.filter(|_| self.argo.is_some()),
        })
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
        let deployed = argo
            .client
            .wait(&Wait {
                application: &argo.application,
                revision,
                until: argo.until,
                sync: argo.sync,
                timeout: argo.timeout,
                interval: argo.interval,
            })
            .await?;
        Ok(Some(deployed))
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
        let landed = match &self.transport {
            Transport::GitHub { github, repository } => {
                let files = WriteFiles {
                    repository,
                    branch: &self.gitops.branch,
                    files: &self.gitops.files,
                    digest,
                    expected,
                    message: &message,
                    author: self.author.as_ref(),
                    committer: &committer,
                };
                if self.proposes() {
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
                            write: files,
                            head: &head_branch(said.environment, said.image),
                            title,
                            body: said.body,
                            reviewers: &policy.reviewers,
                            team_reviewers: &policy.team_reviewers,
                            labels: &policy.labels,
                            status: &status,
                        },
                    )
                    .await?;
                    return Ok(Wrote::Proposed(proposed));
                }
                if let [(file, targets)] = &self.gitops.files[..] {
                    // One file: the contents API, a read and a write.
                    let write = Write {
                        repository,
                        branch: &self.gitops.branch,
                        file,
                        targets,
                        digest,
                        expected,
                        message: &message,
                        author: self.author.as_ref(),
                        committer: &committer,
                    };
                    gantry_gitops::github::write(github, &write).await?
                } else {
                    gantry_gitops::github::write_files(github, &files).await?
                }
            }
            Transport::Git {
                url,
                username,
                password,
            } => {
                let remote = Remote {
                    url,
                    username: username.as_deref(),
                    password: password.as_ref(),
                };
                gantry_gitops::git::write(&GitWrite {
                    remote: &remote,
                    branch: &self.gitops.branch,
                    files: &self.gitops.files,
                    digest,
                    expected,
                    message: &message,
                    author: self.author.as_ref(),
                    committer: &committer,
                })
                .await?
            }
        };
        Ok(Wrote::Landed(landed))
    }
}
