//! The GitHub side: where the previous digest comes from when promote-digest's output is not at
//! hand (the environment's last successful Deployment of another digest), and the record of a
//! rollback (the failed promotion's Deployment marked `failure`, a new Deployment at the previous
//! digest).

use anyhow::Context as _;
use gantry_github::{DeploymentState, GitHub, NewDeployment, NewDeploymentStatus, Repository};
use gantry_oci::Digest;

/// Deployments looked at, newest first, and statuses read at most.
const LOOK_BACK: u8 = 30;
const STATUS_READS: usize = 10;

/// A deployment of the environment, as far as the watch cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// Its id.
    pub id: u64,
    /// Its commit.
    pub sha: String,
    /// The digest in its payload.
    pub digest: Digest,
}

fn digest_of(payload: &serde_json::Value) -> Option<Digest> {
    payload.get("digest")?.as_str()?.parse().ok()
}

/// The environment's deployments: the newest one of `canary` (the promotion being watched), and
/// the newest one of another digest that reached `success` (the rollback target).
pub async fn deployments(
    github: &GitHub,
    repository: &Repository,
    environment: &str,
    canary: &Digest,
) -> anyhow::Result<(Option<Deployed>, Option<Deployed>)> {
    let list = github
        .deployments(repository, environment, LOOK_BACK)
        .await
        .with_context(|| format!("reading the deployments of {environment} in {repository}"))?;
    let mut current = None;
    let mut previous = None;
    let mut reads = 0;
    for deployment in list {
        let Some(digest) = digest_of(&deployment.payload) else {
            continue;
        };
        let deployed = Deployed {
            id: deployment.id,
            sha: deployment.sha.clone(),
            digest,
        };
        if deployed.digest == *canary {
            if current.is_none() && previous.is_none() {
                current = Some(deployed);
            }
            continue;
        }
        if reads == STATUS_READS {
            break;
        }
        reads += 1;
        let statuses = github
            .deployment_statuses(repository, deployment.id)
            .await
            .with_context(|| format!("reading the statuses of deployment {}", deployment.id))?;
        // A later promotion marks an earlier success inactive: it did succeed. One whose latest
        // status is a failure was rolled back itself.
        let latest_fine = statuses.first().is_some_and(|s| {
            matches!(
                s.state,
                DeploymentState::Success | DeploymentState::Inactive
            )
        });
        if latest_fine && statuses.iter().any(|s| s.state == DeploymentState::Success) {
            previous = Some(deployed);
            break;
        }
    }
    Ok((current, previous))
}

/// What a rollback's record needs.
pub struct Rollback<'a> {
    /// The environment.
    pub environment: &'a str,
    /// The failed promotion's deployment, when found.
    pub failed: Option<&'a Deployed>,
    /// The commit the new deployment records.
    pub sha: &'a str,
    /// The digest restored.
    pub digest: &'a Digest,
    /// The digest rolled back from.
    pub rolled_back_from: &'a Digest,
    /// Why.
    pub reason: &'a str,
    /// When it was decided (RFC 3339).
    pub decided_at: &'a str,
    /// The run's page.
    pub log_url: Option<String>,
    /// Whether GitHub shows the environment as production.
    pub production: bool,
}

/// Records the rollback: `failure` on the failed promotion, and a new deployment at the previous
/// digest, `success` once the tag holds it. Returns the new deployment's id.
pub async fn record(
    github: &GitHub,
    repository: &Repository,
    rollback: &Rollback<'_>,
) -> anyhow::Result<u64> {
    let description: String = format!("rolled back: {}", rollback.reason)
        .chars()
        .take(140)
        .collect();
    if let Some(failed) = rollback.failed {
        github
            .create_deployment_status(
                repository,
                failed.id,
                &NewDeploymentStatus {
                    state: DeploymentState::Failure,
                    description: description.clone(),
                    log_url: rollback.log_url.clone(),
                    auto_inactive: false,
                },
            )
            .await
            .with_context(|| format!("marking deployment {} failed", failed.id))?;
    }
    let created = github
        .create_deployment(
            repository,
            &NewDeployment {
                git_ref: rollback.sha.to_owned(),
                environment: rollback.environment.to_owned(),
                description: description.clone(),
                payload: serde_json::json!({
                    "digest": rollback.digest.as_str(),
                    "rolled_back_from": rollback.rolled_back_from.as_str(),
                    "reason": rollback.reason,
                    "decided_at": rollback.decided_at,
                }),
                production_environment: rollback.production,
            },
        )
        .await
        .with_context(|| {
            format!(
                "recording the rollback of {} as a deployment",
                rollback.environment
            )
        })?;
    github
        .create_deployment_status(
            repository,
            created.id,
            &NewDeploymentStatus {
                state: DeploymentState::Success,
                description,
                log_url: rollback.log_url.clone(),
                auto_inactive: true,
            },
        )
        .await
        .with_context(|| format!("marking deployment {} done", created.id))?;
    Ok(created.id)
}
