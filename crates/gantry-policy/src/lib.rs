//! The promotion policy (`.github/gantry.yml`): environments, the paths between them, the gates on
//! each path and who may take it. Every error names the file, line and column it comes from.
//!
//! ```yaml
//! version: 1
//! environments:            # in promotion order; default: dev, staging, canary, production
//!   - name: dev
//!   - name: staging
//!   - name: production
//!     repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/billing  # another registry
//!     tag: "prod-{env}"    # default "{env}"; variables {env} and {digest12}
//!     aliases: [latest, stable]  # more tags of the environment, moved with it (promote-digest)
//!                                # and rolled back with it (canary-watch)
//!   - name: gitops-staging
//!     gitops:                    # the digest written into a GitOps repository (instead of a
//!       repository: acme/deploy  # tag, unless `tag:` is given too); owner/name or a git URL
//!       branch: main             # default main
//!       mode: commit             # commit | pull-request
//!       targets:                 # per file, one of path, kustomize-image, image, marker
//!         - file: apps/billing/staging/values.yaml
//!           path: image.digest   # create: true adds a missing last key
//!         - file: apps/billing/staging/kustomization.yaml
//!           kustomize-image: ghcr.io/acme/billing
//!       argocd: {server: https://argocd.example, application: billing-staging, wait: synced-healthy, sync: false}
//!   - name: gitops-production
//!     gitops:
//!       repository: acme/deploy
//!       mode: pull-request       # a pull request from gantry/<env>/<app>, updated by newer digests
//!       pull-request: {reviewers: [lead-lars], team-reviewers: [platform], labels: [promotion],
//!                      auto-merge: squash}   # merge | squash | rebase; off when absent
//!       targets:
//!         - file: apps/billing/production/values.yaml
//!           path: image.digest
//!       argocd: {server: https://argocd.example, application: billing-production, sync: true}
//! promotions:              # default: each environment to the next, one step forward
//!   - from: dev
//!     to: staging
//!     gates:
//!       - name: migration dry-run
//!         run: ./scripts/migrate --dry-run   # GANTRY_DIGEST, GANTRY_TARGET in its environment
//!         timeout: 600                       # seconds, default 600
//!         env: [DATABASE_URL]                # the only variables of gantry's it may see
//!     allowed:                               # GitHub roles or teams; anyone when absent
//!       roles: [write, maintain, admin]
//!       teams: [acme/tech-leads]
//!     require-signature:                     # the digest must be signed by this identity
//!       identity: https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main
//!       issuer: https://token.actions.githubusercontent.com   # the default
//!       # or identity-regexp / issuer-regexp, repository, ref, workflow, trigger, sha,
//!       # runner-environment; or key: cosign.pub (insecure-ignore-tlog: true for offline keys);
//!       # trusted-root: root.json (default: the public-good root), or tuf-url: a TUF repository
//!       # to fetch it from (tuf-root: its root.json, tuf-cache: a folder, tuf-offline: true).
//!       # Paths are relative to this file.
//!     require-attestation: [cyclonedx]       # attestations the digest must carry, signed by
//!                                            # the require-signature identity (sbom-attach's SBOM;
//!                                            # test-result: dispatch-integration's verdict, which
//!                                            # counts only when it says PASSED)
//! ```
//!
//! Both promote-digest (which moves environments forward) and canary-watch (which moves one back)
//! read it, so the two agree on where an environment lives and which tags are its aliases.

#![warn(missing_docs)]

use std::path::Path;
use std::time::Duration;

use gantry_sigstore::policy::SignaturePolicy;

/// The default environments, in order.
pub const DEFAULT_CHAIN: [&str; 4] = ["dev", "staging", "canary", "production"];
/// Where the policy lives unless told otherwise.
pub const DEFAULT_PATH: &str = ".github/gantry.yml";
const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_mins(10);
const TAG_VARIABLES: [&str; 2] = ["env", "digest12"];

