//! A GitOps environment's files and how to reach them, for any tool: read the digest they hold
//! (and the branch's head), and write a digest into all of them as one commit — through GitHub's
//! API for a GitHub repository (the contents API for one file, the git data API for several), or
//! with git for any URL. promote-digest writes promotions through it, canary-watch rollbacks.

use gantry_github::{GitHub, Person, Repository};
use gantry_secret::Secret;

use crate::git::{GitWrite, Remote};
use crate::github::{Landed, Write, WriteError, WriteFiles};
use crate::{Target, edit};

/// Where the repository is.
pub enum Location {
    /// On GitHub, through its API.
    GitHub {
        /// The client.
        github: GitHub,
        /// The repository.
        repository: Repository,
    },
    /// Anywhere, with git.
    Git {
        /// The URL.
        url: String,
        /// The user (with `password`).
        username: Option<String>,
        /// The password or token.
        password: Option<Secret>,
    },
}

impl Location {
    /// `owner/name`, or the URL.
    fn name(&self) -> String {
        match self {
            Self::GitHub { repository, .. } => repository.to_string(),
            Self::Git { url, .. } => url.clone(),
        }
    }

    /// The git remote, for a git location.
    fn remote(&self) -> Option<Remote<'_>> {
        match self {
            Self::GitHub { .. } => None,
            Self::Git {
                url,
                username,
                password,
            } => Some(Remote {
                url,
                username: username.as_deref(),
                password: password.as_ref(),
            }),
        }
    }
}

/// An environment's files in a GitOps repository.
pub struct Repo {
    /// Where the repository is.
    pub location: Location,
    /// The branch.
    pub branch: String,
    /// Each file and what in it holds the digest (at least one).
    pub files: Vec<(String, Vec<Target>)>,
}

/// What the files hold now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The digest (the first target's), `None` when they hold none.
    pub digest: Option<String>,
    /// The branch's head commit, when asked for.
    pub head: Option<String>,
}

/// A commit to make.
pub struct Commit<'a> {
    /// The digest to write.
    pub digest: &'a str,
    /// What the first file must hold (read before the decision); `None`: what the first read
    /// finds.
    pub expected: Option<&'a str>,
    /// The message, given what the first file held.
    pub message: &'a (dyn Fn(Option<&str>) -> String + Sync),
    /// The author.
    pub author: Option<&'a Person>,
    /// The committer.
    pub committer: &'a Person,
}

/// How to reach a repository.
pub struct Access<'a> {
    /// A token that may write to it (GitHub), or the password (a git URL).
    pub token: Option<&'a Secret>,
    /// GitHub's API (default api.github.com).
    pub api_url: Option<&'a str>,
    /// The user for a git URL.
    pub username: Option<&'a str>,
    /// Extra CA certificates.
    pub ca_files: &'a [std::path::PathBuf],
}

/// Why a repository cannot be reached as configured.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No token for a GitHub repository.
    #[error("a GitOps repository on GitHub ({0}) needs a token that may write to it")]
    NoToken(String),
    /// Not `owner/name`.
    #[error("{0}")]
    Name(String),
    /// The client could not be made.
    #[error(transparent)]
    GitHub(#[from] gantry_github::GitHubError),
}

impl Repo {
    /// A GitHub repository (`owner/name`) through the API.
    pub fn github(
        name: &str,
        branch: &str,
        files: Vec<(String, Vec<Target>)>,
        access: &Access<'_>,
    ) -> Result<Self, OpenError> {
        let token = access
            .token
            .ok_or_else(|| OpenError::NoToken(name.to_owned()))?;
        let mut options = gantry_github::Options::new(token.clone());
        options.api_url = access.api_url.map(str::to_owned);
        options.ca_files = access.ca_files.to_vec();
        Ok(Self {
            location: Location::GitHub {
                github: GitHub::new(options)?,
                repository: name
                    .parse()
                    .map_err(|e: gantry_github::GitHubError| OpenError::Name(e.to_string()))?,
            },
            branch: branch.to_owned(),
            files,
        })
    }

