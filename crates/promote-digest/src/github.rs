//! The GitHub side of a promotion: may this actor take this path (roles and teams, through the
//! API), and the record of it (a Deployment with its statuses).

use anyhow::Context as _;
use gantry_actions::{GitHubContext, Secret};
use gantry_github::{
    DeploymentState, GitHub, Membership, NewDeployment, NewDeploymentStatus, Options, Repository,
};

use crate::policy::{Allowed, Role};

/// What the promotion needs to ask GitHub: the client and who, where and what.
pub struct GitHubSide {
    pub github: GitHub,
    pub repository: Option<Repository>,
    pub actor: Option<String>,
    pub sha: Option<String>,
    pub run_url: Option<String>,
}

/// The explicit inputs, falling back to the runner's context.
pub struct Inputs<'a> {
    pub token: &'a Secret,
    pub api_url: Option<&'a str>,
    pub repository: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub sha: Option<&'a str>,
    pub ca_files: &'a [std::path::PathBuf],
}

impl GitHubSide {
    pub fn new(inputs: &Inputs<'_>, context: &GitHubContext) -> anyhow::Result<Self> {
        let mut options = Options::new(inputs.token.clone());
        options.api_url = inputs
            .api_url
            .map(str::to_owned)
            .or_else(|| context.api_url.clone());
        options.ca_files = inputs.ca_files.to_vec();
        let github = GitHub::new(options)?;
        let repository = inputs
            .repository
            .map(str::to_owned)
            .or_else(|| context.repository.clone())
            .map(|text| {
                text.parse::<Repository>()
                    .context("--repository (or GITHUB_REPOSITORY)")
            })
            .transpose()?;
        Ok(Self {
            github,
            repository,
            actor: inputs
                .actor
                .map(str::to_owned)
                .or_else(|| context.triggering_actor.clone())
                .or_else(|| context.actor.clone()),
            sha: inputs
                .sha
                .map(str::to_owned)
                .or_else(|| context.sha.clone()),
            run_url: context.run_url(),
        })
    }

    fn repository(&self, why: &str) -> anyhow::Result<&Repository> {
        self.repository.as_ref().with_context(|| {
            format!(
                "{why} needs the repository: --repository owner/name (GITHUB_REPOSITORY in Actions)"
            )
        })
    }

    /// Whether the actor may take a path restricted to `allowed`: `Ok(answer)` says why they may,
    /// `Err(refusal)` (an `Ok` of the outer result) why not. API failures are errors: an answer
    /// that cannot be had is never taken as a yes.
    pub async fn check(
        &self,
        allowed: &Allowed,
        path: &str,
    ) -> anyhow::Result<Result<String, String>> {
        let repository = self.repository("checking who may promote")?;
        let actor = self.actor.as_deref().context(
            "checking who may promote needs the actor: --actor login (GITHUB_TRIGGERING_ACTOR or GITHUB_ACTOR in Actions)",
        )?;
        let mut found = Vec::new();
        if !allowed.roles.is_empty() {
            let held = self
                .github
                .permission(repository, actor)
                .await
                .with_context(|| format!("reading {actor}'s role in {repository}"))?;
            let role = held.standard_role().and_then(Role::parse);
            if let Some(role) = role
                && allowed.roles.iter().any(|needed| role >= *needed)
            {
                return Ok(Ok(format!(
                    "{actor} holds role {} in {repository}",
                    held.role_name
                )));
            }
            found.push(format!(
                "role {} in {repository}",
                if held.role_name.is_empty() {
                    "none"
                } else {
                    &held.role_name
                }
            ));
        }
        for team in &allowed.teams {
            let (org, slug) = team
                .split_once('/')
                .with_context(|| format!("team {team:?} is not org/team"))?;
            let membership = self
                .github
                .membership(org, slug, actor)
                .await
                .with_context(|| {
                    format!("reading {actor}'s membership of {team} (the token needs read:org; GITHUB_TOKEN cannot read teams)")
                })?;
            match membership {
                Membership::Active => return Ok(Ok(format!("{actor} is a member of {team}"))),
                Membership::Pending => found.push(format!("{team}: invited, not a member yet")),
                Membership::None => found.push(format!("{team}: not a member")),
            }
        }
        Ok(Err(format!(
            "{actor} may not promote {path}: it is restricted to {allowed} (found: {})",
            found.join("; ")
        )))
    }

    /// What recording a deployment needs, checked before anything moves.
    pub fn recorder(&self) -> anyhow::Result<Recorder<'_>> {
        const WHY: &str = "recording the deployment";
        let repository = self.repository(WHY)?;
        let sha = self.sha.as_deref().with_context(|| {
            format!("{WHY} needs the commit: --sha (GITHUB_SHA in Actions), or --deployment false")
        })?;
        Ok(Recorder {
            side: self,
            repository,
            sha,
        })
    }
}

/// Records a promotion as a GitHub Deployment; built only when every input is there.
pub struct Recorder<'a> {
    side: &'a GitHubSide,
    repository: &'a Repository,
    sha: &'a str,
}

impl Recorder<'_> {
    /// Opens a deployment of `environment` at the commit, in progress.
    pub async fn start(
        &self,
        environment: &str,
        description: String,
        payload: serde_json::Value,
        production_environment: bool,
    ) -> anyhow::Result<Deployment> {
        let deployment = NewDeployment {
            git_ref: self.sha.to_owned(),
            environment: environment.to_owned(),
            description,
            payload,
            production_environment,
        };
        let id = self
            .side
            .github
            .create_deployment(self.repository, &deployment)
            .await
            .with_context(|| {
                format!(
                    "recording the deployment to {environment} in {}",
                    self.repository
                )
            })?
            .id;
        let started = Deployment { id };
        self.finish(&started, DeploymentState::InProgress, "promoting")
            .await?;
        Ok(started)
    }

    /// Adds a status to an open deployment.
    pub async fn finish(
        &self,
        deployment: &Deployment,
        state: DeploymentState,
        description: &str,
    ) -> anyhow::Result<()> {
        let description: String = description.chars().take(140).collect();
        self.side
            .github
            .create_deployment_status(
                self.repository,
                deployment.id,
                &NewDeploymentStatus {
                    state,
                    description,
                    log_url: self.side.run_url.clone(),
                    auto_inactive: true,
                },
            )
            .await
            .with_context(|| format!("recording the status of deployment {}", deployment.id))
    }
}

/// A deployment this promotion opened.
pub struct Deployment {
    pub id: u64,
}