/// A GitHub repository role, from least to most privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `read`.
    Read,
    /// `triage`.
    Triage,
    /// `write`.
    Write,
    /// `maintain`.
    Maintain,
    /// `admin`.
    Admin,
}

impl Role {
    /// The role GitHub calls `text` (`read`, `triage`, `write`, `maintain`, `admin`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "read" => Self::Read,
            "triage" => Self::Triage,
            "write" => Self::Write,
            "maintain" => Self::Maintain,
            "admin" => Self::Admin,
            _ => return None,
        })
    }

    /// The role's name as GitHub writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Triage => "triage",
            Self::Write => "write",
            Self::Maintain => "maintain",
            Self::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// One environment.
pub struct Environment {
    /// Its name (lowercase letters, digits and `-`).
    pub name: String,
    /// `registry/repository` when the environment lives elsewhere than the image.
    pub repository: Option<String>,
    /// The tag template (`{env}`, `{digest12}`).
    pub tag: String,
    /// More tags that name the environment (`latest`, `stable`), in the same repository: moved
    /// with it and rolled back with it.
    pub aliases: Vec<String>,
    /// The environment is a registry tag (every environment without `gitops:`, and one with
    /// both when it names a `tag:`).
    pub registry: bool,
    /// The GitOps repository files that name the environment's digest.
    pub gitops: Option<GitOps>,
}

/// Where a GitOps environment's digest is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitOpsRepository {
    /// A GitHub repository (`owner/name`), written through the API.
    GitHub(String),
    /// Any git URL, written with git.
    Url(String),
}

/// How a promotion lands in the GitOps repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitOpsMode {
    /// A commit on the branch.
    Commit,
    /// A pull request to the branch.
    PullRequest,
}

/// What to wait for in Argo CD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgoWait {
    /// Nothing.
    None,
    /// The application synced to the commit.
    Synced,
    /// Synced and healthy.
    SyncedHealthy,
}

/// The Argo CD application that deploys a GitOps environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoCd {
    /// The server (`https://argocd.example`).
    pub server: String,
    /// The application's name.
    pub application: String,
    /// What to wait for.
    pub wait: ArgoWait,
    /// Trigger the sync (applications with manual sync).
    pub sync: bool,
}

/// A GitOps environment: files in a repository that an Argo CD or Flux deploys from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitOps {
    /// The repository.
    pub repository: GitOpsRepository,
    /// Its branch.
    pub branch: String,
    /// Commit or pull request.
    pub mode: GitOpsMode,
    /// Each file and what in it holds the digest, in the policy's order.
    pub files: Vec<(String, Vec<gantry_gitops::Target>)>,
    /// The Argo CD application, when gantry waits for it.
    pub argocd: Option<ArgoCd>,
    /// Reviewers and labels of the pull request (mode pull-request).
    pub pull_request: PullRequestPolicy,
}

/// Who is asked to review a promotion's pull request, and its labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequestPolicy {
    /// Users (logins).
    pub reviewers: Vec<String>,
    /// Teams (slugs of the repository's organisation).
    pub team_reviewers: Vec<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// GitHub's auto-merge with this method (`MERGE`, `SQUASH`, `REBASE`), pinned to the commit
    /// gantry wrote; merged once the base's rules (reviews, checks) allow.
    pub auto_merge: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A command that must pass before a promotion moves anything.
pub struct Gate {
    /// Its name, for the log and the summary.
    pub name: String,
    /// The command (`sh -c`).
    pub run: String,
    /// How long it may run.
    pub timeout: Duration,
    /// Variables of gantry's own environment the gate may see (an explicit allow-list: a gate
    /// gets nothing else but `PATH`, `HOME` and the `GANTRY_*` variables of the promotion).
    pub env: Vec<String>,
}

/// Who may take a path: anyone holding one of `roles` (or a higher one), or in one of `teams`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    /// Roles that may (this one or higher).
    pub roles: Vec<Role>,
    /// Teams (`org/slug`) whose active members may.
    pub teams: Vec<String>,
}