    /// Any git URL, with git.
    pub fn git(
        url: &str,
        branch: &str,
        files: Vec<(String, Vec<Target>)>,
        access: &Access<'_>,
    ) -> Self {
        Self {
            location: Location::Git {
                url: url.to_owned(),
                username: access.username.map(str::to_owned),
                password: access.token.cloned(),
            },
            branch: branch.to_owned(),
            files,
        }
    }
}

/// A digest-shaped placeholder for reading what a file holds (an edit that is never written).
const PROBE: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

impl Repo {
    /// `acme/deploy@main:apps/…/values.yaml`, for people.
    pub fn describe(&self) -> String {
        let repository = self.location.name();
        let files: Vec<&str> = self.files.iter().map(|(f, _)| f.as_str()).collect();
        format!("{repository}@{}:{}", self.branch, files.join(","))
    }

    /// The files' paths.
    pub fn paths(&self) -> Vec<String> {
        self.files.iter().map(|(f, _)| f.clone()).collect()
    }

    fn missing(&self, file: &str) -> WriteError {
        WriteError::Missing {
            file: file.to_owned(),
            branch: self.branch.clone(),
            repository: self.location.name(),
        }
    }

    /// What the first file holds now; the branch's head too when `with_head`.
    pub async fn current(&self, with_head: bool) -> Result<Held, WriteError> {
        let (file, targets) = &self.files[0];
        let (text, head) = match &self.location {
            Location::GitHub { github, repository } => {
                let head = if with_head {
                    Some(
                        github
                            .branch_head(repository, &self.branch)
                            .await?
                            .ok_or_else(|| self.missing(file))?,
                    )
                } else {
                    None
                };
                let at = head.clone().unwrap_or_else(|| self.branch.clone());
                let found = github
                    .file(repository, file, &at)
                    .await?
                    .ok_or_else(|| self.missing(file))?;
                let text = String::from_utf8(found.bytes)
                    .map_err(|_| WriteError::NotText { file: file.clone() })?;
                (text, head)
            }
            Location::Git { .. } => {
                let remote = self.location.remote().expect("a git location");
                let mut read =
                    crate::git::read(&remote, &self.branch, std::slice::from_ref(file)).await?;
                let text = read.files.pop().map(|(_, t)| t).unwrap_or_default();
                (text, with_head.then_some(read.head))
            }
        };
        // An edit not written: what it would replace is what the file holds.
        let edited = edit(file, &text, targets, PROBE)?;
        Ok(Held {
            digest: edited.previous,
            head,
        })
    }

    /// Writes the digest into every file as one commit (lost races retried as the operation
    /// says; another digest meanwhile is a conflict).
    pub async fn commit(&self, c: &Commit<'_>) -> Result<Landed, WriteError> {
        match &self.location {
            Location::GitHub { github, repository } => {
                if let [(file, targets)] = &self.files[..] {
                    // One file: the contents API, a read and a write.
                    crate::github::write(
                        github,
                        &Write {
                            repository,
                            branch: &self.branch,
                            file,
                            targets,
                            digest: c.digest,
                            expected: c.expected,
                            message: c.message,
                            author: c.author,
                            committer: c.committer,
                        },
                    )
                    .await
                } else {
                    crate::github::write_files(github, &self.write_files(repository, c)).await
                }
            }
            Location::Git { .. } => {
                let remote = self.location.remote().expect("a git location");
                crate::git::write(&GitWrite {
                    remote: &remote,
                    branch: &self.branch,
                    files: &self.files,
                    digest: c.digest,
                    expected: c.expected,
                    message: c.message,
                    author: c.author,
                    committer: c.committer,
                })
                .await
            }
        }
    }

    /// The write of every file through the git data API (and the pull-request flow).
    pub fn write_files<'a>(&'a self, repository: &'a Repository, c: &Commit<'a>) -> WriteFiles<'a> {
        WriteFiles {
            repository,
            branch: &self.branch,
            files: &self.files,
            digest: c.digest,
            expected: c.expected,
            message: c.message,
            author: c.author,
            committer: c.committer,
        }
    }
}