impl std::fmt::Display for Allowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(lowest) = self.roles.iter().min() {
            parts.push(format!("role {} or higher", lowest.name()));
        }
        if !self.teams.is_empty() {
            parts.push(format!("members of {}", self.teams.join(" or ")));
        }
        f.write_str(&parts.join(", or "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// One allowed path between two environments.
pub struct Promotion {
    /// The environment the digest passed.
    pub from: String,
    /// The environment it moves to.
    pub to: String,
    /// Gates, in order.
    pub gates: Vec<Gate>,
    /// `None`: anyone who can run the workflow.
    pub allowed: Option<Allowed>,
    /// The digest must carry a signature this policy accepts; paths in it are already resolved
    /// against the policy file's folder.
    pub require_signature: Option<SignaturePolicy>,
    /// Predicate types (full URIs) of attestations the digest must carry, signed as
    /// `require_signature` says.
    pub require_attestations: Vec<String>,
}

/// Where a policy came from, for messages and summaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// No file: the default chain dev → staging → canary → production.
    Default,
    /// The file at this path.
    File(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A promotion policy.
pub struct Policy {
    /// Where it came from.
    pub source: Source,
    /// The environments, in promotion order.
    pub environments: Vec<Environment>,
    /// The allowed paths.
    pub promotions: Vec<Promotion>,
}

#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum PolicyError {
    #[error("reading policy {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Unlocated { file: String, message: String },
    #[error("unknown environment {name:?} (the policy has: {})", known.join(", "))]
    UnknownEnvironment { name: String, known: Vec<String> },
    #[error("promotion {from} -> {to} is not allowed by {source_name} (allowed from {from}: {})", if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") })]
    Forbidden {
        from: String,
        to: String,
        source_name: String,
        allowed: Vec<String>,
    },
}

impl Policy {
    /// The default chain: dev → staging → canary → production, one step forward, no gates.
    pub fn default_chain() -> Self {
        let environments = DEFAULT_CHAIN
            .iter()
            .map(|name| Environment {
                name: (*name).to_owned(),
                repository: None,
                tag: "{env}".to_owned(),
                aliases: Vec::new(),
                registry: true,
                gitops: None,
            })
            .collect::<Vec<_>>();
        Self {
            source: Source::Default,
            promotions: chain(&environments),
            environments,
        }
    }

    /// Reads the policy at `path`; the default chain when `path` is the default and does not exist.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, PolicyError> {
        use std::io::Read as _;
        // One byte more than the limit, so that an oversized file is refused without reading it.
        let read = std::fs::File::open(path).and_then(|f| {
            let mut text = String::new();
            f.take(file::MAX_POLICY_BYTES as u64 + 1)
                .read_to_string(&mut text)
                .map(|_| text)
        });
        match read {
            Ok(text) => Self::parse(&path.display().to_string(), &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(Self::default_chain())
            }
            Err(source) => Err(PolicyError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Parses policy text; `file` names it in messages.
    pub fn parse(file: &str, text: &str) -> Result<Self, PolicyError> {
        file::parse(file, text)
    }

    fn source_name(&self) -> String {
        match &self.source {
            Source::Default => {
                "the default chain (dev -> staging -> canary -> production)".to_owned()
            }
            Source::File(file) => file.clone(),
        }
    }

    /// The environment called `name`.
    pub fn environment(&self, name: &str) -> Result<&Environment, PolicyError> {
        self.environments
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| PolicyError::UnknownEnvironment {
                name: name.to_owned(),
                known: self.environments.iter().map(|e| e.name.clone()).collect(),
            })
    }

    /// The promotion `from` → `to`, or why it is refused.
    pub fn promotion(&self, from: &str, to: &str) -> Result<&Promotion, PolicyError> {
        self.environment(from)?;
        self.environment(to)?;
        self.promotions
            .iter()
            .find(|p| p.from == from && p.to == to)
            .ok_or_else(|| PolicyError::Forbidden {
                from: from.to_owned(),
                to: to.to_owned(),
                source_name: self.source_name(),
                allowed: self
                    .promotions
                    .iter()
                    .filter(|p| p.from == from)
                    .map(|p| p.to.clone())
                    .collect(),
            })
    }

    /// The reference an environment points at for an image whose repository is `image`.
    pub fn reference(
        &self,
        env: &str,
        image: &gantry_oci::Reference,
        digest: &gantry_oci::Digest,
    ) -> Result<gantry_oci::Reference, PolicyError> {
        let environment = self.environment(env)?;
        let tag = render_tag(&environment.tag, env, digest);
        let invalid = |reason: String| PolicyError::Unlocated {
            file: self.source_name(),
            message: reason,
        };
        let base = match &environment.repository {
            Some(repository) => format!("{repository}:{tag}").parse::<gantry_oci::Reference>(),
            None => image
                .in_repository(image.repository())
                .and_then(|r| r.with_tag(&tag)),
        };
        base.map_err(|e| invalid(format!("environment {env}: {e}")))
    }

    /// The environment's alias tags, in the repository of its `reference`.
    pub fn aliases(
        &self,
        env: &str,
        image: &gantry_oci::Reference,
        digest: &gantry_oci::Digest,
    ) -> Result<Vec<gantry_oci::Reference>, PolicyError> {
        let main = self.reference(env, image, digest)?;
        self.environment(env)?
            .aliases
            .iter()
            .map(|alias| {
                main.with_tag(alias).map_err(|e| PolicyError::Unlocated {
                    file: self.source_name(),
                    message: format!("environment {env}, alias {alias:?}: {e}"),
                })
            })
            .collect()
    }

    /// The promotions into `env` that require a signature, with their requirement: what any
    /// digest the environment may point at must carry (canary-watch checks the digest it would
    /// roll back to against them).
    pub fn signatures_into(&self, env: &str) -> Vec<(&Promotion, &SignaturePolicy)> {
        self.promotions
            .iter()
            .filter(|p| p.to == env)
            .filter_map(|p| p.require_signature.as_ref().map(|s| (p, s)))
            .collect()
    }
}

fn chain(environments: &[Environment]) -> Vec<Promotion> {
    environments
        .windows(2)
        .map(|pair| Promotion {
            from: pair[0].name.clone(),
            to: pair[1].name.clone(),
            gates: Vec::new(),
            allowed: None,
            require_signature: None,
            require_attestations: Vec::new(),
        })
        .collect()
}

fn render_tag(template: &str, env: &str, digest: &gantry_oci::Digest) -> String {
    template
        .replace("{env}", env)
        .replace("{digest12}", &digest.hex()[..12.min(digest.hex().len())])
}

mod file;

#[cfg(test)]
mod tests;

impl GitOps {
    /// The environment's files, reached as `access` says.
    pub fn open(
        &self,
        access: &gantry_gitops::repo::Access<'_>,
    ) -> Result<gantry_gitops::repo::Repo, gantry_gitops::repo::OpenError> {
        use gantry_gitops::repo::Repo;
        match &self.repository {
            GitOpsRepository::GitHub(name) => {
                Repo::github(name, &self.branch, self.files.clone(), access)
            }
            GitOpsRepository::Url(url) => {
                Ok(Repo::git(url, &self.branch, self.files.clone(), access))
            }
        }
    }
}

impl ArgoCd {
    /// What to wait for (`None`: nothing).
    pub fn until(&self) -> Option<gantry_gitops::argocd::Until> {
        use gantry_gitops::argocd::Until;
        match self.wait {
            ArgoWait::None => None,
            ArgoWait::Synced => Some(Until::Synced),
            ArgoWait::SyncedHealthy => Some(Until::SyncedHealthy),
        }
    }

    /// Whether gantry syncs or waits for the application at all.
    pub fn acts(&self) -> bool {
        self.wait != ArgoWait::None || self.sync
    }
}
